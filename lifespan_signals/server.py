"""Daphne with the ASGI lifespan: startup before listening; drain, then shutdown, before stopping.

Daphne never sends lifespan messages, gives scopes no ``state``, and cancels every running
application instance when it stops. This ``Server`` subclass drives the application's lifespan on
Daphne's own event loop (the one Twisted's asyncio reactor runs), hands every HTTP and WebSocket
scope a shallow copy of the state, and on stop closes the WebSockets (code 1012) and lets the
in-flight HTTP requests and WebSocket consumers finish, bounded by ``graceful_timeout``, before it
cancels what is left and lifespan shutdown runs. A stop asked for during startup lets startup
finish, then shuts down without serving.

Keep-alive HTTP/1.1 connections are drained too: once the stop begins, idle ones are closed, busy
ones close after their response, and a request that arrives meanwhile on one of them is waited
for like the others; none starts after the drain.

With ``signal_handlers``, SIGHUP stops the server as SIGTERM does, and a second Ctrl+C (SIGINT)
during startup or shutdown exits at once (status 1), saying what it abandons.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from daphne.http_protocol import WebRequest
from daphne.server import Server  # installs Twisted's asyncio reactor
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import defer, reactor
from twisted.internet.error import ReactorNotRunning

from lifespan_signals.asgi import speaks_lifespan
from lifespan_signals.driver import LifespanDriver, LifespanFailed

__all__ = ["LifespanServer"]

logger = logging.getLogger("lifespan_signals.server")

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# How often the drain looks again for requests that keep-alive connections started meanwhile.
_DRAIN_POLL = 0.05


class LifespanServer(Server):  # type: ignore[misc]  # daphne is untyped
    """A Daphne ``Server`` that runs the application's lifespan around serving.

    ``graceful_timeout`` (seconds, None for no limit) bounds the drain on stop.
    """

    def __init__(
        self,
        application: Any,
        *,
        graceful_timeout: float | None = 5.0,
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
        self.phase = "starting up"  # then serving, draining, shutting down, done
        self._ports: list[Any] = []
        self._channels: weakref.WeakSet[Any] = weakref.WeakSet()  # HTTP connections seen
        self._refusing = False  # the drain is over: no request starts any more

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop = reactor._asyncioEventloop
        return loop

    def run(self) -> None:
        """Run lifespan startup (raising :class:`LifespanFailed`), then serve until stopped."""
        asyncio.set_event_loop(self.loop)
        with self._stop_on_signals_during_startup():
            try:
                self.loop.run_until_complete(self.driver.startup())
            except LifespanFailed as exc:
                self._explain(exc)
                raise
        try:
            if not self.abort_start:  # stopped during startup: shut down without serving
                self.phase = "serving"
                if self.signal_handlers:  # Twisted handles SIGINT and SIGTERM, not SIGHUP
                    signal.signal(signal.SIGHUP, lambda signum, frame: self.stop_from_thread())
                super().run()
        finally:
            # Daphne gives up before running the reactor when it cannot listen: no shutdown
            # trigger fired, so shut the lifespan down here.
            self.loop.run_until_complete(self._shutdown_lifespan())
            self.phase = "done"

    def stop(self) -> None:
        """Stop serving; during startup, make :meth:`run` shut down once startup is over."""
        with contextlib.suppress(ReactorNotRunning):  # stopping already
            super().stop()  # Daphne's: stops the reactor, or sets abort_start before it runs

    def stop_from_thread(self) -> None:
        """:meth:`stop`, asked from another thread than the server's (or a signal handler)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is done
            self.loop.call_soon_threadsafe(self.stop)

    def force_exit(self) -> NoReturn:
        """Exit the process now (status 1), saying on stderr what is abandoned."""
        abandoned = {
            "starting up": "lifespan startup, and the shutdown after it",
            "serving": "the in-flight requests and lifespan shutdown",
            "draining": "the in-flight requests and lifespan shutdown",
            "shutting down": "lifespan shutdown",
        }.get(self.phase)
        if abandoned:
            sys.stderr.write(f"Forced exit: abandoning {abandoned}.\n")
            sys.stderr.flush()
        os._exit(1)

    def _force_on_signal(self, signum: int, frame: object) -> None:
        self.force_exit()

    def _handle_signals_while_stopping(self) -> None:
        """A second Ctrl+C forces the exit; a repeated SIGTERM or SIGHUP changes nothing."""
        signal.signal(signal.SIGINT, self._force_on_signal)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            # A Python no-op, not SIG_IGN: a signal already pending for a Python handler would
            # be reported as "ignored due to race condition".
            signal.signal(sig, _ignore)

    def _explain(self, exc: LifespanFailed) -> None:
        """Log the failure unless the application logged it already (lifespan_signals' do)."""
        if not (exc.reported and speaks_lifespan(self.application)):
            logger.error("%s", exc.message)

    @contextlib.contextmanager
    def _stop_on_signals_during_startup(self) -> Iterator[None]:
        """When the server handles signals (Daphne's own handlers come with the reactor), a
        SIGINT, SIGTERM or SIGHUP during startup stops it once startup is over; a second
        SIGINT exits at once."""
        if not self.signal_handlers:
            yield
            return

        def stop_after_startup(signum: int, frame: object) -> None:
            self.abort_start = True
            self._handle_signals_while_stopping()

        previous = {sig: signal.signal(sig, stop_after_startup) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            if not self.abort_start:  # serving next: the reactor installs its own handlers
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    def protocol_connected(self, protocol: Any) -> None:
        super().protocol_connected(protocol)
        if isinstance(protocol, WebRequest):
            self._channels.add(protocol.channel)

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        if isinstance(protocol, WebRequest) and self.phase != "serving":
            if self._refusing:
                protocol.basic_error(503, b"Service Unavailable", "The server is stopping.")
                return None
            _close_after_response(protocol)  # a keep-alive request during the drain
        scope.setdefault("state", self.driver.state.copy())
        return super().create_application(protocol, scope)

    def listen_success(self, port: Any) -> None:
        super().listen_success(port)
        self._ports.append(port)
        if self.on_listening and len(self._ports) == len(self.endpoints):
            self.on_listening(self.listening_addresses)

    def listen_error(self, failure: Any) -> None:
        # Daphne's logs it too; the command that runs the server reports listen_failure once.
        self.listen_failure = failure.getErrorMessage()
        self.stop()

    def kill_all_applications(self) -> defer.Deferred[None]:
        # Daphne's own version cancels every application at once (and trips over a connection
        # upgraded to a WebSocket, which has no instance for a moment); ours drains first.
        return defer.Deferred.fromFuture(asyncio.ensure_future(self._shutdown()))

    async def _shutdown(self) -> None:
        self.phase = "draining"
        if self.signal_handlers:
            self._handle_signals_while_stopping()
        try:
            await self._stop_serving()
        except Exception:  # a bug of ours or Daphne's must not cost the lifespan its shutdown
            logger.exception("Draining the connections failed; lifespan shutdown runs anyway.")
        await self._shutdown_lifespan()

    async def _stop_serving(self) -> None:
        await asyncio.gather(
            *(defer.maybeDeferred(port.stopListening).asFuture(self.loop) for port in self._ports)
        )
        for protocol in list(self.connections):
            if isinstance(protocol, WebRequest):
                _close_after_response(protocol)
            # As uvicorn does: close code 1012 (service restart). When the client answers, Daphne
            # sends the application websocket.disconnect, so consumers end as on any close.
            elif isinstance(protocol, WebSocketProtocol) and protocol.state == protocol.STATE_OPEN:
                protocol.sendCloseFrame(code=1012)
        if in_flight := sum(isinstance(p, WebRequest) for p in self._busy()):
            logger.info("Waiting for %d in-flight request(s) to finish.", in_flight)
        await self._drain()
        self._refusing = True
        rest = [instance for instance in self._instances() if not instance.done()]
        for instance in rest:  # past the graceful timeout
            instance.cancel()
        if rest:
            await asyncio.wait(rest, timeout=self.application_close_timeout)

    async def _drain(self) -> None:
        """Wait until no request or consumer runs (or the graceful timeout), looking again and
        again: a keep-alive connection may start a request meanwhile."""
        budget = math.inf if self.graceful_timeout is None else self.graceful_timeout
        deadline = self.loop.time() + budget
        while busy := self._busy():
            self._close_idle_channels()
            wait = min(_DRAIN_POLL, deadline - self.loop.time())
            if wait <= 0:
                return
            running = [instance for instance in busy.values() if instance is not None]
            if running:
                await asyncio.wait(running, timeout=wait)
            else:  # a request still arriving: it gets its instance in a moment
                await asyncio.sleep(wait)
        self._close_idle_channels()

    def _busy(self) -> dict[Any, asyncio.Future[Any] | None]:
        """The running application instances, and (with None) the HTTP requests that are
        arriving and have none yet."""
        busy: dict[Any, asyncio.Future[Any] | None] = {}
        for protocol, details in list(self.connections.items()):
            instance = details.get("application_instance")
            # A request that arrives has no instance yet; basic_error() disconnects it.
            arriving = instance is None and "disconnected" not in details
            if instance is not None and not instance.done():
                busy[protocol] = instance
            elif arriving and isinstance(protocol, WebRequest):
                busy[protocol] = None
        return busy

    def _instances(self) -> list[asyncio.Future[Any]]:
        return [
            instance
            for details in list(self.connections.values())
            if (instance := details.get("application_instance")) is not None
        ]

    def _close_idle_channels(self) -> None:
        for channel in list(self._channels):
            if not channel.requests and channel.transport is not None:
                channel.transport.loseConnection()

    async def _shutdown_lifespan(self) -> None:
        self.phase = "shutting down"
        try:
            await self.driver.shutdown()  # does nothing the second time
        except LifespanFailed as exc:
            self._explain(exc)


def _ignore(signum: int, frame: object) -> None:
    pass


def _close_after_response(request: Any) -> None:
    """Make a keep-alive connection close once ``request``'s response is sent."""
    channel = getattr(request, "channel", None)  # Twisted deletes it once the request is done
    if channel is None:
        return
    channel.persistent = False
    if not request.startedWriting:
        request.responseHeaders.setRawHeaders(b"connection", [b"close"])
