"""Channels' channel layers (``CHANNEL_LAYERS``), made ready at startup and closed at shutdown, as
steps; and the bound on a WebSocket consumer that does not end after its socket closed.

A layer's connection pools belong to the event loop that opened them. Startup opens them on the
server's loop (and checks that Redis answers), so that consumers, views and ``async_to_sync`` calls
made from request threads share them; shutdown closes them there, after the consumers have been
closed and drained, before the declared clients close. Nobody else does: no server has a hook for
it, and without it the interpreter's exit prints "Event loop is closed" and "Task exception was
never retrieved" (channels_redis #332, channels #1966).

This is the one engine module that imports ``channels``, and only when ``CHANNEL_LAYERS`` is set.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lifespan_signals.conf import settings
from lifespan_signals.lifespan.budget import Budget
from lifespan_signals.lifespan.failures import Failure
from lifespan_signals.lifespan.steps import CANCEL_GRACE, Runner

__all__ = [
    "BLOCKING_RECEIVE",
    "SAFE_SOCKET_TIMEOUT",
    "LayerUnreachable",
    "OpenLayers",
    "bounded_websocket",
    "explicit_socket_timeouts",
]

logger = logging.getLogger(__name__)

# redis-py 8 reads with a 5 s socket_timeout by default, exactly channels_redis 4.3's 5 s blocking
# receive (RedisChannelLayer.brpop_timeout): an idle consumer's read then times out ("Timeout
# reading from ..."). A host that sets no socket_timeout gets this one, well above the wait.
SAFE_SOCKET_TIMEOUT = 15.0
BLOCKING_RECEIVE = 5.0  # channels_redis.core.RedisChannelLayer.brpop_timeout (4.3)


class LayerUnreachable(ConnectionError):
    """A channel layer's server did not answer at lifespan startup."""


def configured() -> dict[str, dict[str, Any]]:
    """``CHANNEL_LAYERS``, or nothing when it is unset or Channels is not installed."""
    from importlib.util import find_spec

    from django.conf import settings as django_settings

    layers = getattr(django_settings, "CHANNEL_LAYERS", None) or {}
    if not layers or find_spec("channels") is None:
        return {}
    return dict(layers)


def label(alias: str, entry: Any) -> str:
    backend = entry.get("BACKEND", "?") if isinstance(entry, dict) else "?"
    return f"CHANNEL_LAYERS[{alias!r}] ({backend})"


def explicit_socket_timeouts(hosts: Any) -> list[object]:
    """The ``socket_timeout`` each of a Redis layer's ``hosts`` sets (a dict's key, or a URL's
    ``?socket_timeout=``); ``math.nan`` for a host that sets none."""
    found: list[object] = []
    for host in hosts or ():
        if isinstance(host, dict) and "socket_timeout" in host:
            found.append(host["socket_timeout"])
            continue
        address = host.get("address") if isinstance(host, dict) else host
        query = parse_qs(urlsplit(address).query) if isinstance(address, str) else {}
        found.append(query["socket_timeout"][0] if "socket_timeout" in query else math.nan)
    return found


def _is_redis_layer(layer: Any) -> bool:
    return hasattr(layer, "close_pools") and hasattr(layer, "ring_size")


def _is_pubsub_layer(layer: Any) -> bool:
    return type(layer).__name__ == "RedisPubSubChannelLayer"


def _is_in_memory_layer(layer: Any) -> bool:
    from channels.layers import InMemoryChannelLayer

    return isinstance(layer, InMemoryChannelLayer)


def _with_safe_timeouts(hosts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """New host dicts (the setting's own stay untouched) with :data:`SAFE_SOCKET_TIMEOUT` where
    a host sets no ``socket_timeout`` (a URL's own query still wins: redis-py reads it last)."""
    return [{"socket_timeout": SAFE_SOCKET_TIMEOUT, **host} for host in hosts]


async def _ready(alias: str, layer: Any) -> None:
    """Open ``layer``'s connections on this loop and check that each server answers."""
    if _is_redis_layer(layer):
        if not layer._layers:  # no pool yet: the safe timeout reaches every connection
            layer.hosts = _with_safe_timeouts(layer.hosts)
        connections = [(layer.hosts[i], layer.connection(i)) for i in range(layer.ring_size)]
    elif _is_pubsub_layer(layer):
        # No public way to reach each shard; a PING on each shard's own client opens it.
        shards = layer._get_layer()._shards
        for shard in shards:
            shard._ensure_redis()
        connections = [(shard.host, shard._redis) for shard in shards]
    else:
        return  # the in-memory layer, or one we do not know: nothing to open
    for host, connection in connections:
        try:
            await connection.ping()
        except Exception as exc:
            why = f"{type(exc).__name__}: {str(exc).rstrip('.')}"
            raise LayerUnreachable(
                f"CHANNEL_LAYERS[{alias!r}] could not reach Redis at {_address(host)!r}: {why}. "
                "Start Redis there, or fix CONFIG['hosts'] (the lifespan does not start without "
                "its channel layers)."
            ) from exc


def _address(host: Any) -> str:
    if isinstance(host, dict):
        if "address" in host:
            return str(host["address"])
        if "path" in host:
            return f"unix://{host['path']}"
        return f"{host.get('host', 'localhost')}:{host.get('port', 6379)}"
    return str(host)


def _stuck_receives(layer: Any) -> list[asyncio.Task[Any]]:
    """Tasks of this loop still inside ``layer.receive()``: consumers that the cancel race of
    channels_redis left looping on Redis after they were cancelled."""
    receive = getattr(type(layer), "receive", None)
    code = getattr(receive, "__code__", None)
    stuck = []
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        if frame is not None and frame.f_code is code and frame.f_locals.get("self") is layer:
            stuck.append(task)
    return stuck


# The WebSocket applications running now (bounded_websocket adds them), of every loop.
_websockets: set[asyncio.Task[Any]] = set()


async def _drain(budget: Budget) -> None:
    """Wait for this loop's WebSocket applications to end, for half the budget left at most;
    cancel those still running then. Most servers have drained them before lifespan shutdown;
    granian sends it while consumers still run their ``disconnect()``."""
    loop = asyncio.get_running_loop()
    running = [task for task in _websockets if task.get_loop() is loop and not task.done()]
    if not running:
        return
    remaining = budget.remaining()
    await asyncio.wait(running, timeout=None if remaining is None else remaining / 2)
    if late := [task for task in running if not task.done()]:
        for task in late:
            task.cancel()
        await asyncio.wait(late, timeout=CANCEL_GRACE)


async def _close(alias: str, layer: Any, budget: Budget) -> None:
    """Close ``layer`` on this loop, once its consumers have ended; end the receives its closing
    frees (and read how they ended)."""
    await _drain(budget)
    stuck = _stuck_receives(layer)
    if _is_redis_layer(layer):
        await layer.close_pools()  # not flush(): that deletes every process's messages
    elif _is_pubsub_layer(layer) or _is_in_memory_layer(layer):
        await layer.flush()  # pub/sub: cancels its reader, closes its client; in memory: empties
    if stuck:
        logger.warning(
            "CHANNEL_LAYERS[%r]: %d consumer(s) were still blocked in receive() after they were "
            "cancelled (a channels_redis race); closing the layer ended them.",
            alias,
            len(stuck),
        )
        for task in stuck:
            task.cancel()
        await asyncio.wait(stuck, timeout=CANCEL_GRACE)
        for task in stuck:  # read their end, so that nothing is "never retrieved"
            if task.done() and not task.cancelled():
                task.exception()


class OpenLayers:
    """One lifespan's channel layers: those made ready, by alias, in ``CHANNEL_LAYERS`` order."""

    def __init__(self) -> None:
        self.layers: dict[str, Any] = {}
        self._labels: dict[str, str] = {}

    async def open(self, runner: Runner) -> list[Failure]:
        """Make every configured layer ready, concurrently; on a failure, close those that are."""
        declared = configured()
        if not declared:
            return []

        def opener(alias: str) -> Callable[[], Awaitable[None]]:
            async def open_one() -> None:
                from channels.layers import channel_layers

                # In a thread: the first use imports the backend (redis-py takes ~0.3 s).
                layer = await asyncio.to_thread(channel_layers.__getitem__, alias)
                await _ready(alias, layer)
                self.layers[alias] = layer

            return open_one

        self._labels = {alias: label(alias, entry) for alias, entry in declared.items()}
        jobs = [
            (runner.step("layer", alias, label=self._labels[alias], waiting="still connecting"),
             opener(alias))
            for alias in declared
        ]  # fmt: skip
        failures = await runner.together(jobs)
        if failures:  # close what is ready now, in a budget of its own: startup's may be spent
            closing = Runner("shutdown", Budget.shutdown(), runner.records)
            return failures + await self.close(closing)
        return []

    async def close(self, runner: Runner) -> list[Failure]:
        """Close the ready layers concurrently, started in reverse declaration order."""
        layers, self.layers = self.layers, {}
        jobs = [
            (runner.step("layer", alias, label=self._labels[alias], waiting="still closing"),
             functools.partial(_close, alias, layers[alias], runner.budget))
            for alias in reversed(list(self._labels))  # declared order, not the order they opened
            if alias in layers
        ]  # fmt: skip
        return await runner.together(jobs)


Call = Callable[[Any, Any, Any], Awaitable[Any]]


async def bounded_websocket(app: Call, scope: Any, receive: Any, send: Any) -> Any:
    """Run a WebSocket application, giving it at most ``LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT`` to
    return once it has received ``websocket.disconnect``; then cancel it.

    A consumer that channels_redis' cancel race leaves blocked on Redis would otherwise never
    return, and the server's drain (and so lifespan shutdown, and the closing of the pools) would
    wait for it for ever.
    """
    try:
        grace = settings.SHUTDOWN_TIMEOUT
    except Exception:  # a bad setting: startup refused it already
        grace = None
    if grace is None:
        return await app(scope, receive, send)
    disconnected = asyncio.Event()

    async def watched_receive() -> Any:
        message = await receive()
        if isinstance(message, dict) and message.get("type") == "websocket.disconnect":
            disconnected.set()
        return message

    task = asyncio.ensure_future(app(scope, watched_receive, send))
    _websockets.add(task)
    task.add_done_callback(_websockets.discard)
    waiter = asyncio.ensure_future(disconnected.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait({task}, timeout=grace)
        if not task.done():
            logger.warning(
                "A WebSocket application (%s) did not return within %g s of its socket closing "
                "(LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT): cancelled.",
                scope.get("path", "?"),
                grace,
            )
            task.cancel()
            await asyncio.wait({task}, timeout=CANCEL_GRACE)
            if not task.done() or task.cancelled():
                return None
        return task.result()
    except BaseException:  # we were cancelled: so is the application
        task.cancel()
        raise
    finally:
        waiter.cancel()
