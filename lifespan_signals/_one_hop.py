"""The one-hop request path: a request's sync work in one thread hop, as a WSGI server does it.

Django's ``ASGIHandler`` runs the middleware chain in async mode, and sends every sync part of it
(``request_started``, each ``MiddlewareMixin`` hook, a sync view, ``response.close()``) to a thread
in a hop of its own: 16 hops for ``startproject``'s middleware. Here the event loop reads the
body, then hands the request to its kept request thread once; that thread sends
``request_started``, runs Django's *sync* middleware chain (``load_middleware(is_async=False)``,
WSGI's), the view and, for a response that is not streamed, ``response.close()``. The loop sends
the response. A streamed response is read chunk by chunk in the request thread (a sync
iterator) or on the loop (an async one), and closed in the request thread after it was sent.

Async views and async-only middleware run on the server's event loop, where loop-bound clients
work: the request thread reaches them as Django's sync chain does (``async_to_sync``), through
``_call_async`` below. While it waits, the request thread serves the thread-sensitive calls they
make (``sync_to_async``); calls from tasks they started that outlive the request go to a new
thread of their own, as under Django's handler.

A sync view cannot be cancelled, and this path does not listen for ``http.disconnect`` while one
runs: its response is sent (servers drop it). An async part, or a streamed response, is
cancelled when the client disconnects, as under Django's handler.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import io
import os
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import aclosing
from tempfile import SpooledTemporaryFile
from typing import TYPE_CHECKING, Any, TypeVar

from asgiref.sync import (
    SyncToAsync,
    ThreadSensitiveContext,
    async_to_sync,
    iscoroutinefunction,
)
from django.conf import settings
from django.core import signals
from django.core.handlers import base
from django.core.handlers.asgi import get_script_prefix
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

if TYPE_CHECKING:
    from django.core.handlers.asgi import ASGIHandler

    from lifespan_signals.threads import RequestThread, RequestThreads

__all__ = ["OneHop"]

_T = TypeVar("_T")
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Coroutine[Any, Any, Message]]
Send = Callable[[Message], Coroutine[Any, Any, None]]
_Item = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]

# The request the current request thread serves (set in that thread, for _call_async).
_serving: contextvars.ContextVar[_Request] = contextvars.ContextVar("lifespan_signals_one_hop")
_END = object()


class _Request:
    """One request on the one-hop path: what its thread and the loop share."""

    __slots__ = ("disconnected", "listener", "loop", "receive", "thread", "watched")

    def __init__(self, loop: asyncio.AbstractEventLoop, receive: Receive, thread: Any) -> None:
        self.loop = loop
        self.receive = receive
        self.thread = thread  # the threading.Thread of the request's RequestThread
        self.disconnected = False
        self.listener: asyncio.Task[None] | None = None
        self.watched: set[asyncio.Task[Any]] = set()  # cancelled when the client disconnects

    def listen(self) -> None:
        """Watch for ``http.disconnect`` from now on: async parts and streaming are cancelled."""
        if self.listener is None:
            self.listener = self.loop.create_task(self._listen())

    async def _listen(self) -> None:
        message = await self.receive()
        if message["type"] != "http.disconnect":
            raise AssertionError(f"Invalid ASGI message after request body: {message['type']}")
        self.disconnected = True
        for task in list(self.watched):
            task.cancel()

    def start(
        self, coroutine: Coroutine[Any, Any, Any], done: Future[Any], context: contextvars.Context
    ) -> None:
        """On the loop: run ``coroutine`` (an async view or middleware), its result to ``done``."""
        self.listen()
        # The task copies the context it is created in: the request thread's, given here.
        task = context.run(self.loop.create_task, _settle(coroutine, done, self))
        self.watched.add(task)
        task.add_done_callback(self.watched.discard)


async def _settle(
    coroutine: Coroutine[Any, Any, Any], done: Future[Any], request: _Request
) -> None:
    try:
        if request.disconnected:
            coroutine.close()
            raise asyncio.CancelledError
        done.set_result(await coroutine)
    except BaseException as exc:  # the request thread gets it, CancelledError too
        done.set_exception(exc)


class _Waiting(Executor):
    """The thread-sensitive calls of async code that a request thread waits for.

    While the thread waits (``run_until``), it runs them; afterwards (a task the async code started
    and that outlived the request) they go to a new thread of their own, as Django's handler gives
    each request's leftovers: never to the request thread, which may serve another request by then.
    """

    def __init__(self) -> None:
        self._ready = threading.Condition(threading.Lock())
        self._items: deque[_Item] = deque()
        self._waiting = True
        self._after: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        with self._ready:
            if self._waiting:
                future: Future[_T] = Future()
                self._items.append((future, fn, args, kwargs))
                self._ready.notify()
                return future
            if self._after is None:
                self._after = ThreadPoolExecutor(1, thread_name_prefix="lifespan-signals-after")
            after = self._after
        return after.submit(fn, *args, **kwargs)

    def run_until(self, done: Future[Any]) -> None:
        """Run the calls submitted until ``done`` is done and none is left."""

        def wake(_: Future[Any]) -> None:
            with self._ready:
                self._ready.notify()

        done.add_done_callback(wake)
        while True:
            with self._ready:
                while not self._items and not done.done():
                    self._ready.wait()
                if not self._items:
                    self._waiting = False
                    return
                future, fn, args, kwargs = self._items.popleft()
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                    del exc
                else:
                    future.set_result(result)
                    del result
            del future, fn, args, kwargs


def _call_async(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``async_to_sync(function)(*args, **kwargs)`` for the sync chain of a one-hop request."""
    request = _serving.get(None)
    if request is None or threading.current_thread() is not request.thread:
        return async_to_sync(function)(*args, **kwargs)  # not a request thread: Django's way
    waiting = _Waiting()
    done: Future[Any] = Future()

    async def run() -> Any:
        # Thread-sensitive calls of the async code go to ``waiting``: this thread, while it waits.
        # The context is never exited: it is the task's own, and ends with the task and with the
        # tasks that inherited it (asgiref would make their later calls fail).
        await ThreadSensitiveContext(executor=waiting).__aenter__()  # type: ignore[call-arg, no-untyped-call, unused-ignore]
        return await function(*args, **kwargs)

    request.loop.call_soon_threadsafe(request.start, run(), done, contextvars.copy_context())
    waiting.run_until(done)
    return done.result()


class _ToSync:
    """``function`` (async), callable from the sync chain, as ``async_to_sync`` makes it."""

    def __init__(self, function: Callable[..., Any]) -> None:
        # Not its __dict__: that may hold the mark of a coroutine function (markcoroutinefunction).
        functools.update_wrapper(self, function, updated=())
        self.function = function
        if hasattr(function, "__self__"):
            self.__self__ = function.__self__  # Django names the middleware by it in errors

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _call_async(self.function, *args, **kwargs)


_to_sync = _ToSync


class SyncChain(base.BaseHandler):
    """Django's middleware chain in sync mode, as ``WSGIHandler`` loads it.

    Async-only middleware and async views are adapted as Django adapts them (``async_to_sync``),
    through ``_call_async``, which runs them on the server's loop.
    """

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware(is_async=False)

    def adapt_method_mode(
        self,
        is_async: bool,
        method: Any,
        method_is_async: bool | None = None,
        debug: bool = False,
        name: str | None = None,
    ) -> Any:
        if method_is_async is None:
            method_is_async = iscoroutinefunction(method)
        if not is_async and method_is_async:
            if debug:
                base.logger.debug("Asynchronous handler adapted for %s.", name)
            return _to_sync(method)
        return super().adapt_method_mode(is_async, method, method_is_async, debug, name)

    def make_view_atomic(self, view: Any) -> Any:
        view = super().make_view_atomic(view)
        return _to_sync(view) if iscoroutinefunction(view) else view


class OneHop:
    """Serve HTTP requests for ``handler`` (a ``LifespanASGIHandler``) on the one-hop path."""

    def __init__(self, handler: ASGIHandler, threads: RequestThreads) -> None:
        self.handler = handler
        self.threads = threads
        self.chain = SyncChain()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        if body is None:
            return  # the client left before the request was complete
        thread = self.threads.acquire(scope)
        request = _Request(asyncio.get_running_loop(), receive, thread.thread)
        reuse = False
        try:
            outcome = await _hop(thread, self._respond, request, scope, body)
            if outcome is not None and not request.disconnected:
                response, headers = outcome
                if response.streaming:
                    await self._stream(thread, request, response, headers, send)
                else:
                    await _send(self.handler.chunk_size, response, headers, send)
            reuse = True
        finally:
            for task in list(request.watched):
                task.cancel()  # cancelled ourselves (by the server): async parts end too
            listener = request.listener
            if listener is not None and not listener.done():
                listener.cancel()
            self.threads.release(thread, reuse=reuse and not request.watched)
        if listener is not None and listener.done() and not listener.cancelled():
            listener.result()  # an invalid message after the body: Django's AssertionError

    def _respond(
        self, request: _Request, scope: Scope, body: Any
    ) -> tuple[HttpResponseBase, list[tuple[bytes, bytes]]] | None:
        """In the request thread: ``request_started``, the chain, the view and, unless the
        response is streamed, its ``close()``."""
        handler = self.handler
        token = _serving.set(request)
        try:
            set_script_prefix(get_script_prefix(scope))
            signals.request_started.send(sender=handler.__class__, scope=scope)
            django_request, response = handler.create_request(scope, body)
            if django_request is None:
                body.close()
            else:
                try:
                    response = self.chain.get_response(django_request)
                except asyncio.CancelledError:  # an async part, as the client disconnected
                    signals.request_finished.send(sender=handler.__class__)
                    django_request.close()
                    return None  # nothing to send
                response._handler_class = handler.__class__  # type: ignore[attr-defined] # request_finished's sender
                if isinstance(response, FileResponse):
                    response.block_size = handler.chunk_size
            assert response is not None  # create_request gives a request or a response
            headers = _headers(response)
            if not response.streaming:
                response.close()  # request_finished: before sending, in this same hop
            return response, headers
        finally:
            _serving.reset(token)

    async def _stream(
        self,
        thread: RequestThread,
        request: _Request,
        response: Any,
        headers: list[tuple[bytes, bytes]],
        send: Send,
    ) -> None:
        request.listen()
        sender = asyncio.ensure_future(self._send_stream(thread, response, headers, send))
        request.watched.add(sender)
        try:
            await sender
        except asyncio.CancelledError:
            if not request.disconnected:
                sender.cancel()
                raise
        finally:
            request.watched.discard(sender)
            # request_finished, in the request thread, once the response was sent (or abandoned).
            await _hop(thread, response.close)

    async def _send_stream(
        self, thread: RequestThread, response: Any, headers: list[tuple[bytes, bytes]], send: Send
    ) -> None:
        start = {"type": "http.response.start", "status": response.status_code, "headers": headers}
        await send(start)
        size = self.handler.chunk_size
        if response.is_async:
            async with aclosing(aiter(response)) as content:
                async for part in content:
                    await _send_part(size, part, send)
        else:
            parts = iter(response.streaming_content)

            def step() -> Any:
                return next(parts, _END)

            # One hop per part: the iterator runs in the request thread, as under WSGI.
            while (part := await _hop(thread, step)) is not _END:
                await _send_part(size, part, send)
        await send({"type": "http.response.body"})


async def _hop(thread: RequestThread, function: Callable[..., _T], *args: Any) -> _T:
    """Run ``function`` in the request's thread, in a copy of this context.

    What ``sync_to_async`` does, less what this path does not need (its thread routing, and
    copying context changes back), which is a tenth of a small request's CPU.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    call = functools.partial(context.run, _in_request_thread, loop, function, args)
    result: _T = await loop.run_in_executor(thread, call)
    return result


def _in_request_thread(
    loop: asyncio.AbstractEventLoop, function: Callable[..., _T], args: tuple[Any, ...]
) -> _T:
    # As sync_to_async's thread_handler does: async_to_sync in this thread finds the server's
    # loop through these, and runs the coroutine there.
    local = SyncToAsync.threadlocal
    local.main_event_loop = loop
    local.main_event_loop_pid = os.getpid()
    return function(*args)


async def _read_body(receive: Receive) -> Any:
    """The request body as a file: in memory if small, else spooled to disk as Django's is."""
    message = await receive()
    if message["type"] == "http.disconnect":
        return None
    chunk = message.get("body", b"")
    limit = settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    if not message.get("more_body", False) and (limit is None or len(chunk) <= limit):
        return io.BytesIO(chunk)  # what a spooled file would hold too
    body = SpooledTemporaryFile(max_size=limit, mode="w+b")  # noqa: SIM115 - the request's
    body.write(chunk)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            body.close()
            return None
        body.write(message.get("body", b""))
    body.seek(0)
    return body


def _headers(response: HttpResponseBase) -> list[tuple[bytes, bytes]]:
    """The response headers and cookies as ASGI wants them (Django's ``send_response``)."""
    headers = [
        (
            header.encode("ascii") if isinstance(header, str) else bytes(header),
            value.encode("latin1") if isinstance(value, str) else bytes(value),
        )
        for header, value in response.items()
    ]
    for cookie in response.cookies.values():
        headers.append((b"Set-Cookie", cookie.output(header="").encode("ascii").strip()))
    return headers


async def _send(
    size: int, response: HttpResponseBase, headers: list[tuple[bytes, bytes]], send: Send
) -> None:
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    content = response.content  # type: ignore[attr-defined]
    if len(content) <= size:
        await send({"type": "http.response.body", "body": content, "more_body": False})
        return
    for start in range(0, len(content), size):
        more = start + size < len(content)
        chunk = content[start : start + size]
        await send({"type": "http.response.body", "body": chunk, "more_body": more})


async def _send_part(size: int, part: bytes, send: Send) -> None:
    for start in range(0, len(part), size):
        chunk = part[start : start + size]
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
