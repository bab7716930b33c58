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
from lifespan_signals.lifespan.steps import Runner, Step

__all__ = ["OpenClients"]


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

        jobs = [
            (self._step(runner, alias, "still opening"), functools.partial(self._open, alias))
            for alias in self.declared
        ]
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
            (self._step(runner, alias, "still closing"), functools.partial(call_closer, closer))
            for alias in reversed(list(self.declared))
            if (closer := closers.get(alias)) is not None
        ]
        return await runner.together(jobs)

    async def _open(self, alias: str) -> None:
        client, closer = await open_backend(alias, self.declared[alias])
        self.clients[alias], self._closers[alias] = client, closer

    def _step(self, runner: Runner, alias: str, waiting: str) -> Step:
        label = f"LIFESPAN_SIGNALS_CLIENTS[{alias!r}] ({self.declared[alias]['BACKEND']})"
        return runner.step("client", alias, label=label, waiting=waiting)
