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
from collections.abc import Callable, Iterator
from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from lifespan_signals.asgi import project_application
from lifespan_signals.lifespan.driver import LifespanDriver, LifespanFailed
from lifespan_signals.lifespan.host import LoopThread, settings_backstops, sigterm_as_ctrl_c

__all__ = ["LifespanCommand", "command_errors"]


@contextlib.contextmanager
def command_errors() -> Iterator[None]:
    """A bad ``LIFESPAN_SIGNALS_*`` setting (past ``--skip-checks``) as a ``CommandError``."""
    try:
        yield
    except ImproperlyConfigured as exc:
        raise CommandError(str(exc)) from exc


class LifespanCommand(BaseCommand):
    """A ``BaseCommand`` whose ``handle()`` runs inside the project's lifespan.

    ``lifespan_app``: the application whose lifespan runs (default: the project's). A failed
    startup raises :class:`~django.core.management.base.CommandError` with the report, and
    ``handle()`` does not run.
    """

    lifespan_app: Any = None
    #: True: ``handle()`` runs in the lifespan already running in this process, on its loop,
    #: instead of a lifespan of its own (``manage.py lifespan run`` sets it).
    joins_running_lifespan = False
    #: The driver of the last run: its ``record`` holds every step that ran, with its time.
    lifespan_driver: LifespanDriver | None = None

    def execute(self, *args: Any, **options: Any) -> str | None:
        if self.joins_running_lifespan:
            return self._in_running_lifespan(*args, **options)
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
        with sigterm_as_ctrl_c(), LoopThread() as loop:
            driver = self.lifespan_driver = self._driver()
            try:
                loop.run(driver.startup(), abandons="lifespan startup, and the shutdown after it")
            except LifespanFailed as exc:
                headline = "Lifespan startup failed, so the command did not run."
                raise CommandError(exc.explain(headline)) from exc
            except KeyboardInterrupt:  # once startup was over: shut down without running
                self._shutdown(loop, driver, raising=False)
                raise
            with driver.registered():
                try:
                    result = self._handle(loop, handle, args, options)
                except BaseException:
                    self._shutdown(loop, driver, raising=False)  # handle()'s error comes first
                    raise
                else:
                    self._shutdown(loop, driver, raising=True)
                    return result

    def _in_running_lifespan(self, *args: Any, **options: Any) -> str | None:
        handle = self.handle
        if iscoroutinefunction(handle):  # on the running lifespan's loop, as in its own
            self.handle = lambda *a, **o: async_to_sync(handle)(*a, **o)  # type: ignore[method-assign]
        try:
            output: str | None = super().execute(*args, **options)
        finally:
            self.__dict__.pop("handle", None)
        return output

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
            try:
                return handle(*args, **options)
            except KeyboardInterrupt:  # the first: the next one during shutdown exits at once
                loop.interrupts += 1
                raise

    def _driver(self) -> LifespanDriver:
        with command_errors():
            startup, shutdown = settings_backstops()
        app = self.lifespan_app
        if inspect.ismethod(app) and app.__self__ is self:  # a function set on the class
            app = app.__func__
        app = project_application().application if app is None else app
        return LifespanDriver(app, startup_timeout=startup, shutdown_timeout=shutdown)

    def _shutdown(self, loop: LoopThread, driver: LifespanDriver, *, raising: bool) -> None:
        try:
            loop.run(driver.shutdown())
        except LifespanFailed as exc:
            message = exc.explain("Lifespan shutdown failed.")
            if raising:
                raise CommandError(message) from exc
            self.stderr.write(message)
