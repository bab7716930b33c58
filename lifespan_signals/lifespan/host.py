"""What a host of the lifespan needs besides the driver: backstop timeouts, and an event loop in a
thread of its own for code that runs the lifespan outside a server.

Hosts are ``runasgi``, ``lifespan-daphne``, :class:`~lifespan_signals.commands.LifespanCommand` and
:mod:`lifespan_signals.testing`. With the loop thread, the main thread stays free for sync code (a
management command's ``handle()``) and for Ctrl+C; coroutines run on the loop, where the
lifespan's clients live.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, NoReturn, TypeVar

from asgiref.sync import SyncToAsync

from lifespan_signals.conf import settings as lifespan_settings

__all__ = [
    "BACKSTOP_MARGIN",
    "LoopThread",
    "Terminated",
    "backstop_timeouts",
    "settings_backstops",
    "sigterm_as_ctrl_c",
]

_T = TypeVar("_T")

# How much longer than the application's own time budgets a driver waits for its replies: a
# lifespan_signals application reports a hanging receiver by name before this runs out.
BACKSTOP_MARGIN = 5.0


def backstop_timeouts(
    startup: float | None, shutdown: float | None
) -> tuple[float | None, float | None]:
    """Driver timeouts for an application whose own budgets are ``startup`` and ``shutdown``.

    A failed startup runs shutdown before it replies, so the startup backstop covers both.
    """
    shutdown_backstop = None if shutdown is None else shutdown + BACKSTOP_MARGIN
    if startup is None or shutdown_backstop is None:
        return None, shutdown_backstop
    return startup + shutdown_backstop, shutdown_backstop


def settings_backstops() -> tuple[float | None, float | None]:
    """The driver's backstops over the project's own time budgets (its settings).

    None, None when Django's settings are not configured (an application that is not Django's);
    ``ImproperlyConfigured`` for a bad ``LIFESPAN_SIGNALS_*_TIMEOUT``.
    """
    from django.conf import settings

    if not settings.configured:
        return None, None
    return backstop_timeouts(lifespan_settings.STARTUP_TIMEOUT, lifespan_settings.SHUTDOWN_TIMEOUT)


def force_exit(abandons: str) -> NoReturn:
    """Exit the process now (status 1), saying on stderr what is abandoned."""
    sys.stderr.write(f"Forced exit: abandoning {abandons}.\n")
    sys.stderr.flush()
    os._exit(1)


class LoopThread:
    """An event loop running in a daemon thread, for the lifespan and what runs on it."""

    def __init__(self) -> None:
        #: The Ctrl+C (or SIGTERM, with sigterm_as_ctrl_c) heard so far, in run() or outside it.
        self.interrupts = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="lifespan-loop", daemon=True
        )

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        try:  # as asyncio.run() ends: cancel what is left, then close
            if tasks := asyncio.all_tasks(self.loop):
                for task in tasks:
                    task.cancel()
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def run(
        self,
        coroutine: Coroutine[Any, Any, _T],
        *,
        cancel_on_interrupt: bool = False,
        abandons: str = "lifespan shutdown",
    ) -> _T:
        """Run ``coroutine`` in a task on the loop and wait until that task has ended.

        Ctrl+C while waiting cancels the task when ``cancel_on_interrupt``, else (startup,
        shutdown) lets it finish; either way the interrupt is raised once the task has ended.
        A second Ctrl+C while startup or shutdown runs exits at once (status 1), saying on
        stderr what it ``abandons``, as ``runasgi`` does.
        """
        ended: concurrent.futures.Future[_T] = concurrent.futures.Future()
        done = threading.Event()
        started: list[asyncio.Task[_T]] = []

        def copy_outcome(task: asyncio.Task[_T]) -> None:
            if task.cancelled():
                ended.cancel()
            elif (error := task.exception()) is not None:
                ended.set_exception(error)
            else:
                ended.set_result(task.result())
            done.set()

        def start() -> None:
            started.append(self.loop.create_task(_carry(coroutine)))
            started[0].add_done_callback(copy_outcome)

        self.loop.call_soon_threadsafe(start)
        interrupted: KeyboardInterrupt | None = None
        while True:
            try:
                done.wait()
            except KeyboardInterrupt as exc:
                interrupted = exc
                self.interrupts += 1
                if not cancel_on_interrupt and self.interrupts > 1:
                    force_exit(abandons)
                if cancel_on_interrupt:
                    self.loop.call_soon_threadsafe(lambda: started and started[0].cancel())
                continue
            if interrupted is not None:
                raise interrupted
            try:
                return ended.result()
            except _Escaped as escaped:
                raise escaped.__cause__ from None  # type: ignore[misc]  # always set by _carry

    @contextlib.contextmanager
    def as_main_event_loop(self) -> Iterator[None]:
        """Make ``async_to_sync`` calls from this thread run on the loop, as they do in a
        ``sync_to_async`` function called from it (asgiref reads these thread-locals)."""
        local = SyncToAsync.threadlocal
        saved = {name: getattr(local, name, None) for name in _MAIN_LOOP_LOCALS}
        local.main_event_loop, local.main_event_loop_pid = self.loop, os.getpid()
        try:
            yield
        finally:
            for name, value in saved.items():
                setattr(local, name, value)


_MAIN_LOOP_LOCALS = ("main_event_loop", "main_event_loop_pid")


class _Escaped(Exception):
    """A ``SystemExit`` or ``KeyboardInterrupt`` raised in a task, carried out of it (as its
    ``__cause__``) as an ``Exception``: asyncio re-raises those two out of ``run_forever``, which
    would end the loop's thread and leave :meth:`LoopThread.run` waiting for ever."""


async def _carry(coroutine: Coroutine[Any, Any, _T]) -> _T:
    try:
        return await coroutine
    except (KeyboardInterrupt, SystemExit) as exc:
        raise _Escaped from exc


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl+C's KeyboardInterrupt would be, so that the same clean-up runs."""


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) in the block, as Ctrl+C does, so
    that shutdown runs; leaving the block then exits with code 143 (128 + SIGTERM), as a process
    stopped by SIGTERM does, through the interpreter's normal exit (``atexit`` hooks run).

    In the main thread only (where Python runs signal handlers), and unless SIGTERM is ignored.
    A handler installed before (coverage's, say) is put back afterwards.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    ):
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated("SIGTERM")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except Terminated:
        raise SystemExit(128 + signal.SIGTERM) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
