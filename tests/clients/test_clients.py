"""Declared clients in-process: opened before receivers, closed after, reached by alias."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import logging
import threading
import time

import aiohttp
import httpx
from asgiref.sync import async_to_sync
from django.test import SimpleTestCase, override_settings

from lifespan_signals.asgi import get_asgi_application
from lifespan_signals.clients import UnknownClient, clients
from lifespan_signals.signals import asgi_shutdown, asgi_startup
from lifespan_signals.state import LifespanNotStarted
from lifespan_signals.testing import LifespanFailed, in_lifespan, lifespan
from tests.clients.backends import EVENTS
from tests.harness.in_process import Lifespan, connected, registered

HTTPX = {"BACKEND": "httpx.AsyncClient"}
AIOHTTP = {"BACKEND": "aiohttp.ClientSession"}


def recorder(name, **options):
    return {"BACKEND": "tests.clients.backends.Recorder", "OPTIONS": {"name": name, **options}}


def declare(**entries):
    return override_settings(LIFESPAN_SIGNALS_CLIENTS=entries)


class ClientsTestCase(SimpleTestCase):
    def setUp(self):
        EVENTS.clear()


class LifecycleTests(ClientsTestCase):
    @declare(a=recorder("a"), b=recorder("b"))
    async def test_open_before_resources_and_receivers_closed_after_in_reverse(self):
        async def resource(state):
            EVENTS.append(f"enter resource, clients {sorted(clients)}")
            yield
            EVENTS.append("exit resource")

        async def startup(**kwargs):
            EVENTS.append(f"startup receiver uses {clients['a'].name}")

        async def shutdown(**kwargs):
            EVENTS.append(f"shutdown receiver, a closed: {clients['a'].closed}")

        with (
            registered(resource),
            connected(asgi_startup, startup),
            connected(asgi_shutdown, shutdown),
        ):
            async with lifespan():
                EVENTS.append("serving")
        self.assertEqual(
            EVENTS,
            [
                "open a",
                "open b",
                "enter resource, clients ['a', 'b']",
                "startup receiver uses a",
                "serving",
                "shutdown receiver, a closed: False",
                "exit resource",
                "close b",
                "close a",
            ],
        )

    @declare(default=HTTPX)
    async def test_one_client_for_the_whole_lifespan_then_lookups_say_none_runs(self):
        async with lifespan():
            client = clients["default"]
            self.assertIsInstance(client, httpx.AsyncClient)
            self.assertIs(clients["default"], client)
            self.assertIs(clients.get("default", httpx.AsyncClient), client)
            self.assertFalse(client.is_closed)
        self.assertTrue(client.is_closed)
        with self.assertRaisesMessage(LifespanNotStarted, "clients['default']: no ASGI lifespan"):
            clients["default"]

    @declare(default=HTTPX, github=AIOHTTP)
    async def test_unknown_alias_names_the_declared_ones(self):
        async with lifespan():
            with self.assertRaises(UnknownClient) as caught:
                clients["gihtub"]
        self.assertIsInstance(caught.exception, KeyError)
        self.assertEqual(
            str(caught.exception),
            "No client 'gihtub' in LIFESPAN_SIGNALS_CLIENTS (declared: ['default', 'github']). "
            "Declare it: LIFESPAN_SIGNALS_CLIENTS = "
            '{\'gihtub\': {"BACKEND": "httpx.AsyncClient"}}.',
        )

    @declare(default=HTTPX)
    async def test_get_checks_the_type(self):
        async with lifespan():
            with self.assertRaisesMessage(
                TypeError, "not an instance of aiohttp.client.ClientSession"
            ):
                clients.get("default", aiohttp.ClientSession)

    async def test_a_client_declared_after_startup_is_not_open(self):
        async with lifespan():
            with (
                declare(late=recorder("late")),
                self.assertRaisesMessage(LifespanNotStarted, "declared but not open"),
            ):
                clients["late"]

    @declare(a=recorder("a"))
    async def test_nested_lifespans_each_see_their_own(self):
        async with lifespan():
            outer = clients["a"]
            async with lifespan():
                inner = clients["a"]
                self.assertIsNot(inner, outer)
            self.assertTrue(inner.closed)
            self.assertIs(clients["a"], outer)
        self.assertTrue(outer.closed)

    @declare(a=recorder("a"), b=recorder("b"))
    async def test_each_open_and_close_is_a_debug_step_record(self):
        with self.assertLogs("lifespan_signals.lifespan.steps", logging.DEBUG) as logs:
            async with lifespan():
                pass
        steps = [record.lifespan_step for record in logs.records]
        self.assertEqual(
            [(s["phase"], s["kind"], s["name"], s["ok"]) for s in steps],
            [
                ("startup", "client", "a", True),
                ("startup", "client", "b", True),
                ("shutdown", "client", "b", True),
                ("shutdown", "client", "a", True),
            ],
        )
        self.assertTrue(all(s["seconds"] >= 0 for s in steps))
        self.assertRegex(
            logs.output[0], r"^DEBUG:lifespan_signals.lifespan.steps:startup client a: \d+\.\d ms$"
        )


class BackendTests(ClientsTestCase):
    @declare(
        default={
            "BACKEND": "httpx.AsyncClient",
            "OPTIONS": {
                "base_url": "http://upstream.test",
                "timeout": 10,
                "limits": {"max_connections": 7, "keepalive_expiry": 60},
                "headers": {"User-Agent": "shop/1.0"},
            },
        },
        github={
            "BACKEND": "aiohttp.ClientSession",
            "OPTIONS": {"base_url": "http://github.test", "timeout": 5, "connector": {"limit": 9}},
        },
    )
    async def test_httpx_and_aiohttp_options_become_what_the_libraries_want(self):
        async with lifespan():
            client = clients.get("default", httpx.AsyncClient)
            session = clients.get("github", aiohttp.ClientSession)
            self.assertEqual(client.timeout, httpx.Timeout(10))
            self.assertEqual(client.base_url, "http://upstream.test")
            self.assertEqual(client.headers["User-Agent"], "shop/1.0")
            pool = client._transport._pool
            self.assertEqual((pool._max_connections, pool._keepalive_expiry), (7, 60.0))
            self.assertEqual(session.timeout, aiohttp.ClientTimeout(total=5))
            self.assertEqual(session.connector.limit, 9)
            self.assertIs(session.connector._loop, asyncio.get_running_loop())
        self.assertTrue(client.is_closed)
        self.assertTrue(session.closed)
        self.assertTrue(session.connector is None or session.connector.closed)

    @declare(
        none={"BACKEND": "httpx.AsyncClient", "OPTIONS": {"timeout": None}},
        parts={
            "BACKEND": "httpx.AsyncClient",
            "OPTIONS": {"timeout": {"timeout": 5, "connect": 2}},
        },
        aiohttp={"BACKEND": "aiohttp.ClientSession", "OPTIONS": {"timeout": {"sock_read": 3}}},
    )
    async def test_timeouts_none_or_in_parts(self):
        async with lifespan():
            self.assertEqual(clients["none"].timeout, httpx.Timeout(None))
            self.assertEqual(clients["parts"].timeout, httpx.Timeout(5, connect=2))
            self.assertEqual(clients["aiohttp"].timeout, aiohttp.ClientTimeout(sock_read=3))
            self.assertIn("parts", clients)
            self.assertNotIn("other", clients)
            self.assertEqual((sorted(clients), len(clients)), (["aiohttp", "none", "parts"], 3))
            self.assertEqual(repr(clients), "<Clients ['aiohttp', 'none', 'parts']>")
        self.assertEqual(repr(clients), "<Clients []>")

    @declare(
        managed={"BACKEND": "tests.clients.backends.managed"},
        coroutine={"BACKEND": "tests.clients.backends.made_by_coroutine"},
        sync={"BACKEND": "tests.clients.backends.SyncClosing"},
    )
    async def test_any_factory_returning_a_context_manager_or_closable(self):
        async with lifespan():
            self.assertEqual(clients["managed"], {"client": "managed"})
            self.assertEqual(clients["coroutine"].name, "coroutine")
            sync = clients["sync"]
        self.assertTrue(sync.closed)
        self.assertEqual(
            sorted(EVENTS),
            ["close coroutine", "close sync", "enter managed", "exit managed", "open coroutine"],
        )

    @declare(
        default={
            "BACKEND": "httpx.AsyncClient",
            "OPTIONS": {
                "base_url": "http://upstream.test",
                "transport": httpx.MockTransport(lambda request: httpx.Response(200, text="hi")),
            },
        }
    )
    def test_sync_code_reaches_the_client_through_async_to_sync(self):
        @in_lifespan()
        def sync_view():
            return async_to_sync(clients["default"].get)("/items").text

        self.assertEqual(sync_view(), "hi")


@contextlib.contextmanager
def json_server(payload):
    """A loopback HTTP/1.1 server in a thread that answers every GET with ``payload``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class SyncViewTests(ClientsTestCase):
    def test_a_sync_view_reaches_an_aiohttp_session_through_a_helper_coroutine(self):
        # As the clients how-to shows it: `async with` needs a coroutine of its own.
        async def fetch_repo(name):
            async with clients["github"].get(f"/repos/{name}") as response:
                return await response.json()

        @in_lifespan()
        def sync_view():
            return async_to_sync(fetch_repo)("django/django")

        with (
            json_server({"full_name": "django/django"}) as url,
            declare(github={**AIOHTTP, "OPTIONS": {"base_url": url}}),
        ):
            self.assertEqual(sync_view(), {"full_name": "django/django"})


class FailureTests(ClientsTestCase):
    def assert_startup_fails(self, *expected):
        async def run():
            async with lifespan():
                self.fail("startup should fail")

        with self.assertRaises(LifespanFailed) as caught:
            async_to_sync(run)()
        for text in expected:
            self.assertIn(text, caught.exception.message)
        return caught.exception.message

    def test_a_failing_client_fails_startup_naming_it_and_closes_the_open_ones(self):
        entries = {"a": recorder("a"), "bad": {"BACKEND": "tests.clients.backends.failing"}}
        startup_ran = []
        with declare(**entries), connected(asgi_startup, lambda **kw: startup_ran.append(1)):
            self.assert_startup_fails(
                "Lifespan startup failed (1 failure)",
                "LIFESPAN_SIGNALS_CLIENTS['bad'] (tests.clients.backends.failing) raised "
                "RuntimeError: upstream unreachable",
            )
            with self.assertRaises(LifespanNotStarted):
                clients["a"]
        self.assertEqual(EVENTS, ["open a", "fail RuntimeError", "close a"])
        self.assertEqual(startup_ran, [])

    def test_any_base_exception_from_a_backend_is_its_failure(self):
        for name in ("SystemExit", "KeyboardInterrupt", "CancelledError"):
            with self.subTest(name), declare(a=recorder("a"), bad={
                "BACKEND": "tests.clients.backends.failing", "OPTIONS": {"exception": name}
            }):  # fmt: skip
                EVENTS.clear()
                self.assert_startup_fails(
                    "LIFESPAN_SIGNALS_CLIENTS['bad'] (tests.clients.backends.failing) raised"
                )
                self.assertEqual(EVENTS, ["open a", f"fail {name}", "close a"])

    @override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT=0.5)
    def test_a_client_still_opening_when_time_is_up_fails_startup(self):
        with declare(a=recorder("a"), slow={"BACKEND": "tests.clients.backends.hanging"}):
            self.assert_startup_fails(
                "LIFESPAN_SIGNALS_CLIENTS['slow'] (tests.clients.backends.hanging) timed out: "
                "still opening after 0.5 s (LIFESPAN_SIGNALS_STARTUP_TIMEOUT)"
            )
        self.assertEqual(EVENTS, ["open a", "hanging", "close a"])

    def test_a_context_manager_that_cannot_be_entered_is_closed(self):
        with declare(db={"BACKEND": "tests.clients.backends.FailingEnter"}):
            self.assert_startup_fails(
                "LIFESPAN_SIGNALS_CLIENTS['db'] (tests.clients.backends.FailingEnter) raised "
                "ConnectionRefusedError: no server"
            )
        self.assertEqual(EVENTS, ["enter fails", "closed unentered"])

    @override_settings(LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT=-1)
    def test_a_bad_shutdown_timeout_still_closes_what_opened(self):
        # Lifespan startup refuses the setting before opening clients; called directly (the
        # setting changed during startup), the open ones still close, in the default time.
        from lifespan_signals.lifespan.budget import Budget
        from lifespan_signals.lifespan.clients import OpenClients
        from lifespan_signals.lifespan.steps import Runner

        entries = {"a": recorder("a"), "bad": {"BACKEND": "tests.clients.backends.failing"}}
        with declare(**entries):
            runner = Runner("startup", Budget("X", 5), [])
            failures = async_to_sync(OpenClients().open)(runner)
        self.assertEqual([failure.name for failure in failures], [
            "LIFESPAN_SIGNALS_CLIENTS['bad'] (tests.clients.backends.failing)"
        ])  # fmt: skip
        self.assertEqual(EVENTS, ["open a", "fail RuntimeError", "close a"])

    def test_a_result_that_cannot_be_closed_fails_startup(self):
        with declare(odd={"BACKEND": "tests.clients.backends.not_closable"}):
            self.assert_startup_fails(
                "is not an async context manager and has no aclose() or close()"
            )

    def test_a_bad_setting_fails_startup(self):
        # Refused as manage.py check refuses it: "<check id>: <message> HINT: <hint>".
        for value, text in [
            (["httpx.AsyncClient"], "E010: LIFESPAN_SIGNALS_CLIENTS should be a dict of aliases"),
            ({"a": {"BACKEND": "httpx.AsyncClientt"}}, "E012: LIFESPAN_SIGNALS_CLIENTS['a']"),
            (
                {"a": {**HTTPX, "OPTIONS": {"base_ur": "x"}}},
                "which does not accept 'base_ur'. HINT: Did you mean 'base_url'?",
            ),
            ({"a": {**HTTPX, "OPTIONS": {"timeout": -1}}}, "E015: LIFESPAN_SIGNALS_CLIENTS['a']"),
        ]:
            with self.subTest(value), override_settings(LIFESPAN_SIGNALS_CLIENTS=value):
                message = self.assert_startup_fails(
                    "lifespan_signals." + text if "E01" in text else text
                )
                self.assertNotIn("Traceback", message)

    def test_every_client_is_closed_even_when_one_fails_to_close(self):
        async def run():
            async with lifespan():
                pass

        with (
            declare(a=recorder("a"), b=recorder("b", fail_close=True), c=recorder("c")),
            self.assertRaises(LifespanFailed) as caught,
        ):
            async_to_sync(run)()
        self.assertIn(
            "LIFESPAN_SIGNALS_CLIENTS['b'] (tests.clients.backends.Recorder) raised RuntimeError: "
            "b cannot close",
            caught.exception.message,
        )
        self.assertEqual(EVENTS[3:], ["close c", "close b", "close a"])

    @override_settings(LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT=0.5)
    def test_a_client_still_closing_when_time_is_up_fails_shutdown_the_others_close(self):
        async def run():
            async with lifespan():
                pass

        entries = {"a": recorder("a"), "hang": {"BACKEND": "tests.clients.backends.HangingClose"}}
        with declare(**entries), self.assertRaises(LifespanFailed) as caught:
            async_to_sync(run)()
        self.assertIn(
            "LIFESPAN_SIGNALS_CLIENTS['hang'] (tests.clients.backends.HangingClose) timed out: "
            "still closing after 0.5 s (LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT)",
            caught.exception.message,
        )
        # Closes run concurrently: the client after it is closed all the same, and only the
        # culprit is named.
        self.assertNotIn("LIFESPAN_SIGNALS_CLIENTS['a']", caught.exception.message)
        self.assertIn("(1 failure)", caught.exception.message)
        self.assertEqual(EVENTS, ["open a", "closing for ever", "close a", "close cancelled"])

    def test_a_connector_made_from_options_is_closed_when_the_session_cannot_be_made(self):
        options = {"connector": {"limit": 5}, "headers": 5}  # fails after taking the connector
        with declare(github={"BACKEND": "aiohttp.ClientSession", "OPTIONS": options}):
            self.assert_startup_fails("LIFESPAN_SIGNALS_CLIENTS['github'] (aiohttp.ClientSession)")

    @declare(a=recorder("a"), slow={"BACKEND": "tests.clients.backends.hanging"})
    async def test_cancelled_while_opening_closes_what_opened(self):
        app = get_asgi_application()
        driver = Lifespan(app, {})
        await driver.communicator.send_input({"type": "lifespan.startup"})

        def opened():
            return "hanging" in EVENTS and "open a" in EVENTS

        deadline = time.monotonic() + 10
        while not opened():
            self.assertLess(time.monotonic(), deadline, EVENTS)
            await asyncio.sleep(0.01)
        driver.communicator.future.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await driver.communicator.future
        self.assertEqual(EVENTS, ["open a", "hanging", "close a"])
