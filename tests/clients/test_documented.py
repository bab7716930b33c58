"""Declared clients behave as the reference says: subclasses get the conversions, the libraries'
own option objects pass through, a factory that gives None is refused, and a client looked up
from another event loop says so."""

from __future__ import annotations

import asyncio
import sys
import threading
import warnings
from unittest import mock

import aiohttp
import httpx
from asgiref.sync import async_to_sync
from django.test import SimpleTestCase, override_settings

from lifespan_signals.checks import check_clients
from lifespan_signals.clients import WrongEventLoop, clients
from lifespan_signals.lifespan.backends import _library
from lifespan_signals.testing import LifespanFailed, lifespan, override_clients


class ProjectClient(httpx.AsyncClient):
    """A project's own subclass, as the reference allows."""


with warnings.catch_warnings():  # aiohttp discourages it (a DeprecationWarning), but allows it
    warnings.simplefilter("ignore", DeprecationWarning)

    class ProjectSession(aiohttp.ClientSession):
        pass


def declare(**entries):
    return override_settings(LIFESPAN_SIGNALS_CLIENTS=entries)


def in_thread(function):
    """``function()`` run in a new thread; its result, or the exception it raised."""
    outcome = []

    def run():
        try:
            outcome.append(function())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    return outcome[0]


class SubclassTests(SimpleTestCase):
    @declare(
        a={
            "BACKEND": "tests.clients.test_documented.ProjectClient",
            "OPTIONS": {"timeout": 7, "limits": {"max_connections": 3, "keepalive_expiry": 9}},
        },
        b={
            "BACKEND": "tests.clients.test_documented.ProjectSession",
            "OPTIONS": {"timeout": {"total": 5}, "connector": {"limit": 4}},
        },
    )
    async def test_a_subclass_gets_the_conversions_in_checks_and_at_startup(self):
        self.assertEqual(check_clients(), [])
        async with lifespan():
            client, session = clients["a"], clients["b"]
            self.assertIsInstance(client, ProjectClient)
            self.assertEqual(client.timeout, httpx.Timeout(7))
            pool = client._transport._pool
            self.assertEqual((pool._max_connections, pool._keepalive_expiry), (3, 9))
            self.assertIsInstance(session, ProjectSession)
            self.assertEqual(session.timeout, aiohttp.ClientTimeout(total=5))
            self.assertEqual(session.connector.limit, 4)

    def test_the_library_is_told_from_loaded_modules_only(self):
        self.assertEqual(_library(ProjectClient), "httpx")
        self.assertEqual(_library(ProjectSession), "aiohttp")
        self.assertIsNone(_library(dict))
        self.assertIsNone(_library(lambda: None))
        # Not imported (None in sys.modules makes an import fail): nothing is imported to tell.
        with mock.patch.dict(sys.modules, {"httpx": None, "aiohttp": None}):
            self.assertIsNone(_library(ProjectClient))


class OptionObjectTests(SimpleTestCase):
    TIMEOUT = httpx.Timeout(10, connect=2)
    LIMITS = httpx.Limits(max_connections=5, keepalive_expiry=30)
    AIOHTTP_TIMEOUT = aiohttp.ClientTimeout(total=8, connect=1)

    @declare(
        a={"BACKEND": "httpx.AsyncClient", "OPTIONS": {"timeout": TIMEOUT, "limits": LIMITS}},
        b={"BACKEND": "aiohttp.ClientSession", "OPTIONS": {"timeout": AIOHTTP_TIMEOUT}},
    )
    async def test_the_libraries_own_option_objects_pass_through(self):
        self.assertEqual(check_clients(), [])
        async with lifespan():
            self.assertEqual(clients["a"].timeout, self.TIMEOUT)
            self.assertEqual(clients["a"]._transport._pool._max_connections, 5)
            self.assertIs(clients["b"].timeout, self.AIOHTTP_TIMEOUT)

    @declare(a={"BACKEND": "httpx.AsyncClient", "OPTIONS": {"limits": TIMEOUT}})
    def test_an_option_object_of_the_wrong_kind_is_still_refused(self):
        [error] = check_clients()
        self.assertEqual(error.id, "lifespan_signals.E015")
        self.assertIn("but a httpx.Timeout is not", error.msg)


class NoneFactoryTests(SimpleTestCase):
    def assert_refused(self, backend, text):
        async def run():
            async with lifespan():
                self.fail("startup should fail")

        with (
            declare(empty={"BACKEND": backend}),
            self.assertRaises(LifespanFailed) as caught,
        ):
            async_to_sync(run)()
        message = caught.exception.message
        self.assertIn(f"LIFESPAN_SIGNALS_CLIENTS['empty']: {backend} {text}", message)
        self.assertIn("Did the factory", message)

    def test_a_factory_that_yields_none_is_refused_at_startup(self):
        from tests.clients import backends

        self.assert_refused("tests.clients.backends.yields_none", "yielded None, not a client.")
        self.assertEqual(backends.EVENTS[-2:], ["enter none", "exit none"])  # it was exited

    def test_a_factory_that_returns_none_is_refused_at_startup(self):
        self.assert_refused("tests.clients.backends.returns_none", "returned None, not a client.")


@declare(a={"BACKEND": "tests.clients.backends.Recorder"})
class EventLoopTests(SimpleTestCase):
    async def test_another_running_loop_is_refused_and_told_what_to_do(self):
        async def look_up():
            return clients["a"]

        async with lifespan():
            error = in_thread(lambda: asyncio.run(look_up()))
            self.assertIsInstance(error, WrongEventLoop)
            self.assertIn("clients['a'] was looked up on an event loop that is not the", str(error))
            self.assertIn("async_to_sync()", str(error))
            self.assertIn("instead of asyncio.run()", str(error))
            # The lifespan's own loop, and sync code in another thread, may look it up.
            self.assertEqual(clients["a"].name, "recorder")
            self.assertIs(in_thread(lambda: clients["a"]), clients["a"])

    async def test_an_override_is_not_refused_on_another_loop(self):
        async def look_up():
            return clients["a"]

        replacement = object()
        async with lifespan():
            with override_clients(a=replacement):
                self.assertIs(in_thread(lambda: asyncio.run(look_up())), replacement)
            self.assertIsInstance(in_thread(lambda: asyncio.run(look_up())), WrongEventLoop)

    def test_without_a_lifespan_nothing_changes(self):
        with override_clients(a="fake"):
            self.assertEqual(async_to_sync(self._look_up)(), "fake")

    async def _look_up(self):
        return clients["a"]
