"""A consumer that reports the lifespan state it sees and uses the shared aiohttp session."""

from __future__ import annotations

import os
import uuid
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from tests.projects.events import record


class StateConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        await self.accept()
        state = self.scope["state"]
        session = state["aiohttp"]
        keys = sorted(state)
        # Set after reading the keys: the next connection must not see it (each gets a copy).
        state[f"ws-{uuid.uuid4().hex}"] = 1
        await self.send_json(
            {
                "pid": os.getpid(),
                "aiohttp": id(session),
                "closed": session.closed,
                "state_keys": keys,
                "user": str(self.scope.get("user", "")),
            }
        )

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # {"fetch": url}: GET it through the shared session, on the server's event loop.
        async with self.scope["state"]["aiohttp"].get(content["fetch"]) as response:
            await self.send_json({"status": response.status, "body": await response.text()})

    async def disconnect(self, code: int) -> None:
        # Still before lifespan shutdown: the shared session is open.
        record("disconnect", code=code, closed=self.scope["state"]["aiohttp"].closed)
