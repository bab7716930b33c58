"""Failures: a receiver, resource or client that raised or ran out of time, and the report of a
phase's failures, as logged and sent to the server."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Failure", "dotted_name", "report"]


def dotted_name(obj: object) -> str:
    """``module.qualname`` of a function, bound method, partial or callable object."""
    target = getattr(obj, "__func__", obj)
    target = getattr(target, "func", target)  # functools.partial
    if not hasattr(target, "__qualname__"):
        target = type(target)
    return f"{target.__module__}.{target.__qualname__}"


@dataclass(frozen=True)
class Failure:
    """A receiver, resource or client that raised (any ``BaseException``) or ran out of time."""

    name: str
    summary: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, name: str, exc: BaseException) -> Failure:
        kind = type(exc)
        kind_name = kind.__qualname__ if kind.__module__ == "builtins" else dotted_name(kind)
        if isinstance(exc, asyncio.CancelledError):
            kind_name = "asyncio.CancelledError"
        summary = f"raised {kind_name}: {exc}" if str(exc) else f"raised {kind_name}"
        tb = "".join(traceback.format_exception(kind, exc, exc.__traceback__))
        return cls(name, summary, tb.rstrip())

    def __str__(self) -> str:
        return f"{self.name} {self.summary}" + (f"\n{self.traceback}" if self.traceback else "")


def report(phase: str, failures: Sequence[Failure]) -> str:
    """The failure report of a phase, as logged and sent to the server."""
    noun = "failure" if len(failures) == 1 else "failures"
    details = "\n\n".join(str(failure) for failure in failures)
    return f"Lifespan {phase} failed ({len(failures)} {noun}):\n\n{details}"
