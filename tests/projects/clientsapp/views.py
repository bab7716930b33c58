from __future__ import annotations

import os

from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse, JsonResponse

from lifespan_signals.clients import clients
from tests.projects.clientsapp.apps import seen


async def index(request: HttpRequest) -> JsonResponse:
    """Call the upstream through both declared clients; say which clients served, in which pid."""
    seen["httpx"], seen["aiohttp"] = clients["httpx"], clients["aiohttp"]
    response = await clients["httpx"].get("/")
    async with clients["aiohttp"].get("/") as upstream:
        body = await upstream.json()
    return JsonResponse(
        {
            "pid": os.getpid(),
            "httpx": id(clients["httpx"]),
            "aiohttp": id(clients["aiohttp"]),
            "upstream": [response.json()["name"], body["name"]],
        }
    )


def sync_index(request: HttpRequest) -> JsonResponse:
    """A sync view: the client is used on the server's loop through async_to_sync."""
    response = async_to_sync(clients["httpx"].get)("/")
    return JsonResponse(
        {"pid": os.getpid(), "httpx": id(clients["httpx"]), "status": response.status_code}
    )


async def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")
