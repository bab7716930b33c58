"""The lifespan state machine: the ASGI lifespan protocol driving resources and signals."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import Any

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, LifespanScope
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import Signal

from lifespan_signals import state as _state
from lifespan_signals._client_lifecycle import close_clients, open_clients
from lifespan_signals.budget import Budget, Failure
from lifespan_signals.conf import DEFAULT_SHUTDOWN_TIMEOUT, settings
from lifespan_signals.dispatch import send_signal
from lifespan_signals.driver import InnerLifespan
from lifespan_signals.resources import Entered, enter_resources, exit_resources
from lifespan_signals.signals import asgi_shutdown, asgi_startup
from lifespan_signals.state import LiveState

__all__ = ["Lifespan", "LifespanProtocolError", "serve_lifespan"]

logger = logging.getLogger("lifespan_signals.lifespan")


class LifespanProtocolError(RuntimeError):
    """The server sent lifespan messages that break the ASGI lifespan protocol."""


class Lifespan:
    """One lifespan: declared clients, resources and signals around one state dict.

    ``state`` is the server's dict; receivers get a :class:`~.state.LiveState` over it. ``inner``:
    an application wrapped by ours whose own lifespan runs after our startup, before our shutdown.
    """

    def __init__(
        self, sender: type[Any], scope: LifespanScope, state: dict[str, Any], inner: Any = None
    ) -> None:
        self.sender = sender
        self.scope = scope
        self.state = LiveState(state)
        self._inner = None if inner is None else InnerLifespan(inner, self.state)
        self._entered: Entered = []
        self._running = contextlib.ExitStack()
        self._shut_down = False
        self._count = 0

    async def startup(self) -> str | None:
        """Open clients, enter resources, send ``asgi_startup``; on failure shut down and report."""
        started = time.perf_counter()
        self._running.enter_context(_state.running(self.state))
        try:
            budget = Budget("LIFESPAN_SIGNALS_STARTUP_TIMEOUT", settings.STARTUP_TIMEOUT)
            settings.SHUTDOWN_TIMEOUT  # noqa: B018 - a bad value must stop startup, not shutdown
            failures = await open_clients(self, budget)
            failures = failures or await enter_resources(self.state, budget, self._entered)
            failures = failures or await self._send(asgi_startup, budget, "startup")
            if self._inner is not None:
                failures = failures or await self._inner.startup(budget)
        except Exception as exc:  # a bad setting, say: fail startup rather than serve without it
            failures = [Failure.from_exception("lifespan startup", exc)]
        if failures:
            report = _report("startup", failures)
            logger.error("%s", report)
            shutdown_report = await self.shutdown()
            return report if shutdown_report is None else f"{report}\n\n{shutdown_report}"
        logger.info(
            "Lifespan startup complete in %.1f ms (asgi_startup receivers: %d, resources: %d)",
            (time.perf_counter() - started) * 1000,
            self._count,
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
        with self._running:
            budget = Budget("LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT", _shutdown_timeout())
            try:
                if self._inner is not None:
                    failures += await _guarded(self._inner.shutdown(budget))
                failures += await _guarded(self._send(asgi_shutdown, budget, "shutdown"))
            finally:  # resources always exit, also when the lifespan is cancelled
                failures += await _guarded(exit_resources(self._entered, budget))
                failures += await _guarded(close_clients(self, budget))
        if failures:
            report = _report("shutdown", failures)
            logger.error("%s", report)
            return report
        logger.info(
            "Lifespan shutdown complete in %.1f ms (asgi_shutdown receivers: %d, resources: %d)",
            (time.perf_counter() - started) * 1000,
            self._count,
            resources,
        )
        return None

    async def _send(self, signal: Signal, budget: Budget, phase: str) -> list[Failure]:
        self._count, failures = await send_signal(
            signal, self.sender, budget, phase, scope=self.scope, state=self.state
        )
        return failures


async def _guarded(step: Awaitable[list[Failure]]) -> list[Failure]:
    """A shutdown step's failures; an error of the step itself (not a receiver's) is one too."""
    try:
        return await step
    except Exception as exc:
        return [Failure.from_exception("lifespan shutdown", exc)]


def _shutdown_timeout() -> float | None:
    try:
        return settings.SHUTDOWN_TIMEOUT
    except ImproperlyConfigured:  # startup refused it already: still close what is open
        return DEFAULT_SHUTDOWN_TIMEOUT


def _report(phase: str, failures: list[Failure]) -> str:
    noun = "failure" if len(failures) == 1 else "failures"
    details = "\n\n".join(str(failure) for failure in failures)
    return f"Lifespan {phase} failed ({len(failures)} {noun}):\n\n{details}"


async def serve_lifespan(
    sender: type[Any],
    scope: Any,
    receive: ASGIReceiveCallable,
    send: ASGISendCallable,
    inner: Any = None,
) -> None:
    """Speak the ASGI lifespan protocol for ``sender`` until shutdown (``scope["state"]`` set).

    ``inner``: an application ours wraps; its own lifespan, if it has one, runs inside ours.

    A failure is sent to the server as ``*.failed``; if the server's ``send()`` raises on that
    (hypercorn does, to stop itself), its exception propagates untouched.
    """
    lifespan = Lifespan(sender, scope, scope["state"], inner)
    running = False
    try:
        while True:
            message = await receive()
            kind = message.get("type")
            if kind == "lifespan.startup" and not running:
                try:
                    report = await lifespan.startup()
                except BaseException:  # cancelled half way: close what was opened
                    await lifespan.shutdown()
                    raise
                if report is not None:
                    await send({"type": "lifespan.startup.failed", "message": report})
                    return
                running = True
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown" and running:
                running = False
                report = await lifespan.shutdown()
                if report is not None:
                    await send({"type": "lifespan.shutdown.failed", "message": report})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                return
            else:
                raise LifespanProtocolError(_unexpected(kind, running))
    finally:
        if running:  # the server left (an error, a cancellation) without shutdown: close anyway
            await lifespan.shutdown()


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
