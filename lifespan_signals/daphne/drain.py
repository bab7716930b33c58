"""Draining a Daphne server's connections when it stops, keep-alive connections included.

Daphne tracks one "protocol" per HTTP request (a ``WebRequest``, whose ``channel`` is the TCP
connection) and one per WebSocket, each with its application instance once the request has
arrived. A keep-alive HTTP/1.1 connection may start a new request at any time, so one look at the
running instances is not enough: the drain closes the idle keep-alive connections, makes busy ones
close after their response, and looks again until nothing runs or the graceful timeout is over.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from daphne.http_protocol import WebRequest
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import defer

__all__ = ["GRACE", "cancel_the_rest", "close_after_response", "describe", "finish_requests"]

logger = logging.getLogger(__name__)

# After the graceful timeout: how long requests told their client is gone get to end, then how
# long the cancelled ones get, before they are abandoned.
GRACE = 1.0
# How often the drain looks again for requests that keep-alive connections started meanwhile.
_POLL = 0.05


async def finish_requests(server: Any) -> None:
    """Stop listening, close the WebSockets (code 1012) and keep-alive connections, and wait for
    the requests and consumers, for ``server.graceful_timeout`` seconds at most (None: no limit)."""
    await asyncio.gather(
        *(defer.maybeDeferred(port.stopListening).asFuture(server.loop) for port in server.ports)
    )
    for protocol in list(server.connections):
        if isinstance(protocol, WebRequest):
            close_after_response(protocol)
        # As uvicorn does: close code 1012 (service restart). When the client answers, Daphne
        # sends the application websocket.disconnect, so consumers end as on any close.
        elif isinstance(protocol, WebSocketProtocol) and protocol.state == protocol.STATE_OPEN:
            protocol.sendCloseFrame(code=1012)
    if in_flight := sum(isinstance(protocol, WebRequest) for protocol in _busy(server)):
        logger.info("Waiting for %d in-flight request(s) to finish.", in_flight)
    budget = math.inf if server.graceful_timeout is None else server.graceful_timeout
    deadline = server.loop.time() + budget
    while busy := _busy(server):
        _close_idle_connections(server)
        wait = min(_POLL, deadline - server.loop.time())
        if wait <= 0:
            return
        running = [instance for instance in busy.values() if instance is not None]
        if running:
            await asyncio.wait(running, timeout=wait)
        else:  # a request still arriving: it gets its instance in a moment
            await asyncio.sleep(wait)
    _close_idle_connections(server)


async def cancel_the_rest(server: Any) -> None:
    """End the application instances still running past the graceful timeout, or abandon them.

    An HTTP request is first told its client is gone (``http.disconnect``, as Daphne says when a
    client hangs up): Django's handler then cancels the view itself, which cancelling the
    instance from outside does not do (Django 5.2-6.1 wait on the view's task, unshielded, and
    leave it running). What is still running :data:`GRACE` later is cancelled, and what is still
    running another :data:`GRACE` later (a sync view in its thread, which nothing can interrupt)
    is abandoned: logged by name, and listed in ``server.abandoned``, so that the command exits
    without waiting for its thread.
    """
    running = {
        protocol: instance
        for protocol, details in list(server.connections.items())
        if (instance := details.get("application_instance")) is not None and not instance.done()
    }
    told = [
        instance
        for protocol, instance in running.items()
        if isinstance(protocol, WebRequest) and protocol.application_queue is not None
    ]
    for protocol in running:
        if isinstance(protocol, WebRequest) and protocol.application_queue is not None:
            protocol.application_queue.put_nowait({"type": "http.disconnect"})
    if told:
        await asyncio.wait(told, timeout=min(GRACE, server.application_close_timeout))
    rest = [instance for instance in running.values() if not instance.done()]
    for instance in rest:
        instance.cancel()
    if rest:
        await asyncio.wait(rest, timeout=GRACE)
    for protocol, instance in running.items():
        if not instance.done():
            described = describe(protocol)
            server.abandoned.append(described)
            logger.warning(
                "Abandoning %s: still running after the graceful timeout (a sync view's thread "
                "cannot be interrupted); the process does not wait for it.",
                described,
            )


def describe(protocol: Any) -> str:
    """The request of ``protocol``, as a log line names it: ``GET /path?query``."""
    method = getattr(protocol, "method", None) or b"WEBSOCKET"
    path = getattr(protocol, "uri", None) or getattr(protocol, "path", None) or b"?"
    text = [
        part.decode("latin-1") if isinstance(part, bytes) else str(part) for part in (method, path)
    ]
    return " ".join(text)


def close_after_response(request: Any) -> None:
    """Make a keep-alive connection close once ``request``'s response is sent."""
    channel = getattr(request, "channel", None)  # Twisted deletes it once the request is done
    if channel is None:
        return
    channel.persistent = False
    if not request.startedWriting:
        request.responseHeaders.setRawHeaders(b"connection", [b"close"])


def _busy(server: Any) -> dict[Any, asyncio.Future[Any] | None]:
    """The running application instances, and (with None) the HTTP requests that are arriving
    and have none yet."""
    busy: dict[Any, asyncio.Future[Any] | None] = {}
    for protocol, details in list(server.connections.items()):
        instance = details.get("application_instance")
        # A request that arrives has no instance yet; basic_error() disconnects it.
        arriving = instance is None and "disconnected" not in details
        if instance is not None and not instance.done():
            busy[protocol] = instance
        elif arriving and isinstance(protocol, WebRequest):
            busy[protocol] = None
    return busy


def _close_idle_connections(server: Any) -> None:
    for channel in list(server.http_channels):
        if not channel.requests and channel.transport is not None:
            channel.transport.loseConnection()
