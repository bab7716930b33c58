from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from tests.projects.serverapp.urls import urlpatterns as serverapp_urlpatterns


async def remote(request: HttpRequest) -> JsonResponse:
    """The client address Django sees (``--proxy-headers`` tests)."""
    return JsonResponse({"REMOTE_ADDR": request.META.get("REMOTE_ADDR")})


urlpatterns = [*serverapp_urlpatterns, path("remote/", remote)]
