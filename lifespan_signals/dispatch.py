"""Run a signal's receivers the way lifespan needs: all of them, timed, within a time budget.

``Signal.asend_robust`` would run every receiver too, but it cannot say how long each took or which
one is still running when time is up, it lets a ``BaseException`` through, and its concurrency
differs between Django 5.2/6.0 and 6.1. So we take the same live receivers it would
(``Signal._live_receivers``, unchanged from 5.0 to 6.1) and run them as 5.2 does: the sync
receivers one after another in one worker thread, the async receivers concurrently on the event
loop. Whatever a receiver raises, ``BaseException`` included, is that receiver's failure.

The worker thread is the one asgiref's ``sync_to_async(thread_sensitive=True)`` would choose when
there is one to choose: the sync thread driving this event loop (``async_to_sync``, as in tests),
or a ``ThreadSensitiveContext``'s. Under a server there is none, and asgiref would fall back to its
process-wide single thread, which the interpreter waits for at exit: a sync receiver that never
returns would then keep the process alive after its timeout was reported. So there the receivers
run in a daemon thread of their own, which closes the database connections it opened.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import AsyncToSync, SyncToAsync, sync_to_async
from django.db import connections
from django.dispatch import Signal

from lifespan_signals.budget import Budget, Failure, Watched, dotted_name, log_step

__all__ = ["send_signal"]

# How long cancelled receivers get to unwind after a timeout before we stop waiting for them.
_CANCEL_GRACE = 1.0

_P = ParamSpec("_P")
_R = TypeVar("_R")


class _DaemonThreadExecutor(ThreadPoolExecutor):
    """Runs each call in a new daemon thread, which the interpreter does not wait for at exit.

    (A ``ThreadPoolExecutor`` only for asgiref's type hints: its own worker threads never start.)
    """

    def submit(self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_R]:
        future: Future[_R] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        threading.Thread(target=run, name="lifespan-sync-receivers", daemon=True).start()
        return future


_daemon_threads = _DaemonThreadExecutor()


def _sync_thread_chosen() -> bool:
    """Whether ``sync_to_async(thread_sensitive=True)`` would use a thread someone chose (see the
    module docstring) rather than asgiref's process-wide single thread: asgiref's own order."""
    return bool(
        getattr(AsyncToSync.executors, "current", None)
        or SyncToAsync.thread_sensitive_context.get(None)
        or asyncio.get_running_loop() in AsyncToSync.loop_thread_executors
    )


def _in_worker_thread(func: Callable[[], None]) -> Callable[[], Any]:
    """``func`` as an awaitable run in the sync receivers' worker thread (module docstring)."""
    if _sync_thread_chosen():
        return sync_to_async(func, thread_sensitive=True)

    def closing_connections() -> None:
        try:
            func()
        finally:
            connections.close_all()  # this thread's own: nobody else will use them

    return sync_to_async(closing_connections, thread_sensitive=False, executor=_daemon_threads)


def _is_async(receiver: Callable[..., Any]) -> bool:
    """Whether a receiver Django counts as sync is a callable object with ``async def __call__``."""
    call = type(receiver).__call__
    return not inspect.isroutine(receiver) and inspect.iscoroutinefunction(call)


def _returned_awaitable(name: str, result: Any) -> Failure:
    if inspect.iscoroutine(result):
        result.close()  # refused: no "never awaited" warning on top of the failure
    return Failure(
        name,
        f"returned an awaitable ({result!r}), which a sync receiver must not: it would never be "
        "awaited. Make the receiver an 'async def' function, or mark it with "
        "asgiref.sync.markcoroutinefunction().",
    )


@dataclass
class _Run:
    """One receiver's run. The sync worker writes ``started``/``ended``/``failure`` under a lock."""

    receiver: Callable[..., Any]
    name: str
    started: float | None = None
    ended: float | None = None
    failure: Failure | None = None
    watched: Watched[Any] | None = None

    def blame(self, budget: Budget, loop_blocked: bool) -> Failure | None:
        if self.failure is not None:
            return self.failure
        if self.started is None:
            if loop_blocked:
                return Failure(self.name, "never started: another receiver blocked the event loop")
            return budget.timed_out(self.name, "never started")
        if self.ended is None:
            return budget.timed_out(self.name)
        if not budget.ended_late(self.ended) or budget.ended_late(self.started):
            return None  # done in time, or started late because another held things up
        # An async receiver that only waited while another blocked the loop is not to blame.
        if loop_blocked and self.watched is not None and not self.watched.blocked:
            return None
        return budget.overran(self.name, self.watched, self.ended - self.started)


async def send_signal(
    signal: Signal, sender: Any, budget: Budget, phase: str, **named: Any
) -> tuple[int, list[Failure]]:
    """Run every live receiver of ``signal``; return how many ran and the failures, in order."""
    sync_receivers, async_receivers = signal._live_receivers(sender)
    moved = [receiver for receiver in sync_receivers if _is_async(receiver)]
    sync_runs = [_Run(r, dotted_name(r)) for r in sync_receivers if not _is_async(r)]
    async_runs = [_Run(r, dotted_name(r)) for r in [*async_receivers, *moved]]
    lock = threading.Lock()
    abandoned = False  # time is up: the sync worker starts no further receiver

    def finish(run: _Run, failure: Failure | None) -> None:
        ended = time.monotonic()
        with lock:
            run.ended, run.failure = ended, failure
        log_step(phase, "receiver", run.name, ended - (run.started or ended), failure is None)

    def run_sync() -> None:
        for run in sync_runs:
            with lock:
                if abandoned:
                    return
                run.started = time.monotonic()
            failure = None
            try:
                result = run.receiver(signal=signal, sender=sender, **named)
                if inspect.isawaitable(result):
                    failure = _returned_awaitable(run.name, result)
            except BaseException as exc:  # SystemExit too: a failure of this receiver
                failure = Failure.from_exception(run.name, exc)
            finish(run, failure)

    async def run_async(run: _Run) -> None:
        run.started = time.monotonic()
        try:
            run.watched = Watched(run.receiver(signal=signal, sender=sender, **named))
            await run.watched
        except asyncio.CancelledError as exc:
            if run.watched is not None and run.watched.cancelled:
                log_step(phase, "receiver", run.name, time.monotonic() - run.started, False)
                raise  # ours: time is up, or the lifespan itself was cancelled
            finish(run, Failure.from_exception(run.name, exc))
        except BaseException as exc:  # caught here, or asyncio would stop the event loop
            finish(run, Failure.from_exception(run.name, exc))
        else:
            finish(run, None)

    async_tasks = [asyncio.ensure_future(run_async(run)) for run in async_runs]
    tasks = [*async_tasks]
    if sync_runs:
        tasks.append(asyncio.ensure_future(_in_worker_thread(run_sync)()))
    try:
        if tasks:
            await asyncio.wait(tasks, timeout=budget.remaining())
    except BaseException:  # we were cancelled: take the receivers down with us
        with lock:
            abandoned = True
        for task in tasks:
            task.cancel()
        raise
    runs = [*sync_runs, *async_runs]
    with lock:
        abandoned = True
        loop_blocked = any(run.watched and run.watched.blocked for run in async_runs)
        failures = [failure for run in runs if (failure := run.blame(budget, loop_blocked))]
    for task in tasks:
        task.cancel()  # a thread cannot be interrupted: the worker just starts no further receiver
    pending = [task for task in async_tasks if not task.done()]
    if pending:
        await asyncio.wait(pending, timeout=_CANCEL_GRACE)
    return len(runs), failures
