from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path


async def state_view(request: HttpRequest) -> JsonResponse:
    state = request.state  # type: ignore[attr-defined]
    state[f"request-{request.GET.get('n', '')}"] = True
    return JsonResponse({"keys": sorted(state), "client": id(state.get("client"))})


def sync_state_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"keys": sorted(request.state)})  # type: ignore[attr-defined]


async def missing_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"value": request.state["missing"]})  # type: ignore[attr-defined]


urlpatterns = [
    path("state/", state_view),
    path("sync-state/", sync_state_view),
    path("missing/", missing_view),
]
