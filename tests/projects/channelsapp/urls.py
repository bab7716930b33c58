from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from tests.projects.channelsapp.consumers import StateConsumer


async def state_view(request: HttpRequest) -> JsonResponse:
    """Which aiohttp session this request sees, in which process."""
    session = request.state["aiohttp"]  # type: ignore[attr-defined]
    return JsonResponse({"pid": os.getpid(), "aiohttp": id(session), "closed": session.closed})


async def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("state/", state_view),
    path("health/", health),
]

websocket_urlpatterns = [
    path("ws/state/", StateConsumer.as_asgi()),
]
