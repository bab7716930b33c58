"""One aiohttp session and one httpx client per server process, opened at lifespan startup."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import aiohttp
import httpx
from django.apps import AppConfig

from lifespan_signals.signals import asgi_shutdown, asgi_startup


async def open_clients(*, state: MutableMapping[str, Any], **kwargs: Any) -> None:
    state["aiohttp"] = aiohttp.ClientSession()
    state["httpx"] = httpx.AsyncClient()


async def close_clients(*, state: MutableMapping[str, Any], **kwargs: Any) -> None:
    if "aiohttp" in state:
        await state["aiohttp"].close()
    if "httpx" in state:
        await state["httpx"].aclose()


class BenchConfig(AppConfig):
    name = "bench"

    def ready(self) -> None:
        asgi_startup.connect(open_clients, dispatch_uid="bench.open_clients")
        asgi_shutdown.connect(close_clients, dispatch_uid="bench.close_clients")
