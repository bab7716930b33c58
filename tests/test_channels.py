"""Channels: lifespan through ``lifespan_signals.channels.ProtocolTypeRouter``.

In process with Channels' communicators (exact lifespan messages, state in consumers, through the
auth and session stacks), then the project in ``tests.projects.channelsapp`` under real servers,
with a real WebSocket client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import ProtocolTypeRouter as ChannelsProtocolTypeRouter
from channels.routing import URLRouter
from channels.sessions import SessionMiddlewareStack
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client, SimpleTestCase, TransactionTestCase, override_settings
from django.urls import path
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from lifespan_signals.asgi import LifespanWrapper, get_asgi_application
from lifespan_signals.channels import ProtocolTypeRouter
from lifespan_signals.checks import check_asgi_application
from lifespan_signals.signals import asgi_shutdown, asgi_startup
from lifespan_signals.state import NoLifespanState, StateKeyError
from tests.harness.catalogue import LEAKS, LIFESPAN_DAPHNE, RUNASGI, UVICORN, Server
from tests.harness.in_process import Lifespan, connected, enter, without_db_connection_cleanup
from tests.harness.servers import REPO_ROOT, ServerProcess, get_json, read_events

COMPLETE = {"type": "lifespan.startup.complete"}
SHUT = {"type": "lifespan.shutdown.complete"}


class StateConsumer(AsyncJsonWebsocketConsumer):
    """Keeps each connection's scope, for the tests to compare objects; sends the state's keys."""

    scopes: list[dict] = []

    async def connect(self):
        self.scopes.append(self.scope)
        await self.accept()
        await self.send_json({"keys": sorted(self.scope["state"])})
        self.scope["state"]["mine"] = True  # must not reach the next connection


def router(cls=ProtocolTypeRouter, stack=lambda app: app, **mapping):
    websocket = stack(URLRouter([path("ws/", StateConsumer.as_asgi())]))
    return cls({"http": get_asgi_application(), "websocket": websocket, **mapping})


def serve(app, state):
    """A server that supports state: each connection gets a shallow copy of it."""

    async def server(scope, receive, send):
        await app({**scope, "state": state.copy()}, receive, send)

    return server


opened = []  # the clients open_client created, newest last


async def open_client(*, state, **kwargs):
    state["client"] = SimpleNamespace(closed=False)
    opened.append(state["client"])


async def websocket_keys(app, headers=None):
    communicator = WebsocketCommunicator(app, "/ws/", headers=headers)
    accepted, _ = await communicator.connect()
    assert accepted
    message = await communicator.receive_json_from()
    await communicator.disconnect()
    return message["keys"]


async def http_client_id(app):
    """The id of ``state["client"]`` that the view in tests.urls sees in ``request.state``."""
    communicator = HttpCommunicator(app, "GET", "/state/")
    with override_settings(ROOT_URLCONF="tests.urls"):
        response = await communicator.get_response()
        await communicator.wait(5)  # let Django finish the request (it closes the body file)
    assert response["status"] == 200, response
    return json.loads(response["body"])["client"]


class ChannelsTestCase(SimpleTestCase):
    def setUp(self):
        StateConsumer.scopes = []
        opened.clear()
        enter(self, without_db_connection_cleanup())

    def assert_consumers_got(self, client):
        for scope in StateConsumer.scopes:
            self.assertIs(scope["state"]["client"], client)


class RouterLifespanTests(ChannelsTestCase):
    async def test_lifespan_messages_and_signals(self):
        calls = []

        async def on_startup(sender, *, scope, state, **kwargs):
            calls.append(("startup", sender, scope["type"], state))

        async def on_shutdown(sender, *, state, **kwargs):
            calls.append(("shutdown", sender, state))

        state = {}
        with connected(asgi_startup, on_startup), connected(asgi_shutdown, on_shutdown):
            lifespan = Lifespan(router(), state)
            self.assertEqual(await lifespan.startup(), COMPLETE)
            self.assertEqual(await lifespan.shutdown(), SHUT)
        self.assertEqual(
            calls,
            [
                ("startup", ProtocolTypeRouter, "lifespan", state),
                ("shutdown", ProtocolTypeRouter, state),
            ],
        )

    async def test_lifespan_runs_once_although_the_http_app_speaks_lifespan(self):
        senders = []

        async def on_startup(sender, **kwargs):
            senders.append(sender)

        with connected(asgi_startup, on_startup):
            lifespan = Lifespan(router(), {})
            await lifespan.startup()
            await lifespan.shutdown()
        self.assertEqual(senders, [ProtocolTypeRouter])

    @override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT=0.2)
    async def test_failures_and_timeouts_are_reported_as_by_the_core(self):
        async def boom(**kwargs):
            raise RuntimeError("boom")

        async def slow(**kwargs):
            await asyncio.sleep(5)

        for receiver in (boom, slow):
            with self.subTest(receiver.__name__), connected(asgi_startup, receiver):
                ours = await Lifespan(router(), {}).startup()
                core = await Lifespan(get_asgi_application(), {}).startup()
                self.assertEqual(ours["type"], "lifespan.startup.failed")
                self.assertIn(receiver.__qualname__, ours["message"])
                self.assertEqual(ours, core)

    async def test_own_lifespan_entry_is_delegated_to(self):
        received = []

        async def lifespan_app(scope, receive, send):
            received.append(scope)
            scope["state"]["client"] = "from the mapping's app"
            await receive()
            await send(COMPLETE)
            await receive()
            await send(SHUT)

        app = router(lifespan=lifespan_app)
        with connected(asgi_startup, open_client):  # not sent: the mapping's app handles lifespan
            lifespan = Lifespan(app)  # no state from the server, as under Daphne
            self.assertEqual(await lifespan.startup(), COMPLETE)
            self.assertEqual(await websocket_keys(app), ["client"])
            self.assertEqual(await lifespan.shutdown(), SHUT)
        self.assertEqual((len(received), opened), (1, []))
        self.assert_consumers_got("from the mapping's app")

    async def test_own_lifespan_entry_gets_the_servers_state(self):
        received = []

        async def lifespan_app(scope, receive, send):
            received.append(scope["state"])
            await receive()
            await send(COMPLETE)

        state = {}
        self.assertEqual(await Lifespan(router(lifespan=lifespan_app), state).startup(), COMPLETE)
        self.assertEqual(len(received), 1)
        self.assertIs(received[0], state)

    async def test_other_scope_types_are_routed_as_by_channels(self):
        with self.assertRaisesMessage(ValueError, "No application configured for scope type 'x'"):
            await router()({"type": "x"}, None, None)

    def test_passes_the_system_check_as_do_the_stock_routers_fixes(self):
        # A stock router with neither gets W001: see test_checks.
        for app in (
            router(),
            ChannelsProtocolTypeRouter({"lifespan": get_asgi_application()}),
            LifespanWrapper(ChannelsProtocolTypeRouter({})),
        ):
            sys.modules["tests._channels_asgi"] = SimpleNamespace(application=app)  # type: ignore
            try:
                with override_settings(ASGI_APPLICATION="tests._channels_asgi.application"):
                    self.assertEqual(check_asgi_application(), [], app)
            finally:
                del sys.modules["tests._channels_asgi"]


class ReadingConsumer(AsyncJsonWebsocketConsumer):
    """Reads a key of the lifespan state before it accepts the connection."""

    async def connect(self):
        self.scope["state"]["client"]
        await self.accept()


class NoLifespanTests(ChannelsTestCase):
    """A server that ran no lifespan (Daphne's runserver, ChannelsLiveServerTestCase)."""

    async def test_a_consumer_reading_the_state_gets_the_reason_not_a_bare_key_error(self):
        app = ProtocolTypeRouter({"websocket": URLRouter([path("ws/", ReadingConsumer.as_asgi())])})
        communicator = WebsocketCommunicator(app, "/ws/")  # no lifespan ran; no state given
        with self.assertRaises(StateKeyError) as caught:
            await communicator.connect()
        message = str(caught.exception)
        self.assertIn(
            """scope["state"] has no key 'client': this connection carries no lifespan state. """
            "The server did not run the ASGI lifespan (Daphne's own runserver",
            message,
        )
        self.assertIn("ChannelsLiveServerTestCase", message)
        self.assertIn("'manage.py runserver' (lifespan_signals listed first", message)

    async def test_consumers_may_still_write_and_read_their_own_keys(self):
        app = router()
        self.assertEqual(await websocket_keys(app), [])
        state = StateConsumer.scopes[-1]["state"]
        self.assertIsInstance(state, NoLifespanState)
        self.assertIs(state["mine"], True)

    async def test_a_servers_state_is_left_alone(self):
        self.assertEqual(await websocket_keys(serve(router(), {"given": 1})), ["given"])


class ConsumerStateTests(ChannelsTestCase):
    async def test_consumers_get_a_copy_of_the_servers_state(self):
        state = {}
        app = router()
        with connected(asgi_startup, open_client):
            lifespan = Lifespan(app, state)
            await lifespan.startup()
            keys = [await websocket_keys(serve(app, state)) for _ in range(2)]
            await lifespan.shutdown()
        self.assertEqual(keys, [["client"], ["client"]])  # "mine" stayed in its connection
        self.assert_consumers_got(state["client"])
        self.assertIsNot(StateConsumer.scopes[0]["state"], state)

    async def test_router_copies_its_own_state_when_the_server_gives_none(self):
        app = router()
        with connected(asgi_startup, open_client):
            lifespan = Lifespan(app)  # Daphne gives no state
            await lifespan.startup()
            keys = [await websocket_keys(app) for _ in range(2)]
            client_id = await http_client_id(app)
            await lifespan.shutdown()
        self.assertEqual(keys, [["client"], ["client"]])
        [client] = opened
        self.assert_consumers_got(client)
        self.assertEqual(client_id, id(client))  # what views see in request.state

    async def test_state_reaches_consumers_through_the_auth_and_session_stacks(self):
        for stack in (AuthMiddlewareStack, SessionMiddlewareStack):
            with self.subTest(stack.__name__), connected(asgi_startup, open_client):
                app = router(stack=stack)
                lifespan = Lifespan(app)
                await lifespan.startup()
                self.assertEqual(await websocket_keys(app), ["client"])
                await lifespan.shutdown()
                self.assertIs(StateConsumer.scopes[-1]["state"]["client"], opened[-1])
        self.assertEqual(str(StateConsumer.scopes[0]["user"]), "AnonymousUser")

    async def test_lifespan_middleware_around_the_stock_router(self):
        senders = []

        async def on_startup(sender, **kwargs):
            senders.append(sender)

        app = LifespanWrapper(router(ChannelsProtocolTypeRouter))
        with connected(asgi_startup, open_client, on_startup):
            lifespan = Lifespan(app)
            self.assertEqual(await lifespan.startup(), COMPLETE)
            self.assertEqual(await websocket_keys(app), ["client"])
            self.assertEqual(await http_client_id(app), id(opened[0]))
            self.assertEqual(await lifespan.shutdown(), SHUT)
        self.assertEqual(senders, [LifespanWrapper])
        self.assert_consumers_got(opened[0])


@override_settings(SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies")
class AuthenticatedConsumerTests(TransactionTestCase):
    def setUp(self):
        StateConsumer.scopes = []
        self.user = User.objects.create_user("ada")
        client = Client()
        client.force_login(self.user)
        self.cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    async def test_consumer_gets_the_user_and_the_state(self):
        state = {"client": object()}
        app = serve(router(stack=AuthMiddlewareStack), state)
        self.assertEqual(await websocket_keys(app, [(b"cookie", self.cookie)]), ["client"])
        [scope] = StateConsumer.scopes
        self.assertEqual(scope["user"].pk, self.user.pk)
        self.assertIs(scope["state"]["client"], state["client"])


def test_the_package_imports_channels_only_in_its_channels_module():
    code = """
import pkgutil, sys
sys.modules["channels"] = None  # as if Channels were not installed
import django
django.setup()
import lifespan_signals
for module in pkgutil.walk_packages(lifespan_signals.__path__, "lifespan_signals."):
    if module.name != "lifespan_signals.channels":
        __import__(module.name)
from django.core.management import call_command
call_command("check")
try:
    import lifespan_signals.channels
except ImportError:
    print("channels needed only by lifespan_signals.channels")
"""
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("channels needed only by lifespan_signals.channels\n")


# -- real servers ------------------------------------------------------------------------------

TIMEOUT = 20.0
BAD = ("No application configured", "unsupported", "Traceback", "ResourceWarning", *LEAKS)


SERVERS = [UVICORN.param(), RUNASGI.param(), LIFESPAN_DAPHNE.param()]
APP = "tests.projects.channelsapp.asgi:application"


@contextlib.contextmanager
def serving(serve, server: Server) -> Iterator[tuple[ServerProcess, str, str]]:
    """``server`` serving tests.projects.channelsapp on port 0, ready: the process and its base and
    WebSocket URLs."""
    proc = serve(server, settings="tests.projects.channelsapp.settings", app=APP)
    proc.wait_ready("/health/", TIMEOUT)
    yield proc, proc.base, f"ws://127.0.0.1:{proc.wait_port()}/ws/state/"


def receive_json(websocket):
    return json.loads(websocket.recv(timeout=TIMEOUT))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")
@pytest.mark.parametrize("server", SERVERS)
def test_consumers_and_views_share_the_client_under_a_real_server(serve, server, events):
    events_file = events
    with serving(serve, server) as (proc, base, ws_url):
        view = get_json(f"{base}/state/")
        with connect(ws_url, proxy=None, open_timeout=TIMEOUT) as websocket:
            first = receive_json(websocket)
            websocket.send(json.dumps({"fetch": f"{base}/health/"}))
            fetched = receive_json(websocket)
        with connect(ws_url, proxy=None, open_timeout=TIMEOUT) as websocket:
            second = receive_json(websocket)
        returncode = proc.stop(timeout=TIMEOUT)
        output, pid = proc.output(), proc.pid

    assert returncode == server.stopped_exit, output
    events = [event for event in read_events(events_file) if event["event"] != "disconnect"]
    assert [event["event"] for event in events] == ["startup", "shutdown"], output
    startup, shutdown = events
    assert startup == {**startup, "event": "startup", "pid": pid, "sender": "ProtocolTypeRouter"}
    assert shutdown == {"event": "shutdown", "pid": pid, "same": True, "closed": True}
    # The consumers hold the very session the receiver opened and the views use, still open.
    assert view == {"pid": pid, "aiohttp": startup["aiohttp"], "closed": False}
    for message in (first, second):
        assert message["pid"] == pid
        assert (message["aiohttp"], message["closed"]) == (startup["aiohttp"], False)
        assert message["state_keys"] == ["aiohttp"]  # each connection its own copy of state
        assert message["user"] == "AnonymousUser"  # through AuthMiddlewareStack
    assert fetched == {"status": 200, "body": "ok"}
    assert "Lifespan startup complete" in output
    assert "Lifespan shutdown complete" in output
    for text in BAD:
        assert text not in output, output


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")
@pytest.mark.parametrize("server", SERVERS)
def test_open_websockets_are_closed_and_their_consumers_end_before_lifespan_shutdown(
    serve, server, events
):
    events_file = events
    with serving(serve, server) as (proc, _, ws_url):
        with connect(ws_url, proxy=None, open_timeout=TIMEOUT) as websocket:
            receive_json(websocket)
            os.kill(proc.pid, signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                websocket.recv(timeout=TIMEOUT)
        returncode = proc.wait_exit(TIMEOUT)
        output = proc.output()

    assert returncode == server.stopped_exit, output
    # A close frame, not a dropped connection (1006): 1012, service restart.
    assert closed.value.rcvd is not None, closed.value
    assert closed.value.rcvd.code == 1012
    events = read_events(events_file)
    assert [event["event"] for event in events] == ["startup", "disconnect", "shutdown"], output
    # The consumer's disconnect() ran while the shared session was still open.
    assert (events[1]["code"], events[1]["closed"]) == (1012, False)
    assert events[2]["closed"] is True
    for text in BAD:
        assert text not in output, output


class RouterReturnValueTests(SimpleTestCase):
    """Channels' own router returns what the application it routes to returns (its
    test_routing.py checks it); ours, and the wrapper around any app, do too."""

    async def test_the_routed_applications_return_value_comes_back(self):
        async def app(scope, receive, send):
            return ("handled", scope["type"])

        async def receive():
            return {"type": "http.request"}

        async def send(message):
            pass

        scope = {"type": "http", "path": "/", "state": {}}
        for router in (ProtocolTypeRouter({"http": app}), LifespanWrapper(app)):
            with self.subTest(router=type(router).__name__):
                self.assertEqual(await router(scope, receive, send), ("handled", "http"))
