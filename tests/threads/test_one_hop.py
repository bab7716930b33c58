"""LIFESPAN_SIGNALS_ONE_HOP in process: the setting, and the request path message by message.

Each gate of the one-hop path: one thread hop for a sync request; which thread and loop each
part runs on; streamed and file responses; large uploads; client disconnects; tasks that outlive
the response; the request threads stopped at lifespan shutdown, also behind ``LifespanWrapper``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import threading
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from asgiref import sync as asgiref_sync
from asgiref.testing import ApplicationCommunicator
from django.core.signals import request_finished, request_started
from django.test import SimpleTestCase, override_settings

from lifespan_signals import _one_hop
from lifespan_signals.asgi import LifespanASGIHandler, LifespanWrapper, get_asgi_application
from lifespan_signals.checks import check_one_hop
from lifespan_signals.threads import RequestThread
from tests.harness import catalogue
from tests.harness.in_process import Lifespan, connected, http_scope, needs_request_threads
from tests.harness.servers import get_json, manage_py_check, read_events
from tests.projects.onehopapp import views

STARTPROJECT = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
MIDDLEWARE = [
    "lifespan_signals.middleware.LifespanStateMiddleware",
    "tests.projects.onehopapp.views.SyncMiddleware",
    "tests.projects.onehopapp.views.AsyncOnlyMiddleware",
]
ONE_HOP = {
    "LIFESPAN_SIGNALS_REQUEST_THREADS": 2,
    "LIFESPAN_SIGNALS_ONE_HOP": True,
    "ROOT_URLCONF": "tests.projects.onehopapp.urls",
    "MIDDLEWARE": MIDDLEWARE,
}
PREFIX = "lifespan-signals-request"
THREAD_APP = "tests.projects.threadapp.asgi:application"  # records the request threads left at exit


class Exchange:
    """One request through ``app``: send it, read what the application answers."""

    def __init__(self, app, path, *, method="GET", headers=(), query=b""):
        scope = http_scope(path, query=query)
        scope["method"] = method
        scope["headers"] = [*scope["headers"], *headers]
        self.communicator = ApplicationCommunicator(app, scope)

    async def send(self, *chunks: bytes) -> None:
        for index, chunk in enumerate(chunks or [b""]):
            more = index < len(chunks) - 1
            await self.communicator.send_input(
                {"type": "http.request", "body": chunk, "more_body": more}
            )

    async def response(self):
        """(status, headers, body), once the body is complete; the application then ends."""
        start = await self.communicator.receive_output(10)
        assert start["type"] == "http.response.start", start
        parts = []
        while True:
            message = await self.communicator.receive_output(10)
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await self.communicator.wait(10)
        return start["status"], dict(start["headers"]), parts

    async def disconnect(self) -> None:
        await self.communicator.send_input({"type": "http.disconnect"})


async def get(app, path, **kwargs):
    exchange = Exchange(app, path, **kwargs)
    await exchange.send()
    status, headers, parts = await exchange.response()
    return status, headers, b"".join(parts)


class Recorder:
    """A receiver that records the thread it ran in (connect it with ``connected``)."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def __call__(self, **kwargs) -> None:
        self.threads.append(threading.current_thread().name)


async def wait_for(predicate, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


# -- the setting ----------------------------------------------------------------------------


def startup_message(app):
    """What ``app`` answers to lifespan.startup (a failed startup shuts down inside it)."""
    return asgiref_sync.async_to_sync(Lifespan(app, {}).startup)()


@pytest.mark.parametrize("value", [1, "yes", None], ids=repr)
def test_a_non_bool_is_refused_at_startup_with_the_check_s_message(value):
    with override_settings(LIFESPAN_SIGNALS_ONE_HOP=value, LIFESPAN_SIGNALS_REQUEST_THREADS=4):
        app = get_asgi_application()  # importing asgi.py does not raise: startup refuses
        assert app.one_hop is None
        (message,) = check_one_hop()
        reply = startup_message(app)
    text = reply["message"]
    assert reply["type"] == "lifespan.startup.failed"
    assert f"lifespan_signals.E032: {message.msg} HINT: {message.hint}" in text
    assert f"LIFESPAN_SIGNALS_ONE_HOP should be True or False, not {value!r}." in text
    assert "Traceback" not in text


def test_true_needs_request_threads():
    with override_settings(LIFESPAN_SIGNALS_ONE_HOP=True):
        app = get_asgi_application()
        (message,) = check_one_hop()
        reply = startup_message(app)
    assert message.id == "lifespan_signals.E032"
    assert (
        "lifespan_signals.E032: LIFESPAN_SIGNALS_ONE_HOP = True should come with"
        in (reply["message"])
    )


def test_off_by_default():
    assert check_one_hop() == []
    assert LifespanASGIHandler().one_hop is None


def test_manage_py_check_fails_without_request_threads():
    result = manage_py_check("tests.projects.onehopapp.settings", LIFESPAN_TEST_REQUEST_THREADS="")
    assert result.returncode == 1, result
    assert "?: (lifespan_signals.E032) LIFESPAN_SIGNALS_ONE_HOP = True should come" in result.stderr


# -- the path, message by message -------------------------------------------------------------


@needs_request_threads
@override_settings(**ONE_HOP)
class OneHopTests(SimpleTestCase):
    def setUp(self) -> None:
        views.tasks.clear()
        views.events.clear()

    async def test_a_sync_request_is_one_hop_with_startproject_s_middleware(self):
        hops = []
        original_submit = RequestThread.submit
        original_call = asgiref_sync.SyncToAsync.__call__

        def submit(self, fn, /, *args, **kwargs):
            hops.append(fn)
            return original_submit(self, fn, *args, **kwargs)

        async def call(self, *args, **kwargs):
            hops.append(self.func)
            return await original_call(self, *args, **kwargs)

        with override_settings(MIDDLEWARE=STARTPROJECT):
            app = get_asgi_application()
            RequestThread.submit = submit
            asgiref_sync.SyncToAsync.__call__ = call
            try:
                status, _, _ = await get(app, "/health/")
            finally:
                RequestThread.submit = original_submit
                asgiref_sync.SyncToAsync.__call__ = original_call
        self.assertEqual(status, 200)
        self.assertEqual(len(hops), 1, hops)  # Django's ASGIHandler: 16
        app.request_threads.close()

    async def test_a_sync_view_runs_in_the_request_thread_and_async_to_sync_on_the_loop(self):
        app = get_asgi_application()
        started = Recorder()
        with connected(request_started, started):
            status, headers, body = await get(app, "/sync/")
        answer = json.loads(body)
        self.assertEqual(status, 200)
        self.assertTrue(answer["view"].startswith(PREFIX))
        self.assertEqual(started.threads, [answer["view"]])
        self.assertEqual(answer["middleware"], answer["view"])
        self.assertEqual(answer["async_to_sync_loop"], id(asyncio.get_running_loop()))
        # Async-only middleware: on the loop; its sync_to_async in the request thread.
        self.assertEqual(headers[b"X-Async-Loop"], str(id(asyncio.get_running_loop())).encode())
        self.assertEqual(headers[b"X-Async-Sync-To-Async"].decode(), answer["view"])
        app.request_threads.close()

    async def test_an_async_view_runs_on_the_loop_and_sync_to_async_in_the_request_thread(self):
        app = get_asgi_application()
        status, _, body = await get(app, "/async/")
        answer = json.loads(body)
        self.assertEqual(status, 200)
        self.assertEqual(answer["view_thread"], threading.current_thread().name)
        self.assertEqual(answer["loop"], id(asyncio.get_running_loop()))
        self.assertTrue(answer["sync_to_async"].startswith(PREFIX))
        self.assertEqual(answer["sync_to_async"], answer["middleware"])
        app.request_threads.close()

    async def test_request_finished_once_in_the_request_thread_before_it_is_reused(self):
        app = get_asgi_application()
        finished = Recorder()
        with connected(request_finished, finished):
            answers = [json.loads((await get(app, "/sync/"))[2]) for _ in range(3)]
        threads = {answer["view"] for answer in answers}
        self.assertEqual(len(threads), 1)  # kept and reused
        self.assertEqual(finished.threads, [answers[0]["view"]] * 3)
        app.request_threads.close()

    async def test_streaming_with_a_sync_iterator_reads_it_in_the_request_thread(self):
        app = get_asgi_application()
        finished = Recorder()
        with connected(request_finished, finished):
            exchange = Exchange(app, "/stream/")
            await exchange.send()
            status, _, parts = await exchange.response()
        lines = b"".join(parts).decode().splitlines()
        self.assertEqual(status, 200)
        self.assertEqual([line.split(":")[0] for line in lines], ["0", "1", "2"])
        (thread,) = {line.split(":")[1] for line in lines}
        self.assertTrue(thread.startswith(PREFIX))
        self.assertEqual(finished.threads, [thread])  # closed after streaming, in its thread
        app.request_threads.close()

    async def test_streaming_with_an_async_iterator_on_the_loop(self):
        app = get_asgi_application()
        finished = Recorder()
        with connected(request_finished, finished):
            _, _, body = await get(app, "/astream/")
        loop = str(id(asyncio.get_running_loop()))
        self.assertEqual(body.decode(), f"0:{loop}\n1:{loop}\n2:{loop}\n")
        self.assertEqual(len(finished.threads), 1)
        self.assertTrue(finished.threads[0].startswith(PREFIX))
        app.request_threads.close()

    async def test_file_response_in_chunks_and_the_file_closed(self):
        app = get_asgi_application()
        exchange = Exchange(app, "/file/")
        await exchange.send()
        status, headers, parts = await exchange.response()
        with open(views.__file__, "rb") as file:  # noqa: ASYNC230 - a small local file
            self.assertEqual(b"".join(parts), file.read())
        self.assertEqual(status, 200)
        self.assertEqual(headers[b"Content-Length"], str(len(b"".join(parts))).encode())
        app.request_threads.close()

    async def test_a_20_mb_upload_is_spooled_to_disk_and_read_by_a_sync_view(self):
        app = get_asgi_application()
        boundary = "one-hop-boundary"
        payload = os.urandom(20 * 1024 * 1024)
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="field"\r\n\r\nvalue\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        body = head + payload + f"\r\n--{boundary}--\r\n".encode()
        headers = [
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        exchange = Exchange(app, "/upload/", method="POST", headers=headers)
        step = 64 * 1024  # as servers deliver a body: in chunks
        await exchange.send(*(body[start : start + step] for start in range(0, len(body), step)))
        status, _, parts = await exchange.response()
        answer = json.loads(b"".join(parts))
        self.assertEqual(status, 200, parts)
        self.assertEqual(answer["size"], len(payload))
        self.assertTrue(answer["on_disk"])  # a TemporaryUploadedFile
        self.assertTrue(answer["body_spooled"])  # the request body rolled over to disk
        self.assertEqual(answer["field"], "value")
        app.request_threads.close()

    async def test_request_body_and_post_in_sync_and_async_views(self):
        app = get_asgi_application()
        form = [(b"content-type", b"application/x-www-form-urlencoded")]
        for path in ("/body/", "/abody/"):
            with self.subTest(path=path):
                exchange = Exchange(app, path, method="POST", headers=form)
                await exchange.send(b"a=1&", b"b=2")
                status, _, parts = await exchange.response()
                answer = json.loads(b"".join(parts))
                self.assertEqual(status, 200)
                self.assertEqual(answer, {"body": "a=1&b=2", "post": {"a": "1", "b": "2"}})
        app.request_threads.close()

    async def test_a_task_started_by_a_view_may_call_sync_to_async_after_the_response(self):
        app = get_asgi_application()
        status, _, body = await get(app, "/task/")
        self.assertEqual((status, body.decode()), (200, threading.current_thread().name))
        (task,) = views.tasks
        task.go.set()
        thread = await asyncio.wait_for(task, 5)  # "ThreadSensitiveContext has exited" before
        # A thread of its own, as Django gives each request's leftovers; not the request thread,
        # which serves other requests by now.
        self.assertTrue(thread.startswith("lifespan-signals-after"), thread)
        app.request_threads.close()

    @override_settings(MIDDLEWARE=MIDDLEWARE[:2])  # sync only: no async part to cancel
    async def test_a_disconnect_during_a_sync_view_finishes_once_and_the_thread_is_clean(self):
        app = get_asgi_application()
        finished = Recorder()
        with connected(request_finished, finished):
            exchange = Exchange(app, "/sleep/", query=b"sleep=0.2")
            await exchange.send()
            await exchange.disconnect()
            # The view cannot be cancelled: it runs to its end; the response goes to a server
            # that drops it.
            status, _, _ = await exchange.response()
            self.assertEqual(status, 200)
            self.assertEqual(views.events, ["sleep_view done"])
            self.assertEqual(len(finished.threads), 1)
            answer = json.loads((await get(app, "/sync/"))[2])
        self.assertEqual(finished.threads[1:], [answer["view"]])  # the same, kept thread
        self.assertEqual(answer["view"], finished.threads[0])
        app.request_threads.close()

    async def test_a_disconnect_cancels_an_async_view_finishes_once_and_sends_nothing(self):
        app = get_asgi_application()
        finished = Recorder()
        with connected(request_finished, finished):
            exchange = Exchange(app, "/async-sleep/", query=b"sleep=10")
            await exchange.send()
            await wait_for(lambda: views.events)  # the view has started
            await exchange.disconnect()
            await exchange.communicator.wait(5)
            self.assertTrue(exchange.communicator.output_queue.empty())
            self.assertEqual(
                views.events, ["async_sleep_view started", "async_sleep_view cancelled"]
            )
            self.assertEqual(len(finished.threads), 1)
            (kept,) = app.request_threads._idle  # given back: it was free again
            status, _, body = await get(app, "/sync/")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["view"], kept.thread.name)
        self.assertEqual(finished.threads, [kept.thread.name] * 2)
        app.request_threads.close()

    async def test_a_disconnect_stops_an_async_stream_and_closes_it_once(self):
        app = get_asgi_application()
        finished = Recorder()
        with connected(request_finished, finished):
            exchange = Exchange(app, "/astream/", query=b"sleep=0.1")
            await exchange.send()
            start = await exchange.communicator.receive_output(5)
            self.assertEqual(start["status"], 200)
            await exchange.disconnect()
            await exchange.communicator.wait(5)
        self.assertEqual(len(finished.threads), 1)
        app.request_threads.close()

    async def test_a_large_body_in_chunks_and_cookies_as_headers(self):
        app = get_asgi_application()
        exchange = Exchange(app, "/big/")
        await exchange.send()
        status, headers, parts = await exchange.response()
        self.assertEqual((status, [len(part) for part in parts]), (200, [65536, 65536, 18928]))
        self.assertTrue(headers[b"Set-Cookie"].startswith(b"flavour=oat;"))
        app.request_threads.close()

    async def test_a_bad_request_is_answered_400_and_closed(self):
        app = get_asgi_application()
        finished = Recorder()
        with connected(request_finished, finished):
            status, _, _ = await get(app, "/sync/", query=b"\xff")
        self.assertEqual(status, 400)
        self.assertEqual(len(finished.threads), 1)
        app.request_threads.close()

    async def test_a_client_gone_before_the_body_is_complete_starts_no_request(self):
        app = get_asgi_application()
        started = Recorder()
        for chunks in ([], [b"part"]):  # before any body; after a first part
            with self.subTest(chunks=chunks), connected(request_started, started):
                exchange = Exchange(app, "/body/", method="POST")
                for chunk in chunks:
                    await exchange.communicator.send_input(
                        {"type": "http.request", "body": chunk, "more_body": True}
                    )
                await exchange.disconnect()
                await exchange.communicator.wait(5)
                self.assertTrue(exchange.communicator.output_queue.empty())
        self.assertEqual(started.threads, [])

    async def test_an_invalid_message_after_the_body_fails_as_in_django(self):
        app = get_asgi_application()  # its async-only middleware listens after the body
        exchange = Exchange(app, "/async-sleep/", query=b"sleep=0.1")
        await exchange.send()
        await exchange.communicator.send_input({"type": "http.not_a_real_message"})
        with self.assertRaisesMessage(AssertionError, "Invalid ASGI message after request body"):
            await exchange.communicator.wait(5)
        app.request_threads.close()

    async def test_cancelled_by_the_server_the_async_view_ends_and_its_thread_is_not_kept(self):
        app = get_asgi_application()
        for path in ("/async-sleep/", "/astream/"):
            with self.subTest(path=path):
                exchange = Exchange(app, path, query=b"sleep=10")
                await exchange.send()
                if path == "/astream/":
                    await exchange.communicator.receive_output(5)  # streaming has begun
                else:
                    await wait_for(lambda: views.events)
                exchange.communicator.future.cancel()
                with self.assertRaises(asyncio.CancelledError):
                    await exchange.communicator.future
                self.assertEqual(app.request_threads._idle, [])
        self.assertIn("async_sleep_view cancelled", views.events)

    async def test_concurrent_requests_never_share_a_thread(self):
        app = get_asgi_application()
        answers = await asyncio.gather(
            *(get(app, "/sleep/", query=b"sleep=0.05") for _ in range(16))
        )
        threads = [json.loads(body)["thread"] for _, _, body in answers]
        self.assertEqual(len(set(threads)), 16)
        self.assertEqual(len(app.request_threads._idle), 2)
        app.request_threads.close()

    async def test_lifespan_shutdown_stops_the_kept_threads_also_behind_a_wrapper_or_router(self):
        class Static:  # a wrapper that keeps the app as .application, as Django's static files'
            def __init__(self, application):
                self.application = application

            async def __call__(self, scope, receive, send):
                await self.application(scope, receive, send)

        from lifespan_signals.channels import ProtocolTypeRouter

        handler = get_asgi_application()
        wrapped = (LifespanWrapper(Static(handler)), ProtocolTypeRouter({"http": handler}))
        for app in (handler, *wrapped):
            with self.subTest(app=app):
                lifespan = Lifespan(app, {})
                self.assertEqual((await lifespan.startup())["type"], "lifespan.startup.complete")
                await get(app, "/sync/")
                (kept,) = handler.request_threads._idle
                self.assertEqual((await lifespan.shutdown())["type"], "lifespan.shutdown.complete")
                await asyncio.to_thread(kept.thread.join, 5)
                self.assertFalse(kept.thread.is_alive())


# -- real servers -----------------------------------------------------------------------------

SERVERS = [
    catalogue.UVICORN.param(),
    catalogue.GUNICORN.param(),
    catalogue.HYPERCORN.param(),
    catalogue.GRANIAN.param(),
    catalogue.RUNASGI.param(),
]
KEPT = 4
CONCURRENT = 64
TIMEOUT = 30.0


@needs_request_threads
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")
@pytest.mark.parametrize("server", SERVERS)
def test_servers_serve_64_at_once_one_request_per_thread(serve, server, events):
    """threadapp's contract (one request's sync code in one thread, which no other request
    holds meanwhile), on the one-hop path, under each server; kept threads stop at shutdown."""
    env = {"LIFESPAN_TEST_REQUEST_THREADS": str(KEPT)}
    proc = serve(server, settings="tests.projects.onehopapp.settings", app=THREAD_APP, env=env)
    proc.wait_ready("/health/", TIMEOUT)
    base = proc.base
    seen: dict[int, set[str]] = defaultdict(set)
    violations: set[str] = set()
    with ThreadPoolExecutor(CONCURRENT) as pool:
        for _ in range(3):
            for answer in pool.map(
                lambda url: get_json(url, timeout=TIMEOUT), [f"{base}/?sleep=0.05"] * CONCURRENT
            ):
                seen[answer["pid"]].add(answer["thread"])
                violations.update(answer["violations"])
        modes = list(pool.map(lambda url: get_json(url, TIMEOUT), [f"{base}/sync/"] * 8))
    assert all(answer["one_hop"] for answer in modes), modes
    assert not violations, violations
    assert len(seen) == server.processes, seen
    returncode = proc.stop(timeout=TIMEOUT)
    output = proc.output()
    assert returncode == server.stopped_exit, output
    catalogue.assert_clean(output, "Traceback", "ResourceWarning")
    exits = [event for event in read_events(events) if event["event"] == "exit"]
    assert [event["alive"] for event in exits] == [[]] * server.processes, (exits, output)


# -- PostgreSQL -------------------------------------------------------------------------------

DATABASE_APP = "tests.projects.onehopapp.asgi:application"


def _serve_db(serve, socket_dir, path, clients, requests, **env):
    env = {"LIFESPAN_TEST_DATABASE": socket_dir, "LIFESPAN_TEST_REQUEST_THREADS": str(KEPT), **env}
    proc = serve(
        catalogue.UVICORN, settings="tests.projects.onehopapp.settings", app=DATABASE_APP, env=env
    )
    proc.wait_ready("/health/", TIMEOUT)
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(lambda _: get_json(proc.url(path), TIMEOUT), range(requests)))
    stats = get_json(proc.url("/pool-stats/"), TIMEOUT) if "POOL" in str(env) else None
    assert proc.stop(timeout=TIMEOUT) == catalogue.UVICORN.stopped_exit, proc.output()
    catalogue.assert_clean(proc.output(), "Traceback", "ResourceWarning")
    return [answer["backend"] for answer in answers], stats


@needs_request_threads
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")
def test_conn_max_age_one_connection_per_kept_thread_closed_at_shutdown(serve, events):
    from tests.harness.postgres import cluster

    with cluster() as (socket_dir, log):
        # Two clients at once: each may hold two threads for a moment (its previous request
        # still closing), so at most KEPT threads are in use.
        backends, _ = _serve_db(serve, socket_dir, "/db/", KEPT // 2, 100)
        opened = len(re.findall(r"connection authorized: user=postgres", log.read_text()))
    assert len(set(backends)) <= KEPT, sorted(set(backends))
    assert opened <= KEPT + 1  # the kept threads' connections, and the recorder's own
    (left,) = [event["left"] for event in read_events(events) if event["event"] == "backends"]
    assert left == 0  # closed by lifespan shutdown, before the process ended


@needs_request_threads
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")
def test_the_psycopg_pool_gets_each_connection_back_after_each_request(serve, events):
    from tests.harness.postgres import cluster

    with cluster() as (socket_dir, _):
        # 8 requests at once, a pool of 2: a connection kept by a request thread after its
        # request would make the third wait for the pool's timeout.
        backends, stats = _serve_db(serve, socket_dir, "/pool/", 8, 64, LIFESPAN_TEST_DB_POOL="1")
    assert len(set(backends)) <= 2, sorted(set(backends))
    assert stats["pool_available"] == stats["pool_size"], stats  # all back in the pool
    assert stats["requests_waiting"] == 0, stats


# -- request threads without the one-hop path ----------------------------------------------------


@needs_request_threads
@override_settings(
    # No sync-only middleware: above an async view, Django's own chain reaches the view through
    # async_to_sync, whose executor refuses the task's later calls (with or without our threads).
    **{**ONE_HOP, "LIFESPAN_SIGNALS_ONE_HOP": False, "MIDDLEWARE": MIDDLEWARE[:1]},
)
class RequestThreadsTests(SimpleTestCase):
    async def test_a_task_started_by_a_view_may_call_sync_to_async_after_the_response(self):
        views.tasks.clear()
        app = get_asgi_application()
        status, _, _ = await get(app, "/task/")
        self.assertEqual(status, 200)
        (task,) = views.tasks
        task.go.set()
        thread = await asyncio.wait_for(task, 5)  # "ThreadSensitiveContext has exited" before
        self.assertTrue(thread.startswith("lifespan-signals-after"), thread)
        status, _, body = await get(app, "/sleep/")  # the kept request thread serves on
        self.assertEqual(status, 200)
        self.assertTrue(json.loads(body)["thread"].startswith(PREFIX))
        app.request_threads.close()


# -- the parts ----------------------------------------------------------------------------------


def test_async_code_adapted_for_a_thread_that_serves_no_request_runs_as_async_to_sync():
    async def where():
        return threading.current_thread().name

    adapted = _one_hop._to_sync(where)
    assert adapted.__wrapped__ is where
    middleware = views.AsyncOnlyMiddleware(lambda request: None)
    assert _one_hop._to_sync(middleware.__call__).__self__ is middleware  # Django's messages
    result = []
    worker = threading.Thread(target=lambda: result.append(adapted()), name="plain")
    worker.start()
    worker.join(5)
    assert result
    assert result[0] != "plain"  # asgiref's own loop thread, as Django's chain does


def test_calls_after_the_wait_go_to_one_thread_of_their_own_and_cancelled_ones_are_skipped():
    waiting = _one_hop._Waiting()
    done = Future()
    skipped = waiting.submit(print, "never")
    assert skipped.cancel()
    ran = waiting.submit(threading.current_thread)
    done.set_result(None)
    waiting.run_until(done)
    assert ran.result(0) is threading.current_thread()
    later = [waiting.submit(threading.current_thread).result(5) for _ in range(2)]
    assert later[0] is later[1] is not threading.current_thread()
    assert later[0].name.startswith("lifespan-signals-after")


def test_a_coroutine_scheduled_after_the_client_left_is_not_run():
    async def main():
        request = _one_hop._Request(asyncio.get_running_loop(), None, None)
        request.disconnected = True
        ran = []

        async def view():
            ran.append(True)

        done = Future()
        await _one_hop._settle(view(), done, request)
        return ran, done

    ran, done = asyncio.run(main())
    assert ran == []
    with pytest.raises(asyncio.CancelledError):
        done.result(0)


@override_settings(MIDDLEWARE=[])
def test_debug_notes_each_async_handler_adapted_as_django_does():
    from unittest import mock

    from django.core.handlers import base

    async def handler(request):
        return None

    chain = _one_hop.SyncChain()
    with mock.patch.object(base.logger, "debug") as debug:
        adapted = chain.adapt_method_mode(False, handler, None, debug=True, name="middleware x")
    debug.assert_called_once_with("Asynchronous handler adapted for %s.", "middleware x")
    assert adapted.__wrapped__ is handler
