"""Testing code that uses declared clients: override_clients() and the test helpers."""

from __future__ import annotations

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.test import SimpleTestCase, override_settings

from lifespan_signals.clients import UnknownClient, clients
from lifespan_signals.state import LifespanNotStarted
from lifespan_signals.testing import LifespanTestMixin, lifespan, override_clients

HTTPX = {"BACKEND": "httpx.AsyncClient"}


@override_settings(LIFESPAN_SIGNALS_CLIENTS={"default": HTTPX, "other": HTTPX})
class OverrideTests(SimpleTestCase):
    fake = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, text="mock"))
    )

    async def test_a_context_manager_inside_a_lifespan(self):
        async with lifespan():
            real = clients["default"]
            with override_clients(default=self.fake):
                self.assertIs(clients["default"], self.fake)
                self.assertIs(clients["other"], clients["other"])
                response = await clients["default"].get("http://upstream.test/")
                self.assertEqual(response.text, "mock")
            self.assertIs(clients["default"], real)
        self.assertTrue(real.is_closed)
        self.assertFalse(self.fake.is_closed)  # the test owns its replacement

    def test_the_same_instance_entered_twice_is_undone_twice(self):
        override = override_clients(default="replaced")
        with override:
            with override:
                self.assertEqual(clients["default"], "replaced")
            self.assertEqual(clients["default"], "replaced")  # the outer entry still holds
        with self.assertRaises(LifespanNotStarted):
            clients["default"]

    def test_a_sync_decorator_without_a_lifespan(self):
        @override_clients(default=self.fake)
        def check():
            self.assertIs(clients["default"], self.fake)
            with self.assertRaises(LifespanNotStarted):
                clients["other"]

        check()
        with self.assertRaises(LifespanNotStarted):
            clients["default"]

    @override_clients(default="replaced")
    async def test_an_async_decorator_around_a_lifespan(self):
        async with lifespan():
            self.assertEqual(clients["default"], "replaced")
            self.assertIsInstance(clients["other"], httpx.AsyncClient)

    def test_unknown_aliases_are_refused(self):
        with self.assertRaisesMessage(
            UnknownClient,
            "override_clients() got aliases that LIFESPAN_SIGNALS_CLIENTS does not declare: "
            "['defualt'] (declared: ['default', 'other']).",
        ), override_clients(defualt=self.fake):  # fmt: skip
            pass


@override_settings(LIFESPAN_SIGNALS_CLIENTS={"default": HTTPX})
@override_clients(default="replaced for the class")
class OverrideClassTests(LifespanTestMixin, SimpleTestCase):
    async def test_the_mixin_opens_declared_clients_and_the_override_wins(self):
        self.assertEqual(clients["default"], "replaced for the class")

    def test_sync_test_too(self):
        self.assertEqual(clients["default"], "replaced for the class")


@override_settings(LIFESPAN_SIGNALS_CLIENTS={"default": HTTPX})
class MixinTests(LifespanTestMixin, SimpleTestCase):
    async def test_the_mixin_opens_declared_clients(self):
        self.assertFalse(clients.get("default", httpx.AsyncClient).is_closed)


@pytest.fixture
def declared(settings):
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="mocked"))
    settings.LIFESPAN_SIGNALS_CLIENTS = {"default": {**HTTPX, "OPTIONS": {"transport": transport}}}


@pytest.fixture
def seen():
    found = []
    yield found
    assert [client.is_closed for client in found] == [True]  # the lifespan ended with the test


def test_the_pytest_fixtures_open_and_close_declared_clients(declared, seen, lifespan_state):
    client = clients.get("default", httpx.AsyncClient)
    seen.append(client)
    assert not client.is_closed
    # A sync test reaches the client on the lifespan's loop, as a sync view would.
    assert async_to_sync(client.get)("http://upstream.test/").text == "mocked"
