"""State in requests: server-given or our own, shallow copies, request.state, clear errors."""

from __future__ import annotations

import json

from asgiref.testing import ApplicationCommunicator
from django.test import SimpleTestCase, override_settings

from lifespan_signals.asgi import LifespanWrapper, get_asgi_application
from lifespan_signals.signals import asgi_startup
from lifespan_signals.state import NoLifespanState, RequestState, StateKeyError
from tests.harness.in_process import Lifespan, connected, http_scope, open_client


async def request(app, path, state=None, query=b""):
    communicator = ApplicationCommunicator(app, http_scope(path, state, query))
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(5)
    body = await communicator.receive_output(5)
    await communicator.wait(5)
    return start["status"], body["body"]


class StateInRequestsTests(SimpleTestCase):
    async def test_own_state_is_copied_into_each_request_when_server_gives_none(self):
        app = get_asgi_application()
        with connected(asgi_startup, open_client):
            lifespan = Lifespan(app)  # no "state" in the lifespan scope: Daphne-like server
            await lifespan.startup()
            first = json.loads((await request(app, "/state/", query=b"n=1"))[1])
            second = json.loads((await request(app, "/state/", query=b"n=2"))[1])
            await lifespan.shutdown()
        self.assertEqual(first["keys"], ["client", "request-1"])
        self.assertEqual(second["keys"], ["client", "request-2"])  # no leak from the first
        self.assertEqual(first["client"], second["client"])

    async def test_server_state_is_used_as_given(self):
        app = get_asgi_application()
        server_state = {}
        with connected(asgi_startup, open_client):
            lifespan = Lifespan(app, server_state)
            await lifespan.startup()
            per_request = server_state.copy()  # what uvicorn/hypercorn/granian hand each request
            status, body = await request(app, "/state/", per_request, b"n=1")
            await lifespan.shutdown()
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["client"], id(server_state["client"]))
        self.assertIn("request-1", per_request)  # request.state writes through to scope["state"]
        self.assertNotIn("request-1", server_state)

    async def test_sync_view_sees_state(self):
        app = get_asgi_application()
        status, body = await request(app, "/sync-state/", {"client": 1})
        self.assertEqual((status, json.loads(body)), (200, {"keys": ["client"]}))

    async def test_lifespan_middleware_injects_state_into_any_app(self):
        seen = []

        async def inner(scope, receive, send):
            if scope["type"] != "lifespan":  # does not speak lifespan: returns at once
                seen.append(scope)

        app = LifespanWrapper(inner)
        with connected(asgi_startup, open_client):
            lifespan = Lifespan(app)
            await lifespan.startup()
            await app(http_scope("/"), None, None)
            await app(http_scope("/", state={"given": 1}), None, None)
            await lifespan.shutdown()
        self.assertEqual(list(seen[0]["state"]), ["client"])
        self.assertEqual(seen[1]["state"], {"given": 1})
        await app(http_scope("/"), None, None)  # after shutdown: nothing injected
        self.assertNotIn("state", seen[2])


class RequestStateTests(SimpleTestCase):
    def test_missing_key_says_which_and_who_sets_it(self):
        state = RequestState({"http": 1})
        with self.assertRaises(KeyError) as caught:
            state["httpx"]
        self.assertIsInstance(caught.exception, StateKeyError)
        self.assertEqual(
            str(caught.exception),
            "request.state has no key 'httpx' (keys: ['http']). Set it in an asgi_startup "
            "receiver: state['httpx'] = ...",
        )

    def test_no_state_at_all_explains_the_server_did_not_run_lifespan(self):
        state = RequestState(None)
        with self.assertRaisesMessage(StateKeyError, "this request carries no lifespan state"):
            state["http"]
        self.assertNotIn("http", state)
        self.assertEqual(len(state), 0)
        state["x"] = 1
        self.assertEqual(dict(state), {"x": 1})

    def test_mapping_behaviour(self):
        data = {"a": 1}
        state = RequestState(data)
        state["b"] = 2
        del state["a"]
        self.assertEqual(data, {"b": 2})
        self.assertEqual((len(state), list(state), state.get("a")), (1, ["b"], None))
        self.assertEqual(repr(state), "<RequestState {'b': 2}>")
        with self.assertRaisesMessage(StateKeyError, "request.state has no key 'a' to delete."):
            del state["a"]

    @override_settings(DEBUG=True)
    async def test_missing_key_in_a_view_is_a_clear_error(self):
        status, body = await request(get_asgi_application(), "/missing/", {"client": 1})
        self.assertEqual(status, 500)
        self.assertIn(
            "request.state has no key &#x27;missing&#x27; (keys: [&#x27;client&#x27;]). Set it "
            "in an asgi_startup receiver: state[&#x27;missing&#x27;] = ...",
            body.decode(),
        )

    @override_settings(DEBUG=False)
    def test_wsgi_request_has_empty_state_with_a_clear_error(self):
        response = self.client.get("/sync-state/")
        self.assertEqual(json.loads(response.content), {"keys": []})
        # ... and reading a key from it says why it is empty, not just which key is missing.
        with self.assertRaisesMessage(StateKeyError, "this request carries no lifespan state"):
            self.client.get("/missing/")


class ConcurrentLifespansTests(SimpleTestCase):
    async def test_the_first_ending_does_not_take_the_second_ones_state(self):
        app = get_asgi_application()
        with connected(asgi_startup, open_client):
            first, second = Lifespan(app), Lifespan(app)
            await first.startup()
            await second.startup()
            await first.shutdown()
            status, body = await request(app, "/state/", query=b"n=1")
            await second.shutdown()
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["keys"], ["client", "request-1"])


class NoLifespanStateTests(SimpleTestCase):
    def test_a_missing_key_says_no_lifespan_ran(self):
        with self.assertRaisesMessage(
            StateKeyError, """scope["state"] has no key 'http': this connection carries no"""
        ):
            NoLifespanState()["http"]

    def test_request_state_over_it_says_the_same_for_the_request(self):
        state = RequestState(NoLifespanState())
        with self.assertRaisesMessage(
            StateKeyError, "request.state has no key 'http': this request carries no lifespan"
        ):
            state["http"]
        state["own"] = 1  # what the request puts there, it finds
        self.assertEqual(state["own"], 1)
