"""A WebSocket consumer that uses the declared clients, as the views do.

It reaches them as ``clients[alias]``, and their statistics in ``self.scope["state"]`` (the
lifespan state, a shallow copy per connection); it pushes the statistics every
``SAMPLE_STATS_INTERVAL`` seconds, and on ``{"fetch": "promotions"}`` calls that service through
the shared aiohttp session.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.urls import reverse

from lifespan_signals.clients import clients
from sampleproject.shop.apps import ClientStats, ShopStats


class LiveStatsConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    _pusher: asyncio.Task[None] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Also when the server cancels this consumer (at shutdown): leave no task behind.
            if self._pusher is not None:
                self._pusher.cancel()
                await asyncio.gather(self._pusher, return_exceptions=True)

    async def connect(self) -> None:
        await self.accept()
        self._pusher = asyncio.create_task(self._push_stats())

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if content == {"fetch": "promotions"}:
            session = clients["aiohttp"]
            async with session.get(self._url("shop:promotions"), raise_for_status=True) as response:
                data = await response.json()
            await self.send_json({"type": "promotions", "client": "aiohttp", **data})
            await self.send_json(self._stats())  # the counters just moved

    async def _push_stats(self) -> None:
        while True:
            await self.send_json(self._stats())
            await asyncio.sleep(settings.SAMPLE_STATS_INTERVAL)

    def _stats(self) -> dict[str, Any]:
        state = self.scope["state"]
        stats: ShopStats = state["stats"]
        return {
            "type": "stats",
            "pid": os.getpid(),
            "uptime": round((datetime.now(timezone.utc) - stats.started_at).total_seconds()),
            "clients": {
                "aiohttp": _client(clients["aiohttp"], stats.aiohttp),
                "httpx": _client(clients["httpx"], stats.httpx),
            },
        }

    def _url(self, name: str) -> str:
        # As request.build_absolute_uri() would: the service is served by this same process.
        headers = dict(self.scope["headers"])
        scheme = "https" if self.scope.get("scheme") == "wss" else "http"
        return f"{scheme}://{headers[b'host'].decode('latin1')}{reverse(name)}"


def _client(client: object, stats: ClientStats) -> dict[str, int]:
    return {
        "id": id(client),
        "requests": stats.requests,
        "new-connections": stats.new_connections,
        "reused-connections": stats.reused_connections,
    }
