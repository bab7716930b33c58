"""Request threads: one reused thread per request, as a WSGI server's pool gives (opt-in).

Django's ``ASGIHandler`` runs each request in a new ``asgiref.sync.ThreadSensitiveContext``, and
asgiref starts a new thread for the first thread-sensitive sync call in it (Django always makes
one: its ``request_started`` receivers are sync). ``RequestThreads`` instead hands each request a
thread kept from an earlier request, through asgiref's own mechanism: a ``ThreadSensitiveContext``
given that thread's executor. All sync work of the request runs in that one thread, and no other
request uses the thread until this one is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib.metadata
import itertools
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from queue import SimpleQueue
from typing import Any, TypeVar

import django
from asgiref.sync import ThreadSensitiveContext

__all__ = ["TESTED_WITH", "RequestThread", "RequestThreads", "supported", "untested_versions"]

_T = TypeVar("_T")
_Call = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]
_names = itertools.count(1)
logger = logging.getLogger(__name__)


# The asgiref and Django releases (major.minor) this was tested with: it relies on details of
# both (docs/howto/request-threads.md says which).
TESTED_WITH = {"asgiref": ("3.13",), "django": ("5.2", "6.0", "6.1")}


def untested_versions() -> list[str]:
    """The installed asgiref and Django, each unless its release is in ``TESTED_WITH``."""
    installed = {"asgiref": importlib.metadata.version("asgiref"), "django": django.__version__}
    return [
        f"{name} {version}"
        for name, version in installed.items()
        if ".".join(version.split(".")[:2]) not in TESTED_WITH[name]
    ]


def supported() -> bool:
    """Whether the installed asgiref lets a ``ThreadSensitiveContext`` use a given executor."""
    try:
        ThreadSensitiveContext(executor=None)  # type: ignore[call-arg, unused-ignore]
    except TypeError:
        return False
    return True


class RequestThread(Executor):
    """One daemon thread that runs the calls submitted to it, one at a time, in order."""

    def __init__(self) -> None:
        self._calls: SimpleQueue[_Call | None] = SimpleQueue()
        # Each counter has a single writer (the submitting thread, the worker), so no lock.
        self._submitted = 0
        self._finished = 0
        self._shut = False
        self.scope: dict[str, Any] | None = None  # the request it serves, for the logs
        self.thread = threading.Thread(
            target=self._work, name=f"lifespan-signals-request-{next(_names)}", daemon=True
        )
        self.thread.start()

    @property
    def idle(self) -> bool:
        """True when every call submitted so far has finished."""
        return self._finished == self._submitted

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        if self._shut:
            raise RuntimeError(f"{self.thread.name} is shut down: it takes no more calls.")
        future: Future[_T] = Future()
        self._submitted += 1
        self._calls.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if not self._shut:
            self._shut = True
            self._calls.put(None)  # after the calls already queued
        if wait and threading.current_thread() is not self.thread:
            self.thread.join()

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            future, fn, args, kwargs = call
            del call  # hold no reference to the call's arguments between calls
            if not future.set_running_or_notify_cancel():
                self._finished += 1
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # the caller gets it, as from ThreadPoolExecutor
                # Finished before the caller hears of it: it may hand the thread on at once.
                self._finished += 1
                future.set_exception(exc)
                del exc
            else:
                self._finished += 1
                future.set_result(result)
                del result
            del future, fn, args, kwargs
        # Django keeps a database connection per thread: close this thread's as it ends (at
        # lifespan shutdown, or after its request when the pool is full), not at garbage
        # collection.
        from django.db import connections

        connections.close_all()


class RequestThreads:
    """Up to ``size`` idle request threads, kept for the next requests.

    ``acquire()`` gives an idle thread, or a new one when none is idle (more concurrent requests
    than ``size``); ``release()`` keeps it if it is idle, the pool open and not full, and stops
    it otherwise. ``close()`` (at lifespan shutdown) stops the idle threads; ``open()`` (at
    lifespan startup) keeps threads again. ``ended()`` waits until every thread stopped so far
    has ended, and so has closed its database connections.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: list[RequestThread] = []
        self._open = True
        self._ending: list[RequestThread] = []  # stopped, perhaps still closing connections

    def __repr__(self) -> str:
        return f"<RequestThreads size={self.size} idle={len(self._idle)} open={self._open}>"

    def acquire(self, scope: dict[str, Any] | None = None) -> RequestThread:
        """A thread for the request of ``scope``."""
        try:
            thread = self._idle.pop()  # the most recently used: its stack is warm
        except IndexError:
            thread = RequestThread()
        thread.scope = scope
        return thread

    def release(self, thread: RequestThread, *, reuse: bool = True) -> None:
        if reuse and self._open and thread.idle and len(self._idle) < self.size:
            thread.scope = None
            self._idle.append(thread)
        else:
            self._stop(thread)

    def _stop(self, thread: RequestThread) -> None:
        thread.shutdown(wait=False)  # it ends once its queued calls are done
        self._ending = [ending for ending in self._ending if ending.thread.is_alive()]
        self._ending.append(thread)

    async def serve(self, thread: RequestThread, request: Awaitable[None]) -> None:
        """Await ``request`` with its thread-sensitive calls sent to ``thread``.

        A task the request started may call ``sync_to_async()`` after the request: that call
        goes to a thread of its own, as under Django's handler (not to ``thread``, which may
        serve another request by then). So the asgiref context is never exited (asgiref would
        make such calls fail): it is entered in a task of its own, whose context ends with it.
        """
        executor = _RequestExecutor(thread)

        async def run() -> None:
            context = ThreadSensitiveContext(executor=executor)  # type: ignore[call-arg, unused-ignore]
            await context.__aenter__()  # type: ignore[no-untyped-call, unused-ignore]
            await request

        loop = asyncio.get_running_loop()
        try:
            # The task copies the context it is created in: a copy of this one.
            await contextvars.copy_context().run(loop.create_task, run())
        finally:
            executor.finish()

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False
        while self._idle:
            self._stop(self._idle.pop())

    async def ended(self, timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, until the threads stopped so far have ended.

        A thread still running then (a request's sync code that outlived the server's own
        shutdown, a database that does not answer) is logged: it may not close its database
        connections before the process ends."""
        ending = list(self._ending)  # kept in self._ending, also if this wait is cancelled
        if ending:
            await _joined([thread.thread for thread in ending], timeout)
        self._ending = [thread for thread in self._ending if thread.thread.is_alive()]
        if alive := [thread for thread in ending if thread.thread.is_alive()]:
            logger.warning(
                "%d request thread(s) still running %.3g s after lifespan shutdown stopped "
                "them (%s): their database connections may be closed only when the process "
                "ends.",
                len(alive),
                timeout,
                ", ".join(_described(thread) for thread in alive),
            )


def _described(thread: RequestThread) -> str:
    """``lifespan-signals-request-1, serving GET /path``: the thread, and its request if any."""
    scope = thread.scope
    if scope is None:
        return thread.thread.name
    query = scope.get("query_string", b"").decode("latin-1")
    path = scope.get("path", "?") + (f"?{query}" if query else "")
    return f"{thread.thread.name}, serving {scope.get('method', '?')} {path}"


async def _joined(threads: list[threading.Thread], timeout: float) -> None:
    """Join ``threads`` for ``timeout`` seconds at most, in a thread of its own.

    Not in the loop's default executor: its threads may all be busy (``sync_to_async`` calls
    with ``thread_sensitive=False``, a slow DNS lookup), and the wait would not even begin.
    """
    loop = asyncio.get_running_loop()
    joined = loop.create_future()

    def done() -> None:
        if not joined.done():  # not if the wait was cancelled
            joined.set_result(None)

    def join() -> None:
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(done)

    threading.Thread(target=join, name="lifespan-signals-join", daemon=True).start()
    await joined


class _RequestExecutor(Executor):
    """A request's thread: its thread-sensitive calls go there until ``finish()``, then (a task
    that outlived the request) to a thread of their own."""

    def __init__(self, thread: RequestThread) -> None:
        self._thread: RequestThread | None = thread
        self._after: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        with self._lock:
            target: Executor | None = self._thread
            if target is None:
                if self._after is None:
                    self._after = ThreadPoolExecutor(1, thread_name_prefix="lifespan-signals-after")
                target = self._after
        return target.submit(fn, *args, **kwargs)

    def finish(self) -> None:
        # A call queued before this still runs in the request thread: that thread is then not
        # idle, so RequestThreads.release() does not keep it.
        with self._lock:
            self._thread = None
