"""A consumer in the group ``broadcast`` that forwards each group message to its socket."""

from __future__ import annotations

import os
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from tests.projects.events import record

GROUP = "broadcast"


class GroupConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    groups = [GROUP]  # Channels adds the consumer to these on connect, discards it on disconnect

    async def connect(self) -> None:
        await self.accept()
        await self.send_json({"pid": os.getpid(), "channel": self.channel_name})

    async def broadcast(self, event: dict[str, Any]) -> None:
        await self.send_json({"pid": os.getpid(), "text": event["text"]})

    async def disconnect(self, code: int) -> None:
        record("disconnect", code=code, channel=self.channel_name)
