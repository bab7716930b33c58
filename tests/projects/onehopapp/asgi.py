"""threadapp's recording handler; with a database, it also records the PostgreSQL client
backends still connected once lifespan shutdown has stopped the request threads."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import django

from tests.projects.events import record
from tests.projects.threadapp.asgi import RecordingHandler


def _backends() -> int:
    import psycopg

    query = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    with psycopg.connect(host=os.environ["LIFESPAN_TEST_DATABASE"], user="postgres") as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


class DatabaseRecordingHandler(RecordingHandler):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and os.environ.get("LIFESPAN_TEST_DATABASE"):
            send = _recording_backends(send)
        await super().__call__(scope, receive, send)


def _recording_backends(send: Any) -> Any:
    # Called once the request threads have ended, so have closed their connections. A backend
    # leaves pg_stat_activity a moment after its client closed the connection: give a loaded
    # machine a few seconds to show it, while this process (and a connection it kept) lives on.
    async def recording_send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5.0
            while (left := await asyncio.to_thread(_backends)) and loop.time() < deadline:  # noqa: ASYNC110 - another process, no event
                await asyncio.sleep(0.02)
            record("backends", left=left)
        await send(message)

    return recording_send


django.setup(set_prefix=False)
application = DatabaseRecordingHandler()
