"""Daphne with the ASGI lifespan: startup before listening; drain, then shutdown, before stopping.

Daphne never sends lifespan messages, gives scopes no ``state``, and cancels every running
application instance when it stops. This ``Server`` subclass drives the application's lifespan on
Daphne's own event loop (the one Twisted's asyncio reactor runs), hands every HTTP and WebSocket
scope a shallow copy of the state, and on stop closes the WebSockets (code 1012) and lets the
in-flight HTTP requests and WebSocket consumers finish, bounded by ``graceful_timeout``, before it
cancels what is left and lifespan shutdown runs. A stop asked for during startup lets startup
finish, then shuts down without serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from typing import Any

from daphne.server import Server  # installs Twisted's asyncio reactor
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import defer, reactor
from twisted.internet.error import ReactorNotRunning

from lifespan_signals.driver import LifespanDriver, LifespanFailed

__all__ = ["LifespanServer"]

logger = logging.getLogger("lifespan_signals.server")

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class LifespanServer(Server):  # type: ignore[misc]  # daphne is untyped
    """A Daphne ``Server`` that runs the application's lifespan around serving."""

    def __init__(
        self,
        application: Any,
        *,
        graceful_timeout: float = 5.0,
        lifespan_timeouts: tuple[float | None, float | None] = (None, None),
        on_listening: Callable[[list[tuple[str, int]]], None] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(application, **options)
        startup_timeout, shutdown_timeout = lifespan_timeouts
        self.driver = LifespanDriver(
            application, startup_timeout=startup_timeout, shutdown_timeout=shutdown_timeout
        )
        self.graceful_timeout = graceful_timeout
        self.on_listening = on_listening
        self.listen_failure: str | None = None
        self._ports: list[Any] = []

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop = reactor._asyncioEventloop
        return loop

    def run(self) -> None:
        """Run lifespan startup (raising :class:`LifespanFailed`), then serve until stopped."""
        asyncio.set_event_loop(self.loop)
        with self._stop_on_signals_during_startup():
            self.loop.run_until_complete(self.driver.startup())
        try:
            if not self.abort_start:  # stopped during startup: shut down without serving
                super().run()
        finally:
            # Daphne gives up before running the reactor when it cannot listen: no shutdown
            # trigger fired, so shut the lifespan down here.
            self.loop.run_until_complete(self._shutdown_lifespan())

    def stop(self) -> None:
        """Stop serving; during startup, make :meth:`run` shut down once startup is over."""
        with contextlib.suppress(ReactorNotRunning):  # stopping already
            super().stop()  # Daphne's: stops the reactor, or sets abort_start before it runs

    def stop_from_thread(self) -> None:
        """:meth:`stop`, asked from another thread than the server's."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is done
            self.loop.call_soon_threadsafe(self.stop)

    @contextlib.contextmanager
    def _stop_on_signals_during_startup(self) -> Iterator[None]:
        """When the server handles signals (Daphne's own handlers come with the reactor), a
        SIGINT or SIGTERM during startup stops it once startup is over; a second one, at once."""
        if not self.signal_handlers:
            yield
            return
        previous: dict[int, Any] = {}

        def stop_after_startup(signum: int, frame: object) -> None:
            self.abort_start = True
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        previous.update({sig: signal.signal(sig, stop_after_startup) for sig in _STOP_SIGNALS})
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        scope.setdefault("state", self.driver.state.copy())
        return super().create_application(protocol, scope)

    def listen_success(self, port: Any) -> None:
        super().listen_success(port)
        self._ports.append(port)
        if self.on_listening and len(self._ports) == len(self.endpoints):
            self.on_listening(self.listening_addresses)

    def listen_error(self, failure: Any) -> None:
        self.listen_failure = failure.getErrorMessage()
        super().listen_error(failure)

    def kill_all_applications(self) -> defer.Deferred[None]:
        # Daphne's own version cancels every application at once (and trips over a connection
        # upgraded to a WebSocket, which has no instance for a moment); ours drains first.
        return defer.Deferred.fromFuture(asyncio.ensure_future(self._shutdown()))

    async def _shutdown(self) -> None:
        await asyncio.gather(
            *(defer.maybeDeferred(port.stopListening).asFuture(self.loop) for port in self._ports)
        )
        running = {
            protocol: instance
            for protocol, details in self.connections.items()
            if (instance := details.get("application_instance")) and not instance.done()
        }
        sockets = [p for p in running if isinstance(p, WebSocketProtocol)]
        if in_flight := len(running) - len(sockets):
            logger.info("Waiting for %d in-flight request(s) to finish.", in_flight)
        for protocol in sockets:
            # As uvicorn does: close code 1012 (service restart). When the client answers, Daphne
            # sends the application websocket.disconnect, so consumers end as on any close.
            if protocol.state == protocol.STATE_OPEN:
                protocol.sendCloseFrame(code=1012)
        if running:
            await asyncio.wait(running.values(), timeout=self.graceful_timeout)
        rest = [instance for instance in running.values() if not instance.done()]
        for instance in rest:  # past the graceful timeout
            instance.cancel()
        if rest:
            await asyncio.wait(rest, timeout=self.application_close_timeout)
        await self._shutdown_lifespan()

    async def _shutdown_lifespan(self) -> None:
        try:
            await self.driver.shutdown()  # does nothing the second time
        except LifespanFailed:
            logger.warning("Lifespan shutdown reported a failure (its report is above).")
