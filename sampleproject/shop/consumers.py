"""A WebSocket consumer that uses the declared clients, as the views do.

It reaches them as ``clients[alias]``, and their statistics in ``self.scope["state"]`` (the
lifespan state, a shallow copy per connection). It sends the statistics when it connects; then
every process broadcasts its own every ``SAMPLE_STATS_INTERVAL`` seconds to the group
``shop-stats`` through the channel layer (``apps.broadcast_stats``), which every consumer of every
process is in. On ``{"fetch": "promotions"}`` it calls that service through the shared aiohttp
session.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.urls import reverse

from lifespan_signals.clients import clients
from sampleproject.shop.apps import STATS_GROUP, ClientStats, ShopStats


class LiveStatsConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    groups = [STATS_GROUP]  # Channels adds it on connect and discards it on disconnect

    async def connect(self) -> None:
        await self.accept()
        await self.send_json(self._stats())

    async def stats_push(self, event: dict[str, Any]) -> None:
        """A process's statistics, broadcast to the group (``{"type": "stats.push"}``)."""
        await self.send_json(event["stats"])

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if content == {"fetch": "promotions"}:
            session = clients["aiohttp"]
            async with session.get(self._url("shop:promotions"), raise_for_status=True) as response:
                data = await response.json()
            await self.send_json({"type": "promotions", "client": "aiohttp", **data})
            await self.send_json(self._stats())  # the counters just moved

    def _stats(self) -> dict[str, Any]:
        return stats_message(self.scope["state"]["stats"])

    def _url(self, name: str) -> str:
        # As request.build_absolute_uri() would: the service is served by this same process.
        headers = dict(self.scope["headers"])
        scheme = "https" if self.scope.get("scheme") == "wss" else "http"
        return f"{scheme}://{headers[b'host'].decode('latin1')}{reverse(name)}"


def stats_message(stats: ShopStats) -> dict[str, Any]:
    """What the live feed shows of one process's statistics."""
    return {
        "type": "stats",
        "pid": os.getpid(),
        "uptime": round((datetime.now(timezone.utc) - stats.started_at).total_seconds()),
        "clients": {
            "aiohttp": _client(clients["aiohttp"], stats.aiohttp),
            "httpx": _client(clients["httpx"], stats.httpx),
        },
    }


def _client(client: object, stats: ClientStats) -> dict[str, int]:
    return {
        "id": id(client),
        "requests": stats.requests,
        "new-connections": stats.new_connections,
        "reused-connections": stats.reused_connections,
    }
