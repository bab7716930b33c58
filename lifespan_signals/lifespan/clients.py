"""Opening and closing one lifespan's declared clients (``LIFESPAN_SIGNALS_CLIENTS``), as steps.

All open concurrently; if one fails, those that opened are closed at once. All close
concurrently too, started in reverse declaration order: a close that hangs or fails never keeps
another from closing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from lifespan_signals.conf import settings
from lifespan_signals.lifespan.backends import Closer, call_closer, open_backend
from lifespan_signals.lifespan.budget import Budget
from lifespan_signals.lifespan.failures import Failure
from lifespan_signals.lifespan.steps import Runner

__all__ = ["OpenClients"]


def _label(alias: str, entry: Mapping[str, Any]) -> str:
    return f"LIFESPAN_SIGNALS_CLIENTS[{alias!r}] ({entry['BACKEND']})"


class OpenClients:
    """One lifespan's declared clients: what is open and how to close it, in declaration order."""

    def __init__(self) -> None:
        self.declared: Mapping[str, Mapping[str, Any]] = {}
        self.clients: dict[str, Any] = {}
        self._closers: dict[str, Closer] = {}

    async def open(self, runner: Runner) -> list[Failure]:
        """Open the declared clients concurrently; on a failure, close those that opened."""
        try:
            self.declared = settings.CLIENTS
        except Exception as exc:
            return [Failure.from_exception("LIFESPAN_SIGNALS_CLIENTS", exc)]

        def opener(alias: str) -> Any:
            async def open_one() -> None:
                client, closer = await open_backend(alias, self.declared[alias])
                self.clients[alias], self._closers[alias] = client, closer

            return open_one

        jobs = [
            (runner.step("client", alias, label=_label(alias, entry), waiting="still opening"),
             opener(alias))
            for alias, entry in self.declared.items()
        ]  # fmt: skip
        failures = await runner.together(jobs)
        if failures:  # close what opened now, in a budget of its own: startup's may be spent
            closing = Runner("shutdown", Budget.shutdown(), runner.records)
            return failures + await self.close(closing)
        return []

    async def close(self, runner: Runner) -> list[Failure]:
        """Close the open clients concurrently, started in reverse declaration order."""
        self.clients = {}
        closers, self._closers = self._closers, {}
        jobs = [
            (runner.step("client", alias, label=_label(alias, self.declared[alias]),
                         waiting="still closing"),
             functools.partial(call_closer, closers[alias]))
            for alias in reversed(list(self.declared))
            if alias in closers
        ]  # fmt: skip
        return await runner.together(jobs)
