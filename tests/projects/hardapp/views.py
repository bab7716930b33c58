from __future__ import annotations

import aiohttp
from django.http import HttpRequest, JsonResponse

from lifespan_signals import get_state
from tests.projects.events import record
from tests.projects.serverapp.apps import _created


async def rotate(request: HttpRequest) -> JsonResponse:
    """Replace the aiohttp session through get_state(), as a client rotation would."""
    state = get_state()
    old, new = state["aiohttp"], aiohttp.ClientSession()
    state["aiohttp"] = _created["aiohttp"] = new
    await old.close()
    record("rotated", aiohttp=id(new))
    return JsonResponse({"aiohttp": id(new)})


async def attribute(request: HttpRequest) -> JsonResponse:
    """Starlette's attribute style: request.state.httpx."""
    return JsonResponse({"closed": request.state.httpx.is_closed})  # type: ignore[attr-defined]
