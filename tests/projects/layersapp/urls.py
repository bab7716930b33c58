from __future__ import annotations

import os

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.http import HttpRequest, JsonResponse
from django.urls import path

from tests.projects.layersapp.consumers import GROUP, GroupConsumer


def _message(text: str) -> dict[str, str]:
    return {"type": "broadcast", "text": text}


async def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"pid": os.getpid()})


async def send_async(request: HttpRequest) -> JsonResponse:
    """``?text=``: one group_send from an async view."""
    await get_channel_layer().group_send(GROUP, _message(request.GET.get("text", "async")))
    return JsonResponse({"pid": os.getpid()})


def send_sync(request: HttpRequest) -> JsonResponse:
    """``?text=&n=``: ``n`` group_sends from a sync view, each through ``async_to_sync``."""
    layer, text = get_channel_layer(), request.GET.get("text", "sync")
    count = int(request.GET.get("n", 1))
    for index in range(count):
        async_to_sync(layer.group_send)(GROUP, _message(text if count == 1 else f"{text}-{index}"))
    return JsonResponse({"pid": os.getpid(), "sent": count})


urlpatterns = [
    path("health/", health),
    path("send/async/", send_async),
    path("send/sync/", send_sync),
]

websocket_urlpatterns = [
    path("ws/group/", GroupConsumer.as_asgi()),
]
