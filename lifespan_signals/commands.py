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

import contextlib
import inspect
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from lifespan_signals import state as _state
from lifespan_signals.asgi import (
    LifespanWrapper,
    find_application,
    get_asgi_application,
    speaks_lifespan,
)
from lifespan_signals.conf import settings as lifespan_settings
from lifespan_signals.driver import LifespanDriver, LifespanFailed, backstop_timeouts
from lifespan_signals.loop_thread import LoopThread, sigterm_as_ctrl_c
from lifespan_signals.reporting import LoggedReports

__all__ = ["LifespanCommand", "project_application"]


def project_application() -> Any:
    """The project's ASGI application, able to speak lifespan (wrapped if it does not)."""
    found = find_application()
    application = get_asgi_application() if found is None else found[1]
    if speaks_lifespan(application) is False:
        application = LifespanWrapper(application)
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
        with sigterm_as_ctrl_c(), LoopThread() as loop, LoggedReports() as self._reports:
            driver = self._driver()
            try:
                state = loop.run(driver.startup())
            except LifespanFailed as exc:
                headline = "Lifespan startup failed, so the command did not run."
                raise CommandError(self._reports.explain(headline, exc.message)) from exc
            except KeyboardInterrupt:  # once startup was over: shut down without running
                self._shutdown(loop, driver, raising=False)
                raise
            with _get_state_returns(state):
                try:
                    result = self._handle(loop, handle, args, options)
                except BaseException:
                    self._shutdown(loop, driver, raising=False)  # handle()'s error comes first
                    raise
                else:
                    self._shutdown(loop, driver, raising=True)
                    return result

    @staticmethod
    def _handle(
        loop: LoopThread,
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

    def _shutdown(self, loop: LoopThread, driver: LifespanDriver, *, raising: bool) -> None:
        try:
            loop.run(driver.shutdown())
        except LifespanFailed as exc:
            message = self._reports.explain("Lifespan shutdown failed.", exc.message)
            if raising:
                raise CommandError(message) from exc
            self.stderr.write(message)


def _get_state_returns(state: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
    """Make :func:`~lifespan_signals.get_state` return the lifespan's state in the block.

    lifespan_signals' own applications have done so during startup (with a live view of
    ``state``); the state of an application of another kind is made current here.
    """
    try:
        current = _state.get_state()
    except _state.LifespanNotStarted:
        current = None
    if isinstance(current, _state.LiveState) and current.server is state:
        return contextlib.nullcontext()
    return _state.running(state)
