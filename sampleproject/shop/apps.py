"""The shop app counts the traffic of its declared clients (``LIFESPAN_SIGNALS_CLIENTS``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx
from django.apps import AppConfig
from django.conf import settings

from lifespan_signals.clients import clients
from lifespan_signals.resources import register_resource
from lifespan_signals.signals import asgi_startup

logger = logging.getLogger(__name__)

# Every live-feed consumer, of every process, is in this group of the channel layer.
STATS_GROUP = "shop-stats"


@dataclass
class ClientStats:
    """Traffic through one shared client since startup."""

    requests: int = 0
    new_connections: int = 0

    @property
    def reused_connections(self) -> int:
        return max(self.requests - self.new_connections, 0)


@dataclass
class ShopStats:
    """Kept in the lifespan state as ``state["stats"]``; shared by every request of the process."""

    pid: int = field(default_factory=os.getpid)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    aiohttp: ClientStats = field(default_factory=ClientStats)
    httpx: ClientStats = field(default_factory=ClientStats)


def _aiohttp_trace(stats: ClientStats) -> aiohttp.TraceConfig:
    async def on_request_start(
        session: aiohttp.ClientSession, ctx: SimpleNamespace, params: Any
    ) -> None:
        stats.requests += 1

    async def on_connection_create_end(
        session: aiohttp.ClientSession, ctx: SimpleNamespace, params: Any
    ) -> None:
        stats.new_connections += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    trace.on_connection_create_end.append(on_connection_create_end)
    return trace


def _httpx_request_hook(stats: ClientStats) -> Any:
    # httpcore reports "connection.connect_tcp.*" through the "trace" extension only when it
    # opens a new connection; a request served on a pooled connection reports none.
    async def trace(event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            stats.new_connections += 1

    async def on_request(request: httpx.Request) -> None:
        stats.requests += 1
        request.extensions["trace"] = trace

    return on_request


async def count_traffic(*, state: MutableMapping[str, Any], **kwargs: Any) -> None:
    """asgi_startup receiver: the one thing the setting cannot say, traffic counters.

    The declared clients are open by now (LIFESPAN_SIGNALS_CLIENTS in settings.py); the package
    closes them at shutdown. This adds per-process statistics to them and to the state.
    """
    stats = ShopStats()
    state["stats"] = stats
    session = clients.get("aiohttp", aiohttp.ClientSession)
    trace = _aiohttp_trace(stats.aiohttp)
    trace.freeze()  # as the session does with the trace configs it is given
    session.trace_configs.append(trace)
    client = clients.get("httpx", httpx.AsyncClient)
    client.event_hooks = {"request": [_httpx_request_hook(stats.httpx)]}
    logger.info(
        "Counting traffic of aiohttp.ClientSession id=%d and httpx.AsyncClient id=%d",
        id(session),
        id(client),
    )


async def broadcast_stats(state: MutableMapping[str, Any]) -> AsyncIterator[None]:
    """Lifespan resource: this process's statistics to every live feed, through the channel layer
    (the lifespan opened it, and closes it after this resource), every SAMPLE_STATS_INTERVAL s."""
    from channels.layers import get_channel_layer

    from sampleproject.shop.consumers import stats_message

    async def broadcast() -> None:
        layer = get_channel_layer()
        while True:
            await asyncio.sleep(settings.SAMPLE_STATS_INTERVAL)
            if "stats" in state:  # count_traffic, an asgi_startup receiver, runs after resources
                message = {"type": "stats.push", "stats": stats_message(state["stats"])}
                await layer.group_send(STATS_GROUP, message)

    task = asyncio.create_task(broadcast())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class ShopConfig(AppConfig):
    name = "sampleproject.shop"
    label = "shop"
    verbose_name = "Shop"

    def ready(self) -> None:
        asgi_startup.connect(count_traffic, dispatch_uid="sampleproject.shop.count_traffic")
        register_resource(broadcast_stats)
