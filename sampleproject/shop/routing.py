"""WebSocket routes, for ``URLRouter`` in ``sampleproject/asgi.py``."""

from __future__ import annotations

from django.urls import path

from sampleproject.shop.consumers import LiveStatsConsumer

websocket_urlpatterns = [
    path("ws/stats/", LiveStatsConsumer.as_asgi()),
]
