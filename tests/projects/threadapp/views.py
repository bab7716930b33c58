"""Sync middleware and views that check one request's sync code runs in one thread, alone."""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse

_serial = itertools.count(1)
_lock = threading.Lock()
violations: list[str] = []
tags_seen: set[str] = set()


def _tag(thread: threading.Thread) -> str:
    # Thread idents are reused once a thread ends: mark the thread object itself.
    with _lock:
        tag: str = thread.__dict__.setdefault("test_tag", uuid.uuid4().hex)
        tags_seen.add(tag)
        return tag


def _problem(text: str) -> None:
    with _lock:
        violations.append(text)


class ThreadMiddleware:
    """Sync middleware: takes its thread for the request, checks nobody else holds it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        thread = threading.current_thread()
        request.serial = serial = next(_serial)  # type: ignore[attr-defined]
        request.thread = thread  # type: ignore[attr-defined]
        started_in = getattr(request, "scope", {}).get("started_in")
        if started_in is not None and started_in is not thread:
            _problem(f"request {serial}: request_started in {started_in}, middleware in {thread}")
        with _lock:
            owner = thread.__dict__.get("owner")
            thread.__dict__["owner"] = serial
        if owner is not None:
            _problem(f"request {serial}: {thread} was still held by request {owner}")
        try:
            response = self.get_response(request)
        finally:
            if threading.current_thread() is not thread:
                _problem(f"request {serial}: middleware left in another thread")
            thread.__dict__["owner"] = None
        response["X-Thread"] = _tag(thread)
        return response


def _same_thread(request: HttpRequest, where: str) -> None:
    thread = threading.current_thread()
    if thread is not request.thread or thread.__dict__.get("owner") != request.serial:  # type: ignore[attr-defined]
        _problem(f"request {request.serial}: {where} ran in {thread}")  # type: ignore[attr-defined]


async def _hop(request: HttpRequest) -> None:
    await sync_to_async(_same_thread)(request, "sync_to_async in async_to_sync")


def sync_view(request: HttpRequest) -> JsonResponse:
    _same_thread(request, "the view")
    time.sleep(float(request.GET.get("sleep", "0")))  # holds the thread: requests overlap
    async_to_sync(_hop)(request)  # a thread-sensitive call from inside the request's thread
    _same_thread(request, "the view, after the sleep")
    thread = _tag(threading.current_thread())
    return JsonResponse({"thread": thread, "pid": os.getpid(), "violations": list(violations)})


def db_view(request: HttpRequest) -> JsonResponse:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    return JsonResponse({"backend": backend})


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


def report(request: HttpRequest) -> JsonResponse:
    alive = [t.name for t in threading.enumerate() if t.name.startswith("lifespan-signals-request")]
    data: dict[str, Any] = {
        "violations": list(violations),
        "threads_seen": len(tags_seen),
        "request_threads_alive": alive,
        "pid": os.getpid(),
    }
    return JsonResponse(data)
