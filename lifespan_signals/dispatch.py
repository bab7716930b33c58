"""Run a signal's receivers the way lifespan needs: all of them, timed, within a time budget.

``Signal.asend_robust`` would run every receiver too, but it cannot say how long each took or which
one is still running when time is up, and its concurrency differs between Django 5.2/6.0 and 6.1.
So we take the same live receivers it would (``Signal._live_receivers``, unchanged from 5.0 to 6.1)
and run them as 5.2 does: the sync receivers one after another in one worker thread, the async
receivers concurrently on the event loop, every failure collected.

The worker thread is the one asgiref's ``sync_to_async(thread_sensitive=True)`` would choose when
there is one to choose: the sync thread driving this event loop (``async_to_sync``, as in tests),
or a ``ThreadSensitiveContext``'s. Under a server there is none, and asgiref would fall back to its
process-wide single thread, which the interpreter waits for at exit: a sync receiver that never
returns would then keep the process alive after its timeout was reported. So there the receivers
run in a daemon thread of their own, which closes the database connections it opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import AsyncToSync, SyncToAsync, sync_to_async
from django.db import connections
from django.dispatch import Signal

__all__ = ["Budget", "Failure", "TimedOut", "dotted_name", "log_step", "send_signal"]

logger = logging.getLogger("lifespan_signals.dispatch")
steps_logger = logging.getLogger("lifespan_signals.steps")

# How long cancelled receivers get to unwind after a timeout before we stop waiting for them.
_CANCEL_GRACE = 1.0


def dotted_name(obj: object) -> str:
    """``module.qualname`` of a function, bound method, partial or callable object."""
    target = getattr(obj, "__func__", obj)
    target = getattr(target, "func", target)  # functools.partial
    if not hasattr(target, "__qualname__"):
        target = type(target)
    return f"{target.__module__}.{target.__qualname__}"


def log_step(phase: str, kind: str, name: str, started: float, ok: bool) -> None:
    """Log one step of a phase (a receiver, resource or client that ended) with its time, at
    DEBUG on ``lifespan_signals.steps``; ``manage.py lifespan`` collects these records."""
    seconds = time.perf_counter() - started
    steps_logger.debug(
        "%s %s %s %s in %.1f ms",
        phase,
        kind,
        name,
        "ok" if ok else "failed",
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
    """A receiver or resource that raised or ran out of time."""

    name: str
    summary: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, name: str, exc: BaseException) -> Failure:
        kind = type(exc)
        kind_name = kind.__qualname__ if kind.__module__ == "builtins" else dotted_name(kind)
        summary = f"raised {kind_name}: {exc}" if str(exc) else f"raised {kind_name}"
        tb = "".join(traceback.format_exception(kind, exc, exc.__traceback__))
        return cls(name, summary, tb.rstrip())

    def __str__(self) -> str:
        return f"{self.name} {self.summary}" + (f"\n{self.traceback}" if self.traceback else "")


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


class TimedOut(Exception):
    """Raised by :meth:`Budget.deadline` when the budget ran out."""


class Budget:
    """The time one lifespan phase may take, shared by its resources and receivers."""

    def __init__(self, setting: str, seconds: float | None) -> None:
        self.setting = setting
        self.seconds = seconds
        self._deadline = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def timed_out(self, name: str, what: str = "still running") -> Failure:
        return Failure(name, f"timed out: {what} after {self.seconds:g} s ({self.setting})")

    @contextlib.contextmanager
    def deadline(self) -> Iterator[None]:
        """Cancel the awaits in the body when the budget runs out; raise :class:`TimedOut` then.

        Runs in the current task (unlike ``asyncio.wait_for`` on 3.10), so a context manager
        entered here may be exited later by the same task.
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
            if sys.version_info >= (3, 11):
                task.uncancel()
            raise TimedOut from None
        finally:
            handle.cancel()


async def send_signal(
    signal: Signal, sender: Any, budget: Budget, label: str, **named: Any
) -> tuple[int, list[Failure]]:
    """Run every live receiver of ``signal``; return how many ran and the failures, in order."""
    sync_receivers, async_receivers = signal._live_receivers(sender)
    receivers: list[Callable[..., Any]] = [*sync_receivers, *async_receivers]
    failures: dict[int, Failure] = {}
    sync_done = 0  # how many sync receivers have finished, for timeout reports
    abandoned = False  # time is up: the sync worker starts no further receiver

    def failed(index: int, exc: Exception) -> None:
        failures[index] = Failure.from_exception(dotted_name(receivers[index]), exc)

    def timed(index: int, started: float) -> None:
        name = dotted_name(receivers[index])
        logger.debug(
            "%s receiver %s took %.1f ms", label, name, (time.perf_counter() - started) * 1000
        )
        phase = label.removeprefix("asgi_")
        log_step(phase, "receiver", name, started, index not in failures)

    def run_sync() -> None:
        nonlocal sync_done
        for index, receiver in enumerate(sync_receivers):
            if abandoned:
                return
            started = time.perf_counter()
            try:
                receiver(signal=signal, sender=sender, **named)
            except Exception as exc:
                failed(index, exc)
            timed(index, started)
            sync_done += 1

    async def run_async(index: int) -> None:
        started = time.perf_counter()
        try:
            await receivers[index](signal=signal, sender=sender, **named)
        except Exception as exc:
            failed(index, exc)
        timed(index, started)

    tasks: dict[asyncio.Future[None], int | None] = {
        asyncio.ensure_future(run_async(index)): index
        for index in range(len(sync_receivers), len(receivers))
    }
    if sync_receivers:
        tasks[asyncio.ensure_future(_in_worker_thread(run_sync)())] = None
    pending: set[asyncio.Future[None]] = set()
    try:
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=budget.remaining())
    except BaseException:  # we were cancelled: take the receivers down with us
        for task in tasks:
            task.cancel()
        raise
    abandoned = bool(pending)
    for task in pending:
        task.cancel()
    for task in pending:
        index = tasks[task]
        if index is not None:
            failures[index] = budget.timed_out(dotted_name(receivers[index]))
            continue
        # A thread cannot be interrupted: name the sync receiver running and those after it.
        failures[sync_done] = budget.timed_out(dotted_name(receivers[sync_done]))
        for later in range(sync_done + 1, len(sync_receivers)):
            failures[later] = budget.timed_out(dotted_name(receivers[later]), "never started")
    cancelled = [task for task in pending if tasks[task] is not None]
    if cancelled:
        await asyncio.wait(cancelled, timeout=_CANCEL_GRACE)
    return len(receivers), [failures[index] for index in sorted(failures)]
