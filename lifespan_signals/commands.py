"""Management commands that run inside the project's ASGI lifespan.

::

    from lifespan_signals import get_state
    from lifespan_signals.commands import LifespanCommand

    class Command(LifespanCommand):
        async def handle(self, *args, **options):
            client = get_state()["httpx"]
            response = await client.get("https://example.com/prices")

Startup runs before ``handle()`` (after the system checks), shutdown after it, also when it raises
or is interrupted with Ctrl+C or SIGTERM (a stopped cron job or Kubernetes Job). The lifespan runs
on an event loop in a thread of its own, where startup receivers open their clients. An
``async def handle()`` runs on that loop. A sync ``handle()`` runs in the main thread (so Ctrl+C
interrupts it), and the ``async_to_sync`` calls it makes run on that loop, where the clients work.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import os
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync, iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from lifespan_signals import state as _state
from lifespan_signals.asgi import (
    LifespanMiddleware,
    find_application,
    get_asgi_application,
    speaks_lifespan,
)
from lifespan_signals.conf import settings as lifespan_settings
from lifespan_signals.driver import LifespanDriver, LifespanFailed, backstop_timeouts
from lifespan_signals.reporting import LoggedReports

__all__ = ["LifespanCommand", "project_application"]

_T = TypeVar("_T")


def project_application() -> Any:
    """The project's ASGI application, able to speak lifespan (wrapped if it does not)."""
    found = find_application()
    application = get_asgi_application() if found is None else found[1]
    if speaks_lifespan(application) is False:
        application = LifespanMiddleware(application)
    return application


class LifespanCommand(BaseCommand):
    """A ``BaseCommand`` whose ``handle()`` runs inside the project's lifespan.

    ``lifespan_app``: the application whose lifespan runs (default: the project's). A failed
    startup raises :class:`~django.core.management.base.CommandError` with the report, and
    ``handle()`` does not run.
    """

    lifespan_app: Any = None
    _reports: LoggedReports

    def execute(self, *args: Any, **options: Any) -> str | None:
        # Django's execute() runs the checks, then handle(): put the lifespan around handle() only.
        handle = self.handle
        self.handle = lambda *a, **o: self._in_lifespan(handle, a, o)  # type: ignore[method-assign]
        try:
            output: str | None = super().execute(*args, **options)
        finally:
            del self.handle
        return output

    def _in_lifespan(
        self, handle: Callable[..., Any], args: tuple[Any, ...], options: dict[str, Any]
    ) -> Any:
        with _sigterm_as_ctrl_c(), _LoopThread() as loop, LoggedReports() as self._reports:
            driver = self._driver()
            try:
                state = loop.run(driver.startup())
            except LifespanFailed as exc:
                headline = "Lifespan startup failed, so the command did not run."
                raise CommandError(self._reports.explain(headline, exc.message)) from exc
            except KeyboardInterrupt:  # once startup was over: shut down without running
                self._shutdown(loop, driver, raising=False)
                raise
            pushed = not _state._running or _state._running[-1] is not state  # not our app
            if pushed:
                _state._enter(state)
            try:
                result = self._handle(loop, handle, args, options)
            except BaseException:
                self._shutdown(loop, driver, raising=False)  # the handle()'s error comes first
                raise
            else:
                self._shutdown(loop, driver, raising=True)
                return result
            finally:
                if pushed:
                    _state._exit(state)

    @staticmethod
    def _handle(
        loop: _LoopThread,
        handle: Callable[..., Any],
        args: tuple[Any, ...],
        options: dict[str, Any],
    ) -> Any:
        if iscoroutinefunction(handle):
            return loop.run(handle(*args, **options), cancel_on_interrupt=True)
        with loop.as_main_event_loop():
            return handle(*args, **options)

    def _driver(self) -> LifespanDriver:
        try:
            timeouts = backstop_timeouts(
                lifespan_settings.STARTUP_TIMEOUT, lifespan_settings.SHUTDOWN_TIMEOUT
            )
        except ImproperlyConfigured as exc:  # reached with --skip-checks
            raise CommandError(str(exc)) from exc
        app = self.lifespan_app
        if inspect.ismethod(app) and app.__self__ is self:  # a function set on the class
            app = app.__func__
        app = project_application() if app is None else app
        startup, shutdown = timeouts
        return LifespanDriver(app, startup_timeout=startup, shutdown_timeout=shutdown)

    def _shutdown(self, loop: _LoopThread, driver: LifespanDriver, *, raising: bool) -> None:
        try:
            loop.run(driver.shutdown())
        except LifespanFailed as exc:
            message = self._reports.explain("Lifespan shutdown failed.", exc.message)
            if raising:
                raise CommandError(message) from exc
            self.stderr.write(message)


class _LoopThread:
    """An event loop running in a daemon thread, for the lifespan and what runs on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="lifespan-loop", daemon=True
        )

    def __enter__(self) -> _LoopThread:
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

    def run(self, coroutine: Coroutine[Any, Any, _T], *, cancel_on_interrupt: bool = False) -> _T:
        """Run ``coroutine`` in a task on the loop and wait until that task has ended.

        Ctrl+C while waiting cancels the task when ``cancel_on_interrupt``, else (startup,
        shutdown) lets it finish; either way the interrupt is raised once the task has ended.
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
            started.append(self.loop.create_task(coroutine))
            started[0].add_done_callback(copy_outcome)

        self.loop.call_soon_threadsafe(start)
        interrupted: KeyboardInterrupt | None = None
        while True:
            try:
                done.wait()
            except KeyboardInterrupt as exc:
                interrupted = exc
                if cancel_on_interrupt:
                    self.loop.call_soon_threadsafe(lambda: started and started[0].cancel())
                continue
            if interrupted is not None:
                raise interrupted
            return ended.result()

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


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, as Ctrl+C does, so that shutdown runs (unless the
    process has a SIGTERM handler of its own, or this is not the main thread)."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
