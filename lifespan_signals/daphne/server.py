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

With ``signal_handlers``, SIGHUP stops the server as SIGTERM does, and a second Ctrl+C or SIGTERM
during startup or shutdown exits at once (status 1), saying what it abandons.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from daphne.http_protocol import WebRequest
from daphne.server import Server  # installs Twisted's asyncio reactor
from twisted.internet import defer, reactor
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import ReactorNotRunning

from lifespan_signals.conf import DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_STARTUP_TIMEOUT
from lifespan_signals.daphne import drain
from lifespan_signals.lifespan.driver import LifespanDriver, LifespanFailed, LifespanUnsupported
from lifespan_signals.lifespan.host import backstop_timeouts, force_exit

__all__ = ["LIFESPAN_MODES", "LifespanServer"]

logger = logging.getLogger(__name__)

# SIGHUP is POSIX only.
# uvicorn's --lifespan: "auto" serves an application that does not speak lifespan without it;
# "on" refuses it; "off" never sends lifespan messages.
LIFESPAN_MODES = ("auto", "on", "off")
# The backstops over the package's default budgets: an application that never answers does not
# hang the server for ever, also when no Django settings give the budgets.
DEFAULT_BACKSTOPS = backstop_timeouts(DEFAULT_STARTUP_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT)

_STOP_SIGNALS = [
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
]


class LifespanServer(Server):  # type: ignore[misc]  # daphne is untyped
    """A Daphne ``Server`` that runs the application's lifespan around serving.

    ``graceful_timeout`` (seconds, None for no limit) bounds the drain on stop.
    ``lifespan``: one of :data:`LIFESPAN_MODES`, with uvicorn's meanings. ``lifespan_timeouts``:
    how long (seconds; None: for ever) the application may take to answer ``lifespan.startup``
    and ``lifespan.shutdown``.
    """

    def __init__(
        self,
        application: Any,
        *,
        graceful_timeout: float | None = 5.0,
        lifespan: str = "auto",
        lifespan_timeouts: tuple[float | None, float | None] = DEFAULT_BACKSTOPS,
        on_listening: Callable[[list[tuple[str, int]]], None] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(application, **options)
        if lifespan not in LIFESPAN_MODES:
            raise ValueError(f"lifespan should be one of {LIFESPAN_MODES}, not {lifespan!r}")
        self.lifespan = lifespan
        self.lifespan_running = False  # whether scopes get the lifespan's state
        startup_timeout, shutdown_timeout = lifespan_timeouts
        self.driver = LifespanDriver(
            application, startup_timeout=startup_timeout, shutdown_timeout=shutdown_timeout
        )
        self.graceful_timeout = graceful_timeout
        self.on_listening = on_listening
        self.listen_failure: str | None = None
        self.phase = "starting up"  # then serving, draining, shutting down, done
        self.ports: list[Any] = []  # the listening ports (Twisted's), once listening
        self.http_channels: weakref.WeakSet[Any] = weakref.WeakSet()  # HTTP connections seen
        # The requests the drain gave up on (still running in a thread): see exit_if_abandoned().
        self.abandoned: list[str] = []
        self._refusing = False  # the drain is over: no request starts any more

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop = reactor._asyncioEventloop
        return loop

    def run(self) -> None:
        """Run lifespan startup (raising :class:`LifespanFailed`), then serve until stopped."""
        self._check_endpoints()
        asyncio.set_event_loop(self.loop)
        with self._stop_on_signals_during_startup():
            self.loop.run_until_complete(self._start_lifespan())
        try:
            if not self.abort_start:  # stopped during startup: shut down without serving
                self.phase = "serving"
                super().run()
        finally:
            # Daphne gives up before running the reactor when it cannot listen: no shutdown
            # trigger fired, so shut the lifespan down here.
            self.loop.run_until_complete(self._shutdown_lifespan())
            self.phase = "done"

    async def _start_lifespan(self) -> None:
        if self.lifespan == "off":
            return
        try:
            await self.driver.startup()
        except LifespanUnsupported as exc:
            if self.lifespan == "on":
                self._explain(exc)
                raise
            # As uvicorn's --lifespan auto: serve it without the lifespan, and say so once.
            logger.warning(
                "ASGI 'lifespan' protocol appears unsupported by %s; serving without the "
                "lifespan (--lifespan on refuses such an application).",
                _describe(self.driver.app),
            )
            logger.debug("%s", exc.message)
            return
        except LifespanFailed as exc:
            self._explain(exc)
            raise
        self.lifespan_running = True

    def _check_endpoints(self) -> None:
        """Exit (1, ``listen_failure`` set) before startup when an endpoint cannot be parsed:
        Daphne only parses them when it starts listening, after lifespan startup."""
        for endpoint in self.endpoints:
            try:
                serverFromString(reactor, endpoint)  # type: ignore[no-untyped-call]
            except (ValueError, TypeError, KeyError) as exc:
                self.listen_failure = f"Cannot listen on {endpoint!r}: {exc}"
                raise SystemExit(1) from exc

    def stop(self) -> None:
        """Stop serving; during startup, make :meth:`run` shut down once startup is over."""
        with contextlib.suppress(ReactorNotRunning):  # stopping already
            super().stop()  # Daphne's: stops the reactor, or sets abort_start before it runs

    def stop_from_thread(self) -> None:
        """:meth:`stop`, asked from another thread than the server's (or a signal handler)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is done
            self.loop.call_soon_threadsafe(self.stop)

    def exit_if_abandoned(self, code: int) -> None:
        """Once the server is done: when the drain abandoned requests, whose threads would keep
        the interpreter from exiting (it joins them), exit now with ``code``, output flushed."""
        if self.abandoned:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def force_exit(self) -> NoReturn:
        """Exit the process now (status 1), saying on stderr what is abandoned."""
        abandoned = {
            "starting up": "lifespan startup, and the shutdown after it",
            "serving": "the in-flight requests and lifespan shutdown",
            "draining": "the in-flight requests and lifespan shutdown",
            "shutting down": "lifespan shutdown",
        }.get(self.phase)
        if abandoned:
            force_exit(abandoned)
        os._exit(1)

    def _force_on_signal(self, signum: int, frame: object) -> None:
        self.force_exit()

    def _handle_signals_while_stopping(self) -> None:
        """A second Ctrl+C or SIGTERM forces the exit; a repeated SIGHUP changes nothing."""
        _handle(signal.SIGINT, self._force_on_signal)
        _handle(signal.SIGTERM, self._force_on_signal)
        if hasattr(signal, "SIGHUP"):
            # A Python no-op, not SIG_IGN: a signal already pending for a Python handler would
            # be reported as "ignored due to race condition".
            _handle(signal.SIGHUP, _ignore)

    def _explain(self, exc: LifespanFailed) -> None:
        """Log the failure unless the application logged it already (lifespan_signals' do)."""
        if not exc.logged:
            logger.error("%s", exc.message)

    @contextlib.contextmanager
    def _stop_on_signals_during_startup(self) -> Iterator[None]:
        """When the server handles signals, a SIGINT, SIGTERM or SIGHUP during startup stops it
        once startup is over (a second Ctrl+C or SIGTERM exits at once). After startup they stop
        it (the reactor may put its own handlers for SIGINT and SIGTERM in their place)."""
        if not self.signal_handlers:
            yield
            return

        def stop_after_startup(signum: int, frame: object) -> None:
            self.abort_start = True
            self._handle_signals_while_stopping()

        for sig in _STOP_SIGNALS:
            _handle(sig, stop_after_startup)
        yield
        if not self.abort_start:
            for sig in _STOP_SIGNALS:
                _handle(sig, lambda signum, frame: self.stop_from_thread())

    def protocol_connected(self, protocol: Any) -> None:
        super().protocol_connected(protocol)
        if isinstance(protocol, WebRequest):
            self.http_channels.add(protocol.channel)

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        if isinstance(protocol, WebRequest) and self.phase != "serving":
            if self._refusing:
                protocol.basic_error(503, b"Service Unavailable", "The server is stopping.")
                return None
            drain.close_after_response(protocol)  # a keep-alive request during the drain
        if self.lifespan_running:
            scope.setdefault("state", self.driver.state.copy())
        return super().create_application(protocol, scope)

    def listen_success(self, port: Any) -> None:
        super().listen_success(port)
        self.ports.append(port)
        if self.on_listening and len(self.ports) == len(self.endpoints):
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
            await drain.finish_requests(self)
            self._refusing = True
            await drain.cancel_the_rest(self)
        except Exception:  # a bug of ours or Daphne's must not cost the lifespan its shutdown
            logger.exception("Draining the connections failed; lifespan shutdown runs anyway.")
        await self._shutdown_lifespan()

    async def _shutdown_lifespan(self) -> None:
        self.phase = "shutting down"
        try:
            await self.driver.shutdown()  # does nothing the second time
        except LifespanFailed as exc:
            self._explain(exc)


def _describe(app: Any) -> str:
    name = getattr(app, "__qualname__", None) or type(app).__qualname__
    return f"{getattr(app, '__module__', None) or type(app).__module__}.{name}"


def _ignore(signum: int, frame: object) -> None:
    pass


def _handle(sig: int, handler: Callable[[int, Any], None]) -> Any:
    """Install ``handler`` for ``sig`` unless ``sig`` is ignored (a background job's SIGINT, a
    ``nohup``'s SIGHUP stay ignored); return the previous handler."""
    previous = signal.getsignal(sig)
    if previous is not signal.SIG_IGN:
        signal.signal(sig, handler)
    return previous
