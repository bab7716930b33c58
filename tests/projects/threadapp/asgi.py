"""The handler, recording which request threads are still alive when shutdown completes."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import django

from lifespan_signals.asgi import LifespanASGIHandler
from tests.projects.events import record


def _alive() -> list[str]:
    prefix = "lifespan-signals-request"
    return [thread.name for thread in threading.enumerate() if thread.name.startswith(prefix)]


class RecordingHandler(LifespanASGIHandler):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            send = _recording(send)
        await super().__call__(scope, receive, send)


def _recording(send: Any) -> Any:
    async def recording_send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            # Stopped threads end at once; give a loaded machine a few seconds to show it.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5.0
            while _alive() and loop.time() < deadline:  # noqa: ASYNC110 - threads, no event
                await asyncio.sleep(0.02)
            record("exit", alive=_alive())
        await send(message)

    return recording_send


django.setup(set_prefix=False)
application = RecordingHandler()
