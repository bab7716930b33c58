"""Receivers that open real HTTP clients at startup and close them at shutdown.

Each process records what happened in the events file (``tests.projects.events``). A startup
receiver that fails is added when the environment asks (``LIFESPAN_TEST_FAIL_STARTUP``, see
``tests/settings.py``).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx
from django.apps import AppConfig

from lifespan_signals.signals import asgi_shutdown, asgi_startup
from tests.projects.events import record
from tests.settings import env

# What startup created in this process, to check that shutdown got the very same objects.
_created: dict[str, Any] = {}


async def open_clients(*, state: dict[str, Any], **kwargs: Any) -> None:
    state["aiohttp"] = _created["aiohttp"] = aiohttp.ClientSession()
    state["httpx"] = _created["httpx"] = httpx.AsyncClient()
    record("startup", aiohttp=id(state["aiohttp"]), httpx=id(state["httpx"]))


async def fail_startup(**kwargs: Any) -> None:
    record("fail_startup")
    raise RuntimeError("boom at startup")


async def close_clients(*, state: dict[str, Any], **kwargs: Any) -> None:
    clients = {}
    if "aiohttp" in state:  # startup may have failed before it got there
        session = state["aiohttp"]
        await session.close()
        clients["aiohttp"] = {"same": session is _created.get("aiohttp"), "closed": session.closed}
    if "httpx" in state:
        client = state["httpx"]
        await client.aclose()
        clients["httpx"] = {"same": client is _created.get("httpx"), "closed": client.is_closed}
    record("shutdown", clients=clients)


class ServerAppConfig(AppConfig):
    name = "tests.projects.serverapp"
    label = "serverapp"

    def ready(self) -> None:
        asgi_startup.connect(open_clients)
        if env("LIFESPAN_TEST_FAIL_STARTUP") == "1":
            asgi_startup.connect(fail_startup)
        asgi_shutdown.connect(close_clients)
