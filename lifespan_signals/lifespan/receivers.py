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
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import AsyncToSync, SyncToAsync, sync_to_async
from django.db import connections
from django.dispatch import Signal

from lifespan_signals.lifespan.failures import Failure, dotted_name
from lifespan_signals.lifespan.steps import Runner

__all__ = ["send_signal"]

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


async def send_signal(signal: Signal, sender: Any, runner: Runner, **named: Any) -> list[Failure]:
    """Run every live receiver of ``signal`` as steps of ``runner``; return the failures."""
    sync_receivers, async_receivers = signal._live_receivers(sender)
    moved = [receiver for receiver in sync_receivers if _is_async(receiver)]
    sync_runs = [
        (runner.step("receiver", dotted_name(r)), r) for r in sync_receivers if not _is_async(r)
    ]
    async_runs = [(runner.step("receiver", dotted_name(r)), r) for r in [*async_receivers, *moved]]

    def run_sync() -> None:
        for step, receiver in sync_runs:
            if not runner.start(step):
                return  # time is up: start no further receiver
            failure = None
            try:
                result = receiver(signal=signal, sender=sender, **named)
                if inspect.isawaitable(result):
                    failure = _returned_awaitable(step.name, result)
            except BaseException as exc:  # SystemExit too: a failure of this receiver
                failure = Failure.from_exception(step.name, exc)
            runner.finish(step, failure)

    def starter(receiver: Callable[..., Any]) -> Callable[[], Any]:
        return lambda: receiver(signal=signal, sender=sender, **named)

    return await runner.together(
        [(step, starter(receiver)) for step, receiver in async_runs],
        threads=[_in_worker_thread(run_sync)()] if sync_runs else [],
        thread_steps=[step for step, _ in sync_runs],
    )
