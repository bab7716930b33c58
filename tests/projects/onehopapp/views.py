"""Views and middleware for the one-hop path: each reports the thread and loop it ran on."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from asgiref.sync import async_to_sync, markcoroutinefunction, sync_to_async
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.views.decorators.csrf import csrf_exempt

# What the views started or saw, for the in-process tests to look at.
tasks: list[asyncio.Task[Any]] = []
events: list[str] = []


def _name() -> str:
    return threading.current_thread().name


async def _loop_id() -> int:
    return id(asyncio.get_running_loop())


class SyncMiddleware:
    """Sync only: notes the request's thread (the one-hop path's request thread)."""

    sync_capable, async_capable = True, False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.thread_name = _name()  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Sync-Middleware"] = _name()
        return response


class AsyncOnlyMiddleware:
    """Async only: Django adapts it with async_to_sync in a sync chain; runs on the loop."""

    sync_capable, async_capable = False, True

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        response = await self.get_response(request)
        response["X-Async-Loop"] = str(await _loop_id())
        response["X-Async-Sync-To-Async"] = await sync_to_async(_name)()
        return response


def _on_one_hop_path() -> bool:
    return any("_one_hop" in frame.filename for frame in traceback.extract_stack())


def sync_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "one_hop": _on_one_hop_path(),
            "view": _name(),
            "middleware": getattr(request, "thread_name", None),
            "async_to_sync_loop": async_to_sync(_loop_id)(),
            "pid": os.getpid(),
        }
    )


async def async_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "view_thread": _name(),
            "loop": await _loop_id(),
            "sync_to_async": await sync_to_async(_name)(),
            "middleware": request.thread_name,  # type: ignore[attr-defined]
            "pid": os.getpid(),
        }
    )


def sleep_view(request: HttpRequest) -> JsonResponse:
    time.sleep(float(request.GET.get("sleep", "0")))
    events.append("sleep_view done")
    return JsonResponse({"thread": _name(), "pid": os.getpid()})


async def async_sleep_view(request: HttpRequest) -> HttpResponse:
    events.append("async_sleep_view started")
    try:
        await asyncio.sleep(float(request.GET.get("sleep", "0")))
    except asyncio.CancelledError:
        events.append("async_sleep_view cancelled")
        raise
    return HttpResponse("slept")


def streaming_sync(request: HttpRequest) -> StreamingHttpResponse:
    def parts() -> Iterator[bytes]:
        for index in range(3):
            yield f"{index}:{_name()}\n".encode()

    return StreamingHttpResponse(parts())


def streaming_async(request: HttpRequest) -> StreamingHttpResponse:
    async def parts() -> AsyncIterator[bytes]:
        for index in range(3):
            await asyncio.sleep(float(request.GET.get("sleep", "0")))
            yield f"{index}:{await _loop_id()}\n".encode()

    return StreamingHttpResponse(parts())


def big_view(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(b"x" * 150_000)
    response.set_cookie("flavour", "oat")
    return response


def file_view(request: HttpRequest) -> FileResponse:
    return FileResponse(open(__file__, "rb"))


@csrf_exempt
def upload_sync(request: HttpRequest) -> JsonResponse:
    upload = request.FILES["file"]
    size = sum(len(chunk) for chunk in upload.chunks())
    return JsonResponse(
        {
            "size": size,
            "on_disk": hasattr(upload, "temporary_file_path"),
            "body_spooled": getattr(request._stream, "_rolled", None),  # type: ignore[attr-defined]
            "field": request.POST.get("field"),
        }
    )


@csrf_exempt
def body_sync(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"body": request.body.decode(), "post": request.POST.dict()})


@csrf_exempt
async def body_async(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"body": request.body.decode(), "post": request.POST.dict()})


async def task_view(request: HttpRequest) -> HttpResponse:
    """Starts a task that calls sync_to_async after the response was sent."""
    go = asyncio.Event()

    async def later() -> str:
        await go.wait()
        return await sync_to_async(_name)()

    tasks.append(asyncio.create_task(later()))
    tasks[-1].go = go  # type: ignore[attr-defined]
    return HttpResponse(_name())


def pool_view(request: HttpRequest) -> JsonResponse:
    """The PostgreSQL backend this request used (a connection from Django's psycopg pool)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    return JsonResponse({"backend": backend, "pid": os.getpid()})


def pool_stats(request: HttpRequest) -> JsonResponse:
    """The pool's figures (psycopg_pool's get_stats()), without taking a connection."""
    from django.db import connection

    stats = connection.pool.get_stats()
    keys = ("pool_size", "pool_available", "requests_waiting")
    return JsonResponse({key: stats.get(key, 0) for key in keys})
