"""Checked by mypy (not run by pytest): ``clients.get()`` gives the type asked for."""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx
from typing_extensions import assert_type

from lifespan_signals.clients import clients


async def typed() -> None:
    assert_type(clients.get("default", httpx.AsyncClient), httpx.AsyncClient)
    assert_type(clients.get("github", aiohttp.ClientSession), aiohttp.ClientSession)
    assert_type(clients["default"], Any)
    assert_type("default" in clients, bool)
