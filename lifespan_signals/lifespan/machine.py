"""The lifespan state machine: the ASGI lifespan protocol driving clients, resources and signals."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable
from typing import Any

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, LifespanScope
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import Signal

from lifespan_signals._registry import Running, registry
from lifespan_signals.conf import redact, refused_settings, settings
from lifespan_signals.lifespan.background import BackgroundTasks
from lifespan_signals.lifespan.budget import Budget
from lifespan_signals.lifespan.clients import OpenClients
from lifespan_signals.lifespan.driver import InnerLifespan, LifespanFailed
from lifespan_signals.lifespan.failures import Failure, report
from lifespan_signals.lifespan.layers import OpenLayers
from lifespan_signals.lifespan.receivers import send_signal
from lifespan_signals.lifespan.resources import Entered, enter_resources, exit_resources
from lifespan_signals.lifespan.steps import EXTENSION, Record, Runner
from lifespan_signals.signals import asgi_shutdown, asgi_startup
from lifespan_signals.state import LiveState

__all__ = ["Lifespan", "LifespanProtocolError", "serve_lifespan"]

logger = logging.getLogger(__name__)


class LifespanProtocolError(RuntimeError):
    """The server sent lifespan messages that break the ASGI lifespan protocol."""


class Lifespan:
    """One lifespan: declared clients, resources and signals around one state dict.

    ``state`` is the server's dict; receivers get a :class:`~lifespan_signals.state.LiveState`
    over it. ``inner``: an application wrapped by ours whose own lifespan runs after our startup,
    before our shutdown. The lifespan owns its clients, and its :class:`Record` of steps and
    failures (the driver's, when a driver handed one over in the scope's extensions).
    """

    def __init__(
        self, sender: type[Any], scope: LifespanScope, state: dict[str, Any], inner: Any = None
    ) -> None:
        self.sender = sender
        self.scope = scope
        self.state = LiveState(state)
        extensions = scope.get("extensions") or {}
        record = extensions.get(EXTENSION) if isinstance(extensions, dict) else None
        self.record = record if isinstance(record, Record) else Record()
        self.clients = OpenClients()
        self.layers = OpenLayers()  # Channels' CHANNEL_LAYERS: after the clients, before resources
        self._inner = None if inner is None else InnerLifespan(inner, self.state)
        self._entered: Entered = []
        self._entry = Running(self.state, server=state)
        self._registered = contextlib.ExitStack()
        self._shut_down = False
        self.background = BackgroundTasks()

    async def startup(self) -> str | None:
        """Open clients, enter resources, send ``asgi_startup``; on failure shut down and report.

        First the settings' system checks run: what ``manage.py check`` refuses, startup refuses,
        with the check's id and message and no traceback.
        """
        started = time.perf_counter()
        self._registered.enter_context(registry.running(self._entry))
        try:
            failures = [Failure(f"{check_id}:", text) for check_id, text in refused_settings()]
            if not failures:
                budget = Budget.startup()
                settings.SHUTDOWN_TIMEOUT  # noqa: B018 - a bad value must stop startup, not shutdown
                failures = await self.clients.open(self._runner("startup", budget))
                if not failures:
                    registry.publish_clients(self._entry, self.clients.clients)
                failures = failures or await self.layers.open(self._runner("startup", budget))
                failures = failures or await enter_resources(
                    self.state, self._runner("startup", budget), self._entered
                )
                failures = failures or await self._send(
                    asgi_startup, self._runner("startup", budget)
                )
                if self._inner is not None:
                    failures = failures or await self._inner.startup(budget)
        except ImproperlyConfigured as exc:  # a bad setting no check saw (the app not installed)
            failures = [Failure("lifespan startup", f"refused a setting: {exc}")]
        except Exception as exc:  # fail startup rather than serve without what it should open
            failures = [Failure.from_exception("lifespan startup", exc)]
        if failures:
            text = self._failed("startup", failures)
            shutdown_report = await self.shutdown()
            return text if shutdown_report is None else f"{text}\n\n{shutdown_report}"
        logger.info(
            "Lifespan startup complete in %.1f ms (asgi_startup receivers: %d, resources: %d)",
            (time.perf_counter() - started) * 1000,
            self._count("startup", "receiver"),
            len(self._entered),
        )
        return None

    async def shutdown(self) -> str | None:
        """Send ``asgi_shutdown``, exit resources, close clients; return the failure report, if any.

        Every step runs even when one before it failed or was cancelled. Runs once: a second call
        (a cancellation during a failed startup's shutdown) returns None.
        """
        if self._shut_down:
            return None
        self._shut_down = True
        started = time.perf_counter()
        resources = len(self._entered)
        failures: list[Failure] = []
        with self._registered:
            budget = Budget.shutdown()
            try:
                if self._inner is not None:
                    failures += await _guarded(self._inner.shutdown(budget))
                failures += await _guarded(
                    self._send(asgi_shutdown, self._runner("shutdown", budget))
                )
            finally:  # resources and clients always close, also when the lifespan is cancelled
                # Before them: the tasks startup left running may still use them.
                failures += await _guarded(self.background.cancel(budget))
                runner = self._runner("shutdown", budget)
                failures += await _guarded(exit_resources(self._entered, runner))
                failures += await _guarded(self.layers.close(self._runner("shutdown", budget)))
                registry.publish_clients(self._entry, None)
                failures += await _guarded(self.clients.close(self._runner("shutdown", budget)))
        if failures:
            return self._failed("shutdown", failures)
        logger.info(
            "Lifespan shutdown complete in %.1f ms (asgi_shutdown receivers: %d, resources: %d)",
            (time.perf_counter() - started) * 1000,
            self._count("shutdown", "receiver"),
            resources,
        )
        return None

    def _failed(self, phase: str, failures: list[Failure]) -> str:
        """Record the phase's failures, with the clients' settings redacted, and log the report
        once: a server that is not ours prints the ``*.failed`` message itself (uvicorn, gunicorn's
        uvicorn workers, hypercorn and granian all do), a driver of ours relies on this log."""
        failures = [
            dataclasses.replace(
                failure,
                name=redact(failure.name),
                summary=redact(failure.summary),
                traceback=redact(failure.traceback),
            )
            for failure in failures
        ]
        self.record.failures[phase] = failures
        text = report(phase, failures)
        extensions = self.scope.get("extensions") or {}
        if isinstance(extensions, dict) and extensions.get(EXTENSION) is self.record:
            if _log_error(text):
                self.record.logged.add(phase)
        else:
            count = len(failures)
            logger.info(
                "Lifespan %s failed with %d %s; the server reports it.",
                phase,
                count,
                "failure" if count == 1 else "failures",
            )
        return text

    def _runner(self, phase: str, budget: Budget) -> Runner:
        """A runner for one group of steps (each group gives up on its own steps only)."""
        return Runner(phase, budget, self.record.steps)

    def _count(self, phase: str, kind: str) -> int:
        return sum(step.phase == phase and step.kind == kind for step in self.record.steps)

    async def _send(self, signal: Signal, runner: Runner) -> list[Failure]:
        return await send_signal(signal, self.sender, runner, scope=self.scope, state=self.state)


def _log_error(text: str) -> bool:
    """Log ``text`` at ERROR; whether the record got past the logger (not disabled, not
    filtered), so that it reaches a handler, or Python's last-resort one on stderr."""
    passed: list[logging.LogRecord] = []

    def note(record: logging.LogRecord) -> bool:
        passed.append(record)
        return True

    logger.addFilter(note)
    try:
        logger.error("%s", text)
    finally:
        logger.removeFilter(note)
    return bool(passed)


async def _guarded(step: Awaitable[list[Failure]]) -> list[Failure]:
    """A shutdown step's failures; an error of the step itself (not a receiver's) is one too."""
    try:
        return await step
    except Exception as exc:
        return [Failure.from_exception("lifespan shutdown", exc)]


async def serve_lifespan(
    sender: type[Any],
    scope: Any,
    receive: ASGIReceiveCallable,
    send: ASGISendCallable,
    inner: Any = None,
) -> None:
    """Speak the ASGI lifespan protocol for ``sender`` until shutdown (``scope["state"]`` set).

    ``inner``: an application ours wraps; its own lifespan, if it has one, runs inside ours.

    A failure is sent to the server as ``*.failed``, and then raised as
    :class:`~lifespan_signals.lifespan.driver.LifespanFailed` (its message: the report), as
    Starlette's lifespan does: lifespan clients that watch only the application's exception
    (asgi-lifespan's ``LifespanManager``, Starlette's ``TestClient``) see the failure at once, and
    servers, having had the ``*.failed`` message, do not report it again (granian would, at
    startup: it gets no exception). If the server's
    ``send()`` raises on that message (hypercorn does, to stop itself), its exception propagates
    untouched.
    """
    lifespan = Lifespan(sender, scope, scope["state"], inner)
    running = False
    try:
        while True:
            message = await receive()
            kind = message.get("type")
            if kind == "lifespan.startup" and not running:
                try:
                    with lifespan.background.tracking():
                        report = await lifespan.startup()
                except BaseException:  # cancelled half way: close what was opened
                    await lifespan.shutdown()
                    raise
                if report is not None:
                    await send({"type": "lifespan.startup.failed", "message": report})
                    if _logs_exception_after_startup_failed(send):
                        return
                    raise _raised(lifespan, "startup", report)
                running = True
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown" and running:
                running = False
                report = await lifespan.shutdown()
                if report is not None:
                    await send({"type": "lifespan.shutdown.failed", "message": report})
                    raise _raised(lifespan, "shutdown", report)
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                return
            else:
                raise LifespanProtocolError(_unexpected(kind, running))
    finally:
        if running:  # the server left (an error, a cancellation) without shutdown: close anyway
            await lifespan.shutdown()


def _logs_exception_after_startup_failed(send: Any) -> bool:
    """Whether the server logs the application's exception, traceback and all, after
    ``lifespan.startup.failed``: granian does (its worker's "ASGI lifespan startup failed"), and
    it has the report already, so the report would be printed twice more."""
    server = getattr(send, "__self__", None)
    return type(server).__module__ == "granian.asgi"


def _raised(lifespan: Lifespan, phase: str, report: str) -> LifespanFailed:
    failures = tuple(lifespan.record.failures.get(phase, ()))
    return LifespanFailed(report, reported=True, failures=failures)


def _unexpected(kind: object, running: bool) -> str:
    if kind == "lifespan.startup":
        return (
            "Received 'lifespan.startup' twice in one lifespan scope. A lifespan scope starts up "
            "once; start a new scope for a new cycle."
        )
    if kind == "lifespan.shutdown":
        return "Received 'lifespan.shutdown' before 'lifespan.startup' completed."
    expected = "'lifespan.shutdown'" if running else "'lifespan.startup'"
    return f"Unknown lifespan message type {kind!r}; expected {expected}."
