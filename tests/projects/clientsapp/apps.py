"""Records, in the events file (``tests.projects.events``), what happens to the clients.

A startup receiver records the clients it finds (they are open before receivers run); each client
step (open, close) is recorded from the ``lifespan_signals.steps`` log records, with whether the
clients that views used are closed by then.
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import AppConfig

from lifespan_signals.clients import clients
from lifespan_signals.signals import asgi_startup
from tests.projects.events import record

# The clients views used, by alias: to check at shutdown that they are the ones closed.
seen: dict[str, Any] = {}


def is_closed(client: Any) -> bool:
    return bool(client.closed if hasattr(client, "closed") else client.is_closed)


class StepRecorder(logging.Handler):
    def emit(self, log: logging.LogRecord) -> None:
        step = log.lifespan_step  # type: ignore[attr-defined]
        if step["kind"] != "client":  # receivers and resources have step records too
            return
        name = step["name"]
        closed = is_closed(seen[name]) if name in seen else None
        record(f"{step['phase']} {name}", ok=step["ok"], closed=closed)


async def use_clients(**kwargs: Any) -> None:
    record("startup receiver", **{alias: id(clients[alias]) for alias in ("httpx", "aiohttp")})


class ClientsAppConfig(AppConfig):
    name = "tests.projects.clientsapp"
    label = "clientsapp"

    def ready(self) -> None:
        asgi_startup.connect(use_clients)
