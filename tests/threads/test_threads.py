"""LIFESPAN_SIGNALS_REQUEST_THREADS in process: the setting, its checks, the pool, the protocol."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import django
import pytest
from asgiref.sync import ThreadSensitiveContext, async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.test import SimpleTestCase, override_settings

from lifespan_signals import threads as threads_module
from lifespan_signals.asgi import LifespanASGIHandler, get_asgi_application
from lifespan_signals.checks import check_request_threads
from lifespan_signals.conf import settings as conf
from lifespan_signals.threads import RequestThread, RequestThreads
from tests.harness.in_process import Lifespan, http_scope, needs_request_threads
from tests.harness.servers import manage_py_check

BAD = [True, False, 0, -1, 2.0, math.inf, math.nan, "4", [4]]
THREAD_APP = {
    "ROOT_URLCONF": "tests.projects.threadapp.urls",
    "MIDDLEWARE": ["tests.projects.threadapp.views.ThreadMiddleware"],
}


async def get(app, path="/", query=b""):
    """One request through ``app``: (status, headers, body)."""
    communicator = ApplicationCommunicator(app, http_scope(path, query=query))
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(10)
    body = await communicator.receive_output(10)
    await communicator.wait(10)
    return start["status"], dict(start["headers"]), body["body"]


def request_threads():
    prefix = "lifespan-signals-request"
    return [thread for thread in threading.enumerate() if thread.name.startswith(prefix)]


# -- the setting ----------------------------------------------------------------------------


def startup_message(app):
    """What ``app`` answers to lifespan.startup (its shutdown runs inside a failed startup)."""
    return async_to_sync(Lifespan(app, {}).startup)()


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_bad_values_are_refused_at_startup_with_the_check_s_message(value):
    with override_settings(LIFESPAN_SIGNALS_REQUEST_THREADS=value):
        app = get_asgi_application()  # importing asgi.py does not raise: startup refuses
        assert app.request_threads is None
        (message,) = check_request_threads()
        reply = startup_message(app)
    text = reply["message"]
    assert reply["type"] == "lifespan.startup.failed"
    assert f"lifespan_signals.E030: {message.msg} HINT: {message.hint}" in text
    assert f"not {value!r}." in text
    assert "Set LIFESPAN_SIGNALS_REQUEST_THREADS to e.g. 8" in text
    assert "Traceback" not in text


@needs_request_threads
@pytest.mark.parametrize("value", [None, 1, 64])
def test_good_values(value):
    with override_settings(LIFESPAN_SIGNALS_REQUEST_THREADS=value):
        assert value == conf.REQUEST_THREADS
        threads = get_asgi_application().request_threads
        assert check_request_threads() == []
    assert (threads is None) if value is None else (threads.size == value)


def test_unset_is_none_and_django_s_behaviour():
    assert conf.REQUEST_THREADS is None
    assert LifespanASGIHandler().request_threads is None


def test_manage_py_check_fails_on_a_bad_value():
    result = manage_py_check("tests.projects.threadapp.settings", LIFESPAN_TEST_REQUEST_THREADS="0")
    assert result.returncode == 1, result
    assert "?: (lifespan_signals.E030) LIFESPAN_SIGNALS_REQUEST_THREADS should be" in result.stderr
    assert "not 0." in result.stderr


@needs_request_threads
def test_untested_django_or_asgiref_is_warned_about(monkeypatch):
    monkeypatch.setattr(django, "__version__", "9.1.0")
    with override_settings(LIFESPAN_SIGNALS_REQUEST_THREADS=4):
        (message,) = check_request_threads()
    assert message.id == "lifespan_signals.W030"
    assert "but this is django 9.1.0." in message.msg
    assert "(asgiref 3.13; django 5.2, 6.0, 6.1)" in message.msg
    assert "LIFESPAN_SIGNALS_REQUEST_THREADS = None" in message.hint
    with override_settings(LIFESPAN_SIGNALS_REQUEST_THREADS=None):
        assert check_request_threads() == []  # off: nothing it relies on


class _OldContext(ThreadSensitiveContext):
    """A ThreadSensitiveContext as asgiref had it before it took an executor."""

    def __init__(self) -> None:
        super().__init__()


def test_an_asgiref_without_executors_is_an_error(monkeypatch):
    monkeypatch.setattr(threads_module, "ThreadSensitiveContext", _OldContext)
    with override_settings(LIFESPAN_SIGNALS_REQUEST_THREADS=4):
        (message,) = check_request_threads()
        app = get_asgi_application()
        reply = startup_message(app)
    assert app.request_threads is None
    assert reply["type"] == "lifespan.startup.failed"
    assert f"lifespan_signals.E031: {message.msg}" in reply["message"]
    assert "Upgrade asgiref" in reply["message"]
    assert message.id == "lifespan_signals.E031"
    assert "ThreadSensitiveContext takes an executor, but asgiref 3." in message.msg


# -- the pool -------------------------------------------------------------------------------


def test_a_request_thread_runs_calls_in_order_in_one_daemon_thread():
    thread = RequestThread()
    try:
        assert thread.thread.daemon
        futures = [thread.submit(threading.current_thread) for _ in range(3)]
        assert {future.result(5) for future in futures} == {thread.thread}
        failed = thread.submit(exit, 3)  # any BaseException reaches the caller
        with pytest.raises(SystemExit):
            failed.result(5)
        assert thread.idle
    finally:
        thread.shutdown()
    assert not thread.thread.is_alive()
    with pytest.raises(RuntimeError, match=r"lifespan-signals-request-\d+ is shut down"):
        thread.submit(print)


@pytest.mark.parametrize("call", [int, exit], ids=["returns", "raises"])
def test_a_thread_is_idle_by_the_time_its_caller_hears_of_the_result(call):
    # The event loop hands the thread to the next request as soon as the call's future is done.
    thread = RequestThread()
    seen = []
    future = thread.submit(call)
    future.add_done_callback(lambda _: seen.append(thread.idle))  # runs as the result is set
    thread.shutdown()
    assert seen == [True]


def test_a_busy_thread_is_not_kept_and_the_pool_keeps_at_most_its_size():
    pool = RequestThreads(2)
    first, second, third = (pool.acquire() for _ in range(3))
    release = threading.Event()
    busy = first.submit(release.wait, 5)
    pool.release(first)  # still running a call: stopped, not kept
    pool.release(second)
    pool.release(third)
    pool.release(RequestThread())  # over the size
    assert pool.acquire() is third
    assert pool.acquire() is second
    release.set()
    assert busy.result(5) is True
    first.thread.join(5)
    assert not first.thread.is_alive()
    pool.release(second, reuse=False)
    second.thread.join(5)
    assert not second.thread.is_alive()
    third.shutdown()


def test_close_stops_the_idle_threads_and_keeps_none_until_opened():
    pool = RequestThreads(4)
    kept = pool.acquire()
    pool.release(kept)
    pool.close()
    kept.thread.join(5)
    assert not kept.thread.is_alive()
    later = pool.acquire()
    assert later is not kept
    pool.release(later)
    later.thread.join(5)
    assert not later.thread.is_alive()
    pool.open()
    again = pool.acquire()
    pool.release(again)
    assert pool.acquire() is again
    assert "size=4" in repr(pool)
    again.shutdown()


def test_ended_waits_for_the_stopped_threads_still_running_a_call():
    pool = RequestThreads(2)
    slow, kept = pool.acquire(), pool.acquire()
    slow.submit(time.sleep, 0.3)  # still running: stopped, not kept
    pool.release(slow)
    pool.release(kept)
    pool.close()
    async_to_sync(pool.ended)(5.0)
    assert not slow.thread.is_alive()
    assert not kept.thread.is_alive()


def _stopped_while_busy() -> tuple[RequestThreads, RequestThread, threading.Event]:
    """A pool whose one thread was stopped while its call waits for ``gate``."""
    pool = RequestThreads(1)
    stuck = pool.acquire()
    gate = threading.Event()
    stuck.submit(gate.wait, 10)
    pool.release(stuck)  # not idle: stopped, not kept
    return pool, stuck, gate


def test_ended_gives_up_after_its_timeout_names_the_thread_and_waits_again_later(caplog):
    pool, stuck, gate = _stopped_while_busy()
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="lifespan_signals.threads"):
        async_to_sync(pool.ended)(0.2)
    assert time.monotonic() - started < 5
    assert stuck.thread.is_alive()
    (record,) = caplog.records
    assert stuck.thread.name in record.getMessage()
    assert "database connections may be closed only when the process ends" in record.getMessage()
    gate.set()
    async_to_sync(pool.ended)(5.0)  # still remembered
    assert not stuck.thread.is_alive()


def test_ended_keeps_its_timeout_when_the_loops_default_executor_is_busy(caplog):
    pool, stuck, gate = _stopped_while_busy()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        busy = ThreadPoolExecutor(1)
        loop.set_default_executor(busy)
        held = loop.run_in_executor(None, gate.wait, 10)  # sync_to_async(thread_sensitive=False)
        await asyncio.wait_for(pool.ended(0.2), 3)  # not until the executor frees
        with pytest.raises(asyncio.TimeoutError):  # cancelled while it waits: nothing left behind
            await asyncio.wait_for(pool.ended(5.0), 0.1)
        gate.set()
        await held

    with caplog.at_level("WARNING", logger="lifespan_signals.threads"):
        asyncio.run(main())
    assert stuck.thread.name in caplog.records[0].getMessage()
    async_to_sync(pool.ended)(5.0)
    assert not stuck.thread.is_alive()


def test_cancelled_futures_are_skipped():
    thread = RequestThread()
    gate = threading.Event()
    thread.submit(gate.wait, 5)
    skipped: Future[None] = thread.submit(print, "never")
    assert skipped.cancel()
    gate.set()
    thread.shutdown()
    assert thread.idle


# -- the handler, message by message ----------------------------------------------------------


@needs_request_threads
@override_settings(LIFESPAN_SIGNALS_REQUEST_THREADS=2, **THREAD_APP)
class HandlerTests(SimpleTestCase):
    async def test_requests_reuse_one_thread_and_shutdown_stops_it_before_completing(self):
        app = get_asgi_application()
        lifespan = Lifespan(app, {})
        self.assertEqual((await lifespan.startup())["type"], "lifespan.startup.complete")
        tags = [(await get(app))[1][b"X-Thread"] for _ in range(50)]
        self.assertEqual(len(set(tags)), 1, tags)
        (kept,) = app.request_threads._idle
        kept.submit(time.sleep, 0.3)  # e.g. a slow database closing its connection
        self.assertEqual((await lifespan.shutdown())["type"], "lifespan.shutdown.complete")
        # Ended, and so its connections closed, before the server hears shutdown is over.
        self.assertFalse(kept.thread.is_alive())
        self.assertEqual(app.request_threads._idle, [])

    async def test_concurrent_requests_never_share_a_thread(self):
        app = get_asgi_application()
        answers = await asyncio.gather(*(get(app, query=b"sleep=0.05") for _ in range(16)))
        self.assertEqual({status for status, _, _ in answers}, {200})
        tags = [headers[b"X-Thread"] for _, headers, _ in answers]
        self.assertEqual(len(set(tags)), 16)  # 16 at once: 16 threads, 2 of them kept
        self.assertEqual(len(app.request_threads._idle), 2)
        self.assertNotIn(b"request ", b"".join(body for _, _, body in answers))  # no violation
        app.request_threads.close()

    # Django's handler leaves the request's body file to the garbage collector when cancelled.
    @pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    async def test_a_cancelled_request_s_thread_is_not_kept(self):
        app = get_asgi_application()
        before = set(request_threads())
        communicator = ApplicationCommunicator(app, http_scope("/", query=b"sleep=0.3"))
        await communicator.send_input({"type": "http.request", "body": b""})
        started = asyncio.get_running_loop().time()
        while not (new := set(request_threads()) - before):
            self.assertLess(asyncio.get_running_loop().time() - started, 5)
            await asyncio.sleep(0.01)
        (worker,) = new
        communicator.future.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await communicator.future
        self.assertEqual(app.request_threads._idle, [])
        await asyncio.to_thread(worker.join, 5)
        self.assertFalse(worker.is_alive())

    async def test_a_websocket_scope_is_refused_as_django_does_without_a_thread(self):
        app = get_asgi_application()
        before = next(threads_module._names)  # the number the next thread would get
        communicator = ApplicationCommunicator(app, {"type": "websocket", "path": "/"})
        with self.assertRaisesRegex(ValueError, "Django can only handle ASGI/HTTP connections"):
            await communicator.wait(5)
        self.assertEqual(next(threads_module._names), before + 1)  # none started in between
