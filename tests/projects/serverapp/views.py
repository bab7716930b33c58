from __future__ import annotations

import asyncio
import os
import time
import uuid

from django.http import HttpRequest, HttpResponse, JsonResponse

from tests.projects.events import record


async def index(request: HttpRequest) -> JsonResponse:
    """Which clients this request sees, and which state keys, in which process."""
    state = request.state  # type: ignore[attr-defined]
    session, client = state["aiohttp"], state["httpx"]
    keys = sorted(state)
    # Set after reading the keys: the next request must not see it (each gets a copy of state).
    state[f"req-{uuid.uuid4().hex}"] = 1
    return JsonResponse(
        {
            "pid": os.getpid(),
            "aiohttp": id(session),
            "httpx": id(client),
            "aiohttp_closed": session.closed,
            "httpx_closed": client.is_closed,
            "state_keys": keys,
        }
    )


async def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


async def slow(request: HttpRequest) -> JsonResponse:
    """Takes ``?seconds=`` to answer, recording when it starts and ends (in-flight tests)."""
    record("slow-start")
    try:
        await asyncio.sleep(float(request.GET.get("seconds", "1")))
    except asyncio.CancelledError:
        record("slow-cancelled")
        raise
    record("slow-end")
    return JsonResponse({"slept": True, "aiohttp_closed": request.state["aiohttp"].closed})


def slow_sync(request: HttpRequest) -> HttpResponse:
    """A sync view that takes ``?seconds=`` (in a thread, which nothing can interrupt)."""
    record("sync-slow-start")
    time.sleep(float(request.GET.get("seconds", "1")))
    record("sync-slow-end")
    return HttpResponse("slept", content_type="text/plain")
