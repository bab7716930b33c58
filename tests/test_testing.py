"""lifespan_signals.testing and the pytest plugin: the lifespan in tests, clients with its state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
import traceback
import unittest
from pathlib import Path
from unittest import mock

import aiohttp
import httpx
import pytest
from asgiref.sync import async_to_sync
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth.models import User
from django.core.handlers.asgi import ASGIHandler
from django.test import SimpleTestCase, TestCase, override_settings

from lifespan_signals import get_state, testing
from lifespan_signals.asgi import get_asgi_application
from lifespan_signals.channels import ProtocolTypeRouter
from lifespan_signals.signals import asgi_shutdown, asgi_startup
from lifespan_signals.state import LifespanNotStarted
from lifespan_signals.testing import (
    AsyncClient,
    LifespanFailed,
    LifespanTestMixin,
    in_lifespan,
    lifespan,
)
from tests.harness.in_process import connected, enter, open_client, without_db_connection_cleanup

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


async def boom(sender, **kwargs):
    raise RuntimeError("boom")


async def running_loop():
    return asyncio.get_running_loop()


async def raw_app(scope, receive, send):
    """An application with a lifespan of its own, not lifespan_signals'."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["raw"] = True
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


class Clients:
    """Startup opens a real aiohttp session and httpx client; shutdown closes them."""

    def __init__(self):
        self.opened = {}
        self.loop = None

    async def open(self, sender, *, state, **kwargs):
        self.loop = asyncio.get_running_loop()
        state["aiohttp"] = self.opened["aiohttp"] = aiohttp.ClientSession()
        state["httpx"] = self.opened["httpx"] = httpx.AsyncClient()

    async def close(self, sender, *, state, **kwargs):
        await state["aiohttp"].close()
        await state["httpx"].aclose()

    @contextlib.contextmanager
    def connected(self):
        with connected(asgi_startup, self.open), connected(asgi_shutdown, self.close):
            yield self

    def assert_closed(self):
        assert self.opened["aiohttp"].closed
        assert self.opened["httpx"].is_closed


class LifespanTests(SimpleTestCase):
    async def test_startup_on_enter_shutdown_on_exit_state_in_between(self):
        calls = []

        async def up(sender, *, state, **kwargs):
            calls.append("up")
            state["client"] = 1

        async def down(sender, **kwargs):
            calls.append("down")

        with connected(asgi_startup, up), connected(asgi_shutdown, down):
            async with lifespan() as state:
                self.assertEqual((calls, state), (["up"], {"client": 1}))
                self.assertIs(get_state(), state)
        self.assertEqual(calls, ["up", "down"])
        with self.assertRaises(LifespanNotStarted):
            get_state()

    async def test_startup_failure_raises_naming_the_receiver_and_skips_the_block(self):
        closed = []

        async def close(sender, *, state, **kwargs):
            closed.append(sorted(state))

        with (
            connected(asgi_startup, boom, open_client),
            connected(asgi_shutdown, close),
            self.assertLogs("lifespan_signals", "ERROR"),
            self.assertRaises(LifespanFailed) as caught,
        ):
            async with lifespan():
                self.fail("the block ran")
        message = str(caught.exception)
        self.assertIn("Lifespan startup failed (1 failure):", message)
        self.assertIn("tests.test_testing.boom raised RuntimeError: boom", message)
        self.assertEqual(closed, [["client"]])  # what the healthy receiver opened was closed

    async def test_shutdown_runs_when_the_block_raises(self):
        closed = []

        async def close(sender, **kwargs):
            closed.append(True)

        with connected(asgi_shutdown, close), self.assertRaisesMessage(ValueError, "in the test"):
            async with lifespan():
                raise ValueError("in the test")
        self.assertEqual(closed, [True])
        with self.assertRaises(LifespanNotStarted):
            get_state()

    async def test_shutdown_failure_raises_on_exit(self):
        with (
            connected(asgi_shutdown, boom),
            self.assertLogs("lifespan_signals", "ERROR"),
            self.assertRaisesMessage(LifespanFailed, "tests.test_testing.boom raised RuntimeError"),
        ):
            async with lifespan():
                pass

    async def test_the_failure_is_named_where_users_import_it(self):
        with (
            connected(asgi_startup, boom),
            self.assertLogs("lifespan_signals", "ERROR"),
            self.assertRaises(LifespanFailed) as raised,
        ):
            async with lifespan():
                pass
        [last] = traceback.format_exception_only(raised.exception)
        self.assertTrue(last.startswith("lifespan_signals.LifespanFailed: "), last)
        import lifespan_signals

        self.assertIs(lifespan_signals.LifespanFailed, LifespanFailed)

    async def test_the_blocks_error_wins_over_a_shutdown_failure(self):
        with (
            connected(asgi_shutdown, boom),
            self.assertLogs("lifespan_signals", "ERROR"),
            self.assertRaises(ValueError) as caught,
        ):
            async with lifespan():
                raise ValueError("in the test")
        if sys.version_info >= (3, 11):
            [note] = caught.exception.__notes__
            self.assertIn("Lifespan shutdown failed too: Lifespan shutdown failed", note)
            self.assertIn("tests.test_testing.boom raised RuntimeError", note)

    async def test_given_state_is_the_one_used(self):
        mine = {"given": 1}
        with connected(asgi_startup, open_client):
            async with lifespan(state=mine) as state:
                self.assertEqual(state, mine)
                state["late"] = 2  # reaches the server's dict, which requests copy
                self.assertIs(get_state(), state)
        self.assertEqual(sorted(mine), ["client", "given", "late"])

    @override_settings(ASGI_APPLICATION="tests.test_testing.raw_app")
    async def test_default_is_the_project_application_and_get_state_works_for_any(self):
        async with lifespan() as state:
            self.assertEqual(state, {"raw": True})
            self.assertIs(get_state(), state)
        with self.assertRaises(LifespanNotStarted):
            get_state()

    async def test_application_without_lifespan_support_is_a_clear_failure(self):
        with self.assertRaises(LifespanFailed) as caught:
            async with lifespan(ASGIHandler()):
                self.fail("the block ran")
        self.assertIn(
            "it raised ValueError: Django can only handle ASGI/HTTP", str(caught.exception)
        )
        self.assertIn("lifespan_signals.asgi.LifespanWrapper", str(caught.exception))

    async def test_real_clients_are_used_on_this_loop_and_closed(self):
        with Clients().connected() as clients:
            async with lifespan() as state:
                self.assertIs(clients.loop, asyncio.get_running_loop())
                self.assertFalse(state["aiohttp"].closed)
        clients.assert_closed()

    async def test_in_lifespan_decorates_async_functions(self):
        @in_lifespan()
        async def body(value):
            return get_state(), value

        with connected(asgi_startup, open_client):
            state, value = await body(1)
        self.assertEqual((sorted(state), value), (["client"], 1))

    def test_in_lifespan_runs_a_sync_function_with_the_lifespan_on_one_loop(self):
        with Clients().connected() as clients:

            @in_lifespan()
            def body():
                self.assertIn("aiohttp", get_state())
                return async_to_sync(running_loop)()  # on the lifespan's loop

            self.assertIs(body(), clients.loop)
        clients.assert_closed()


class TimeoutTests(SimpleTestCase):
    async def test_hanging_startup_receiver_fails_naming_it(self):
        async def hangs(sender, **kwargs):
            await asyncio.sleep(60)

        started = time.perf_counter()
        with (
            connected(asgi_startup, hangs),
            self.assertLogs("lifespan_signals", "ERROR"),
            self.assertRaises(LifespanFailed) as caught,
        ):
            async with lifespan(startup_timeout=0.2):
                self.fail("the block ran")
        self.assertLess(time.perf_counter() - started, 3)
        self.assertIn(
            ".<locals>.hangs timed out: still running after 0.2 s "
            "(LIFESPAN_SIGNALS_STARTUP_TIMEOUT)",
            caught.exception.message,
        )

    @override_settings(LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT=0.2)
    async def test_settings_are_the_default_timeouts(self):
        async def hangs(sender, **kwargs):
            await asyncio.sleep(60)

        with (
            connected(asgi_shutdown, hangs),
            self.assertLogs("lifespan_signals", "ERROR"),
            self.assertRaisesMessage(LifespanFailed, "hangs timed out: still running after 0.2 s"),
        ):
            async with lifespan(get_asgi_application()):
                pass

    @override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT=None)
    async def test_no_limit_in_settings_still_has_one_in_tests(self):
        seen = []

        async def peek(sender, **kwargs):
            from django.conf import settings

            seen.append(settings.LIFESPAN_SIGNALS_STARTUP_TIMEOUT)

        with connected(asgi_startup, peek):
            async with lifespan(get_asgi_application()):
                pass
        self.assertEqual(seen, [30.0])

    async def test_an_application_that_never_replies_fails_after_its_timeout_plus_1_s(self):
        async def silent(scope, receive, send):
            await receive()
            await asyncio.sleep(60)

        started = time.monotonic()
        with self.assertRaisesMessage(
            LifespanFailed, "Lifespan startup did not finish within 1.2 s"
        ):
            async with lifespan(silent, startup_timeout=0.2):  # shutdown: 10 s by default
                self.fail("the block ran")
        self.assertLess(time.monotonic() - started, 5.0)  # was 0.2 + 10 + 5 s

    async def test_a_timeout_given_must_be_positive(self):
        for bad in (0, -1, float("nan"), float("inf"), "1"):
            with (
                self.subTest(bad=bad),
                self.assertRaisesMessage(
                    ValueError,
                    f"lifespan(): startup_timeout should be a positive number of seconds or "
                    f"None, not {bad!r}.",
                ),
            ):
                async with lifespan(get_asgi_application(), startup_timeout=bad):
                    self.fail("the block ran")


class AsyncClientTests(SimpleTestCase):
    async def test_requests_carry_a_copy_of_the_running_lifespans_state(self):
        with connected(asgi_startup, open_client):
            async with lifespan() as state:
                client = AsyncClient()
                first = (await client.get("/state/", {"n": "1"})).json()
                second = (await client.get("/state/", {"n": "2"})).json()
        self.assertEqual(first["keys"], ["client", "request-1"])
        self.assertEqual(second["keys"], ["client", "request-2"])  # no leak between requests
        self.assertEqual(first["client"], id(state["client"]))
        self.assertEqual(sorted(state), ["client"])

    async def test_explicit_state_needs_no_lifespan(self):
        response = await AsyncClient(state={"client": 1}).get("/sync-state/")
        self.assertEqual(json.loads(response.content), {"keys": ["client"]})

    async def test_without_a_lifespan_requests_carry_no_state(self):
        response = await AsyncClient().get("/sync-state/", headers={"x-test": "1"})
        self.assertEqual(json.loads(response.content), {"keys": []})
        self.assertEqual(response.asgi_request.headers["x-test"], "1")
        self.assertNotIn("state", response.asgi_request.scope)


class StateConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.accept()
        self.scope["state"]["connection"] = True  # this connection's copy only
        await self.send_json({"keys": sorted(self.scope["state"])})


class StateHttpConsumer(AsyncHttpConsumer):
    async def handle(self, body):
        await self.send_response(200, json.dumps(sorted(self.scope["state"])).encode())


def channels_app():
    return ProtocolTypeRouter(
        {"http": StateHttpConsumer.as_asgi(), "websocket": StateConsumer.as_asgi()}
    )


class CommunicatorTests(SimpleTestCase):
    def setUp(self):
        enter(self, without_db_connection_cleanup())

    async def test_websocket_consumers_get_a_copy_of_the_state(self):
        from lifespan_signals.testing import WebsocketCommunicator

        app = channels_app()
        with connected(asgi_startup, open_client):
            async with lifespan(app) as state:
                for _ in range(2):
                    communicator = WebsocketCommunicator(app, "/ws/")
                    self.assertEqual(await communicator.connect(), (True, None))
                    message = await communicator.receive_json_from()
                    self.assertEqual(message, {"keys": ["client", "connection"]})
                    await communicator.disconnect()
                self.assertEqual(sorted(state), ["client"])

    async def test_http_consumers_get_the_given_state(self):
        from lifespan_signals.testing import HttpCommunicator

        communicator = HttpCommunicator(channels_app(), "GET", "/", state={"given": 1})
        response = await communicator.get_response()
        self.assertEqual((response["status"], response["body"]), (200, b'["given"]'))

    def test_they_are_channels_communicators_made_on_first_use(self):
        from channels import testing as channels_testing

        from lifespan_signals.testing import HttpCommunicator, WebsocketCommunicator

        self.assertTrue(issubclass(HttpCommunicator, channels_testing.HttpCommunicator))
        self.assertTrue(issubclass(WebsocketCommunicator, channels_testing.WebsocketCommunicator))
        self.assertEqual(WebsocketCommunicator.__module__, "lifespan_signals.testing")
        self.assertNotIn("state", HttpCommunicator(channels_app(), "GET", "/").scope)  # none runs
        with self.assertRaisesMessage(AttributeError, "has no attribute 'Nope'"):
            testing.Nope  # noqa: B018

    def test_without_channels_the_error_says_what_to_install(self):
        with (
            mock.patch.dict(sys.modules, {"channels": None}),
            self.assertRaisesMessage(ImportError, "pip install 'lifespan-signals[channels]'"),
        ):
            testing._communicators()


class MixinTests(LifespanTestMixin, SimpleTestCase):
    def setUp(self):
        self.clients = Clients()
        enter(self, self.clients.connected())

    def tearDown(self):
        self.clients.assert_closed()  # the lifespan has shut down by now

    async def test_async_test_runs_in_the_lifespan_on_its_own_loop(self):
        self.assertIs(self.clients.loop, asyncio.get_running_loop())
        self.assertIs(self.lifespan_state["aiohttp"], self.clients.opened["aiohttp"])
        response = await self.async_client.get("/state/", {"n": "1"})
        self.assertEqual(response.json()["keys"], ["aiohttp", "httpx", "request-1"])
        self.assertNotIn("request-1", self.lifespan_state)

    def test_sync_test_runs_in_the_lifespan_too(self):
        self.assertFalse(self.lifespan_state["aiohttp"].closed)
        self.assertIs(async_to_sync(running_loop)(), self.clients.loop)


class MixinDatabaseTests(LifespanTestMixin, TestCase):
    @classmethod
    def setUpTestData(cls):
        User.objects.create(username="fixture")

    def setUp(self):
        self.counts = []

        def count_users(sender, **kwargs):  # sync: runs in the test's thread, on its connection
            self.counts.append(User.objects.count())

        enter(self, connected(asgi_startup, count_users))

    async def test_receivers_and_test_share_the_test_database(self):
        self.assertEqual(self.counts, [1])
        await User.objects.acreate(username="in-test")
        self.assertEqual(await User.objects.acount(), 2)


def run_case(case_class):
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(case_class).run(result)
    return result


class MixinOutcomeTests(SimpleTestCase):
    def test_startup_failure_is_the_tests_error_naming_the_receiver(self):
        ran = []

        class Case(LifespanTestMixin, SimpleTestCase):
            async def test_it(self):
                ran.append(True)

        with connected(asgi_startup, boom), self.assertLogs("lifespan_signals", "ERROR"):
            result = run_case(Case)
        [(_, traceback)] = result.errors
        self.assertIn("LifespanFailed: Lifespan startup failed", traceback)
        self.assertIn("tests.test_testing.boom raised RuntimeError: boom", traceback)
        self.assertEqual(ran, [])

    def test_shutdown_runs_when_the_test_fails(self):
        closed = []

        async def close(sender, **kwargs):
            closed.append(True)

        class Case(LifespanTestMixin, SimpleTestCase):
            async def test_it(self):
                self.fail("the test failed")

        with connected(asgi_shutdown, close):
            result = run_case(Case)
        [(_, traceback)] = result.failures
        self.assertIn("AssertionError: the test failed", traceback)
        self.assertEqual(closed, [True])

    def test_lifespan_app_may_be_a_plain_function(self):
        seen = []

        class Case(LifespanTestMixin, SimpleTestCase):
            lifespan_app = raw_app

            async def test_it(self):
                seen.append(dict(self.lifespan_state))

        result = run_case(Case)
        self.assertTrue(result.wasSuccessful(), result.errors)
        self.assertEqual(seen, [{"raw": True}])


@pytest.fixture
def clients():
    with Clients().connected() as clients:
        yield clients
    clients.assert_closed()  # the test, and its lifespan, are over


def test_fixture_runs_the_lifespan_around_a_sync_test(clients, lifespan_state):
    assert lifespan_state["aiohttp"] is clients.opened["aiohttp"]
    assert not clients.opened["aiohttp"].closed
    assert async_to_sync(running_loop)() is clients.loop
    expected = "<CurrentState {'aiohttp': <aiohttp.client.ClientSession"
    assert repr(lifespan_state).startswith(expected)


def test_live_state_is_a_mapping_over_get_state(lifespan_state):
    lifespan_state["x"] = 1
    assert (dict(lifespan_state), len(lifespan_state), get_state()) == ({"x": 1}, 1, {"x": 1})
    del lifespan_state["x"]
    assert get_state() == {}


def test_live_state_outside_a_lifespan():
    from lifespan_signals.pytest_plugin import CurrentState

    assert repr(CurrentState()) == "<CurrentState (no lifespan running)>"
    with pytest.raises(LifespanNotStarted):
        CurrentState()["x"]


PLUGIN_TESTS = """
import asyncio

import aiohttp
import pytest

from lifespan_signals.signals import asgi_shutdown, asgi_startup
from tests.harness.in_process import connected

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def open_session(sender, *, state, **kwargs):
    state["session"] = SESSIONS[-1] = aiohttp.ClientSession()
    state["loop"] = asyncio.get_running_loop()


async def close(sender, *, state, **kwargs):
    await state["session"].close()
    print("SHUTDOWN RAN")


async def boom(sender, **kwargs):
    raise RuntimeError("boom")


SESSIONS = [None]


@pytest.fixture
def receivers():
    with connected(asgi_startup, open_session), connected(asgi_shutdown, close):
        yield
    assert SESSIONS[-1].closed


async def test_client(receivers, lifespan_client, lifespan_state):
    assert lifespan_state["loop"] is asyncio.get_running_loop()
    response = await lifespan_client.get("/state/", {"n": "1"})
    assert response.json()["keys"] == ["loop", "request-1", "session"]
    assert "request-1" not in lifespan_state


async def test_body_fails(receivers, lifespan_state):
    assert False, "the body failed"


@pytest.fixture
def failing():
    with connected(asgi_startup, boom):
        yield


async def test_startup_fails(failing, lifespan_state):
    pass


class TestInAClass:
    async def test_method(self, receivers, lifespan_state):
        assert not lifespan_state["session"].closed
"""


@pytest.fixture
def run_pytest(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)

    def run(*args):
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error", *args)

    return run


def test_plugin_fixtures_with_an_async_plugin(pytester, run_pytest):
    pytester.makepyfile(test_plugin=PLUGIN_TESTS)
    result = run_pytest("--ds=tests.settings")
    result.assert_outcomes(passed=2, failed=2)
    output = result.stdout.str()
    assert "FAILED test_plugin.py::test_body_fails - AssertionError: the body failed" in output
    assert "SHUTDOWN RAN" in output  # in the failed test's captured output: shutdown ran
    assert "FAILED test_plugin.py::test_startup_fails - lifespan_signals" in output
    assert "test_plugin.boom raised RuntimeError: boom" in output


def test_plugin_refuses_unittest_test_cases(pytester, run_pytest):
    pytester.makepyfile(
        test_case="""
        import pytest
        from django.test import SimpleTestCase

        @pytest.mark.usefixtures("lifespan_state")
        class Tests(SimpleTestCase):
            def test_it(self):
                pass
        """
    )
    result = run_pytest("--ds=tests.settings")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*Use lifespan_signals.testing.LifespanTestMixin*"])


def test_plugin_is_registered_and_harmless_without_django(pytester, run_pytest):
    pytester.makepyfile(test_plain="def test_it():\n    pass\n")
    result = run_pytest("--fixtures")
    result.stdout.fnmatch_lines(["lifespan_state*", "lifespan_client*"])
    run_pytest().assert_outcomes(passed=1)


def test_modules_import_without_channels_and_the_plugin_without_django():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["channels"] = None
        import lifespan_signals.pytest_plugin
        assert "django" not in sys.modules, "the plugin imported Django"
        from django.conf import settings
        settings.configure()
        import lifespan_signals.testing as testing
        print(sorted(testing.__all__))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "'AsyncClient', 'LifespanFailed', 'LifespanTestMixin'" in done.stdout
