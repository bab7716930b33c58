"""The views under test: a trivial one, and the same upstream call through different clients."""

from __future__ import annotations

import aiohttp
import httpx
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from lifespan_signals.clients import clients


async def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"Hello, world!", content_type="text/plain")


async def _via_aiohttp(session: aiohttp.ClientSession) -> HttpResponse:
    async with session.get(settings.BENCH_UPSTREAM_URL) as response:
        body = await response.read()
    return HttpResponse(body, status=response.status, content_type="application/json")


async def _via_httpx(client: httpx.AsyncClient) -> HttpResponse:
    response = await client.get(settings.BENCH_UPSTREAM_URL)
    return HttpResponse(
        response.content, status=response.status_code, content_type="application/json"
    )


async def aiohttp_shared(request: HttpRequest) -> HttpResponse:
    """Through the session the asgi_startup receiver opened (bench/apps.py)."""
    return await _via_aiohttp(request.state["aiohttp"])


async def aiohttp_declared(request: HttpRequest) -> HttpResponse:
    """Through the declared client (LIFESPAN_SIGNALS_CLIENTS in bench/settings.py)."""
    return await _via_aiohttp(clients["aiohttp"])


async def aiohttp_per_request(request: HttpRequest) -> HttpResponse:
    async with aiohttp.ClientSession() as session:
        return await _via_aiohttp(session)


_global_session: aiohttp.ClientSession | None = None


async def aiohttp_global(request: HttpRequest) -> HttpResponse:
    """The hack lifespan_signals replaces: a module global, created lazily, never closed."""
    global _global_session
    if _global_session is None:
        _global_session = aiohttp.ClientSession()
    return await _via_aiohttp(_global_session)


async def httpx_shared(request: HttpRequest) -> HttpResponse:
    return await _via_httpx(request.state["httpx"])


async def httpx_per_request(request: HttpRequest) -> HttpResponse:
    async with httpx.AsyncClient() as client:
        return await _via_httpx(client)
