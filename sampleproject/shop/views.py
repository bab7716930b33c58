"""The home page fans out to two "microservices" (served by this same process) through the
declared clients (``LIFESPAN_SIGNALS_CLIENTS``), and shows that they are shared across requests."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiohttp
import httpx
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from lifespan_signals.clients import clients
from sampleproject.shop.apps import ShopStats

PROMOTIONS = [
    {"code": "AUTUMN15", "title": "15% off all knitwear", "ends": "2026-11-30"},
    {"code": "FREESHIP", "title": "Free shipping over 50 EUR", "ends": "2026-12-24"},
]

RECOMMENDATIONS = [
    {"sku": "MUG-042", "name": "Enamel camping mug", "price": "12.00"},
    {"sku": "SCK-007", "name": "Merino hiking socks", "price": "18.50"},
    {"sku": "LMP-113", "name": "Rechargeable head torch", "price": "34.90"},
]


async def _get_with_aiohttp(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url, raise_for_status=True) as response:
        return await response.json()


async def _get_with_httpx(client: httpx.AsyncClient, url: str) -> Any:
    response = await client.get(url)
    response.raise_for_status()
    return response.json()


async def home(request: HttpRequest) -> HttpResponse:
    session = clients.get("aiohttp", aiohttp.ClientSession)
    client = clients.get("httpx", httpx.AsyncClient)
    stats: ShopStats = request.state["stats"]
    # The app can't know its own port at startup; the request tells us where we are.
    promotions_data, recommendations_data = await asyncio.gather(
        _get_with_aiohttp(session, request.build_absolute_uri(reverse("shop:promotions"))),
        _get_with_httpx(client, request.build_absolute_uri(reverse("shop:recommendations"))),
    )
    context = {
        "promotions": promotions_data["promotions"],
        "recommendations": recommendations_data["recommendations"],
        "pid": os.getpid(),
        "started_at": stats.started_at,
        "clients": [
            {
                "name": "aiohttp",
                "library": "aiohttp.ClientSession",
                "id": id(session),
                "stats": stats.aiohttp,
            },
            {
                "name": "httpx",
                "library": "httpx.AsyncClient",
                "id": id(client),
                "stats": stats.httpx,
            },
        ],
    }
    return render(request, "shop/home.html", context)


async def promotions(request: HttpRequest) -> JsonResponse:
    await asyncio.sleep(settings.SAMPLE_SERVICE_LATENCY)
    return JsonResponse({"promotions": PROMOTIONS})


async def recommendations(request: HttpRequest) -> JsonResponse:
    await asyncio.sleep(settings.SAMPLE_SERVICE_LATENCY)
    return JsonResponse({"recommendations": RECOMMENDATIONS})


async def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")
