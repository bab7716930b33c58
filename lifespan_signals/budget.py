"""The time budget of a lifespan phase, and how its steps are timed, blamed and reported.

Used by :mod:`.dispatch` (receivers), :mod:`.resources` and :mod:`.lifespan`: a :class:`Budget`
per phase, a :class:`Failure` per receiver or resource that raised (any ``BaseException``) or ran
past the budget, a :class:`Watched` awaitable that times each step a coroutine takes on the event
loop (so a coroutine that blocked the loop is named even when no timer could fire), and
:func:`log_step`, one DEBUG record per receiver or resource on ``lifespan_signals.steps``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
import traceback
from collections.abc import Awaitable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["Budget", "Failure", "TimedOut", "Watched", "dotted_name", "log_step"]

step_logger = logging.getLogger("lifespan_signals.steps")

# A step shorter than this is not worth calling "blocked the event loop".
_BLOCKING = 0.1

_T = TypeVar("_T")


def dotted_name(obj: object) -> str:
    """``module.qualname`` of a function, bound method, partial or callable object."""
    target = getattr(obj, "__func__", obj)
    target = getattr(target, "func", target)  # functools.partial
    if not hasattr(target, "__qualname__"):
        target = type(target)
    return f"{target.__module__}.{target.__qualname__}"


def log_step(phase: str, kind: str, name: str, seconds: float, ok: bool) -> None:
    """One DEBUG record for a receiver, resource or client that ran in ``phase``."""
    step_logger.debug(
        "%s %s %s: %.1f ms",
        phase,
        kind,
        name,
        seconds * 1000,
        extra={
            "lifespan_step": {
                "phase": phase,
                "kind": kind,
                "name": name,
                "seconds": seconds,
                "ok": ok,
            }
        },
    )


@dataclass(frozen=True)
class Failure:
    """A receiver or resource that raised (any ``BaseException``) or ran out of time."""

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


class TimedOut(Exception):
    """Raised by :meth:`Budget.deadline` when the budget ran out."""


class Budget:
    """The time one lifespan phase may take, shared by its resources and receivers."""

    def __init__(self, setting: str, seconds: float | None) -> None:
        self.setting = setting
        self.seconds = seconds
        self.end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        if self.end is None:
            return None
        return max(0.0, self.end - time.monotonic())

    def timed_out(self, name: str, what: str = "still running") -> Failure:
        return Failure(name, f"timed out: {what} after {self.seconds:g} s ({self.setting})")

    def overran(self, name: str, watched: Watched[Any] | None, ran: float) -> Failure:
        """The failure of a step that finished, but past the budget's end."""
        blocked = ""
        if watched is not None and watched.blocked:
            blocked = (
                f"; it blocked the event loop for {watched.longest:.1f} s at once (time.sleep() "
                "or CPU work in async code? Use await asyncio.sleep(), or sync_to_async)"
            )
        return Failure(
            name,
            f"timed out: ran {ran:.1f} s, past the {self.seconds:g} s budget ({self.setting})"
            + blocked,
        )

    def ended_late(self, finished: float) -> bool:
        """Whether a step that finished at ``finished`` (``time.monotonic()``) did so too late."""
        return self.end is not None and finished > self.end

    @contextlib.contextmanager
    def deadline(self) -> Iterator[None]:
        """Cancel the awaits in the body when the budget runs out; raise :class:`TimedOut` then.

        Runs in the current task (unlike ``asyncio.wait_for`` on 3.10), so a context manager
        entered here may be exited later by the same task. A cancellation from outside still
        propagates, also when it arrives after the timer fired (Python 3.11+ can tell).
        """
        remaining = self.remaining()
        task = asyncio.current_task()
        if remaining is None or task is None:
            yield
            return
        fired = False

        def fire() -> None:
            nonlocal fired
            fired = True
            task.cancel()

        handle = asyncio.get_running_loop().call_later(remaining, fire)
        try:
            yield
        except asyncio.CancelledError:
            if not fired:
                raise
            if sys.version_info >= (3, 11) and task.uncancel() > 0:
                raise  # someone else cancelled the task too: theirs wins
            raise TimedOut from None
        finally:
            handle.cancel()


class Watched(Generic[_T]):
    """Await ``awaitable``, timing each step it takes on the event loop.

    ``longest`` is the longest step (how long it blocked the loop at once); ``cancelled`` whether a
    cancellation was thrown into it, which tells a cancellation from outside from a
    ``CancelledError`` the code raised itself.
    """

    def __init__(self, awaitable: Awaitable[_T]) -> None:
        self._inner = awaitable.__await__()
        self.longest = 0.0
        self.cancelled = False

    @property
    def blocked(self) -> bool:
        """Whether one step took long enough to call it blocking the event loop."""
        return self.longest >= _BLOCKING

    def __await__(self) -> Generator[Any, Any, _T]:
        inner = self._inner
        value: Any = None
        thrown: BaseException | None = None
        while True:
            started = time.monotonic()
            try:
                yielded = inner.send(value) if thrown is None else inner.throw(thrown)
            except StopIteration as stop:
                result: _T = stop.value
                return result
            finally:
                self.longest = max(self.longest, time.monotonic() - started)
            try:
                value, thrown = (yield yielded), None
            except GeneratorExit:
                inner.close()
                raise
            except BaseException as exc:
                self.cancelled = self.cancelled or isinstance(exc, asyncio.CancelledError)
                value, thrown = None, exc
