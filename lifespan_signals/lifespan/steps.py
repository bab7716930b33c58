"""The one step runner: every receiver, resource and client of a lifespan phase runs through it.

A phase (startup or shutdown) has a :class:`Budget`. Each receiver, resource or client that runs in
it is a :class:`Step`, the record the engine keeps (``manage.py lifespan`` lists them): when it
started and ended, how long it blocked the event loop at once, and its :class:`Failure` if it raised
(any ``BaseException``) or ran out of time. A :class:`Runner` runs steps together (receivers,
clients) or one at a time in the current task (resources), gives cancelled steps one grace period
to unwind, and blames only the step at fault: one that could not start or finish because another
blocked the event loop is not blamed; the one that blocked it is named.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lifespan_signals.lifespan.budget import Budget, TimedOut, Watched
from lifespan_signals.lifespan.failures import Failure

__all__ = ["CANCEL_GRACE", "EXTENSION", "Record", "Runner", "Step"]

logger = logging.getLogger(__name__)

# How long cancelled steps get to unwind, after a timeout or a cancellation, before we stop waiting.
CANCEL_GRACE = 1.0


@dataclass(eq=False)
class Step:
    """One client, resource or receiver that ran in a phase: the record the engine keeps.

    ``name`` is the alias or dotted path; ``label`` names it in a failure (the setting's key for a
    client). ``waiting`` says what it was doing when time ran out ("still opening").
    """

    phase: str
    kind: str
    name: str
    label: str = ""
    waiting: str = "still running"
    started: float | None = None
    ended: float | None = None
    given_up: float | None = None  # when the runner stopped waiting for it, if it had not ended
    failure: Failure | None = None
    watched: Watched[Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.label = self.label or self.name

    @property
    def ok(self) -> bool:
        return self.ended is not None and self.failure is None

    @property
    def seconds(self) -> float:
        """How long it ran (until it was given up on, if it did not end); 0 if it never started."""
        if self.started is None:
            return 0.0
        end = self.ended if self.ended is not None else self.given_up
        return (time.monotonic() if end is None else end) - self.started

    @property
    def blocked_loop(self) -> bool:
        return self.watched is not None and self.watched.blocked

    def blame(self, budget: Budget, loop_blocked: bool) -> Failure | None:
        """This step's failure, if it is to blame (see the module docstring)."""
        if self.failure is not None:
            return self.failure
        if self.started is None:
            if loop_blocked:
                return Failure(
                    self.label, f"never started: another {self.kind} blocked the event loop"
                )
            return budget.timed_out(self.label, "never started")
        if self.ended is None:
            return budget.timed_out(self.label, self.waiting)
        if not budget.ended_late(self.ended) or budget.ended_late(self.started):
            return None  # done in time, or started late because another held things up
        # An async step that only waited while another blocked the loop is not to blame.
        if loop_blocked and self.watched is not None and not self.watched.blocked:
            return None
        return budget.overran(self.label, self.watched, self.ended - self.started)


# The key of the lifespan scope's "extensions" under which a driver hands over its Record.
EXTENSION = "lifespan_signals.record"


@dataclass(eq=False)
class Record:
    """What one lifespan ran: every step, each phase's failures, and the phases whose failure
    report was logged (a handler took it: the caller need not print it again)."""

    steps: list[Step] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    logged: set[str] = field(default_factory=set)


Job = tuple[Step, Callable[[], Awaitable[Any]]]


class Runner:
    """Runs one group of a phase's steps within the phase's ``budget``, recording each into
    ``records`` (the lifespan's :class:`Record`).

    A worker thread may run steps too (the sync receivers): it calls :meth:`start` before each
    step, which says no once :meth:`together` has given up on the group, and :meth:`finish`
    after it, both under one lock.
    """

    def __init__(self, phase: str, budget: Budget, records: list[Step]) -> None:
        self.phase = phase
        self.budget = budget
        self.records = records
        self._lock = threading.Lock()
        self._abandoned = False  # time is up: a worker thread starts no further step

    def step(
        self, kind: str, name: str, *, label: str = "", waiting: str = "still running"
    ) -> Step:
        step = Step(self.phase, kind, name, label, waiting)
        self.records.append(step)
        return step

    def start(self, step: Step) -> bool:
        """Mark ``step`` started, unless the phase gave up on its steps: whether to run it."""
        with self._lock:
            if self._abandoned:
                return False
            step.started = time.monotonic()
            return True

    def finish(self, step: Step, failure: Failure | None) -> None:
        ended = time.monotonic()
        with self._lock:
            step.ended, step.failure = ended, failure
        _log(step)

    def _abandon(self) -> None:
        with self._lock:
            self._abandoned = True

    async def together(
        self,
        jobs: Sequence[Job],
        *,
        threads: Sequence[Awaitable[Any]] = (),
        thread_steps: Sequence[Step] = (),
    ) -> list[Failure]:
        """Run ``jobs`` concurrently, and ``threads`` (awaitables that run ``thread_steps`` in a
        worker thread), until all are done or the budget is spent; return the failures, in order
        (thread steps first). What still runs is then cancelled and gets :data:`CANCEL_GRACE` to
        unwind. A cancellation from outside cancels them all and propagates."""
        tasks = [asyncio.ensure_future(self._run(step, start)) for step, start in jobs]
        workers = [asyncio.ensure_future(awaitable) for awaitable in threads]
        everything = [*tasks, *workers]
        try:
            if everything:
                await asyncio.wait(everything, timeout=self.budget.remaining())
        except BaseException:  # we were cancelled: take the steps down with us
            self._abandon()
            for task in everything:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=CANCEL_GRACE)
            raise
        self._abandon()
        failures = self.failures([*thread_steps, *(step for step, _ in jobs)])
        for task in everything:
            task.cancel()  # a thread cannot be interrupted: the worker just starts no further step
        if pending := [task for task in tasks if not task.done()]:
            await asyncio.wait(pending, timeout=CANCEL_GRACE)
        return failures

    async def _run(self, step: Step, start: Callable[[], Awaitable[Any]]) -> None:
        self.start(step)
        try:
            step.watched = Watched(start())
            await step.watched
        except asyncio.CancelledError as exc:
            if step.watched is not None and step.watched.cancelled:
                _log(step)
                raise  # ours: time is up, or the lifespan itself was cancelled
            self.finish(step, Failure.from_exception(step.label, exc))
        except BaseException as exc:  # caught here, or asyncio would stop the event loop
            self.finish(step, Failure.from_exception(step.label, exc))
        else:
            self.finish(step, None)

    async def in_task(self, step: Step, awaitable: Awaitable[Any]) -> bool:
        """Await one step in the current task within the budget; whether it returned.

        For resources: a context manager entered here is exited by the same task later. Any
        exception is the step's failure, and so is returning past the budget's end (it blocked
        the event loop, so no timer could fire). Only a cancellation of the lifespan propagates.
        """
        step.watched = watched = Watched(awaitable)
        self.start(step)
        failure, returned = None, False
        try:
            with self.budget.deadline():
                await watched
            returned = True
        except TimedOut:
            failure = self.budget.timed_out(step.label, step.waiting)
        except asyncio.CancelledError as exc:
            if watched.cancelled:
                _log(step)
                raise  # the lifespan itself was cancelled: the caller cleans up
            failure = Failure.from_exception(step.label, exc)
        except BaseException as exc:  # SystemExit too: a failure of this step
            failure = Failure.from_exception(step.label, exc)
        ended = time.monotonic()
        if returned and self.budget.ended_late(ended):
            failure = self.budget.overran(step.label, watched, ended - (step.started or ended))
        self.finish(step, failure)
        return returned

    def failures(self, steps: Sequence[Step]) -> list[Failure]:
        """The failures of ``steps``, in order: only the ones to blame. Each step's record says
        so too (``failure``; ``given_up`` for one that had not ended)."""
        now = time.monotonic()
        with self._lock:
            loop_blocked = any(step.blocked_loop for step in steps)
            failures = []
            for step in steps:
                if step.started is not None and step.ended is None:
                    step.given_up = now
                if failure := step.blame(self.budget, loop_blocked):
                    step.failure = failure
                    failures.append(failure)
            return failures


def _log(step: Step) -> None:
    """One DEBUG line per step, for people; ``record.lifespan_step`` has its fields, for log
    processors (``manage.py lifespan`` reads the engine's records instead)."""
    fields = {
        "phase": step.phase,
        "kind": step.kind,
        "name": step.name,
        "seconds": step.seconds,
        "ok": step.ok,
    }
    logger.debug(
        "%s %s %s: %.1f ms",
        step.phase,
        step.kind,
        step.name,
        step.seconds * 1000,
        extra={"lifespan_step": fields},
    )
