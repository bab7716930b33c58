"""Paired resources: entered in order, exited in reverse, cleaned up on failure."""

from __future__ import annotations

import asyncio
import contextlib

from django.test import SimpleTestCase, override_settings

from lifespan_signals.asgi import get_asgi_application
from lifespan_signals.resources import register_resource, unregister_resource
from lifespan_signals.signals import asgi_shutdown, asgi_startup
from tests.harness.in_process import Lifespan, connected, registered

COMPLETE = {"type": "lifespan.startup.complete"}


def tracking(events, name, fail_enter=False, fail_exit=False):
    async def resource(state):
        events.append(f"enter {name}")
        if fail_enter:
            raise RuntimeError(f"{name} cannot open")
        state[name] = f"{name} (saw {sorted(state)})"
        yield
        events.append(f"exit {name}")
        if fail_exit:
            raise RuntimeError(f"{name} cannot close")

    resource.__qualname__ = f"resource_{name}"
    return resource


class ResourceTests(SimpleTestCase):
    async def test_entered_in_order_before_receivers_exited_in_reverse_after(self):
        events = []

        async def startup(sender, *, state, **kwargs):
            events.append(f"startup receiver sees {sorted(state)}")

        async def shutdown(sender, **kwargs):
            events.append("shutdown receiver")

        state = {}
        with (
            registered(tracking(events, "a"), tracking(events, "b")),
            connected(asgi_startup, startup),
            connected(asgi_shutdown, shutdown),
        ):
            lifespan = Lifespan(get_asgi_application(), state)
            self.assertEqual(await lifespan.startup(), COMPLETE)
            self.assertEqual(state["b"], "b (saw ['a'])")  # a later one sees an earlier one
            await lifespan.shutdown()
        self.assertEqual(
            events,
            [
                "enter a",
                "enter b",
                "startup receiver sees ['a', 'b']",
                "shutdown receiver",
                "exit b",
                "exit a",
            ],
        )

    async def test_failure_to_enter_exits_those_entered_and_fails_startup(self):
        events = []
        with (
            registered(
                tracking(events, "a"), tracking(events, "b", fail_enter=True), tracking(events, "c")
            ),
            self.assertLogs("lifespan_signals", "INFO"),
        ):
            message = await Lifespan(get_asgi_application(), {}).startup()
        self.assertEqual(events, ["enter a", "enter b", "exit a"])
        self.assertEqual(message["type"], "lifespan.startup.failed")
        self.assertIn(
            "tests.lifespan.test_resources.resource_b raised RuntimeError: b cannot open",
            message["message"],
        )

    async def test_every_resource_exits_even_when_one_fails_to(self):
        events = []
        with (
            registered(tracking(events, "a"), tracking(events, "b", fail_exit=True)),
            self.assertLogs("lifespan_signals", "INFO"),
        ):
            lifespan = Lifespan(get_asgi_application(), {})
            await lifespan.startup()
            message = await lifespan.shutdown()
        self.assertEqual(events[-2:], ["exit b", "exit a"])
        self.assertEqual(message["type"], "lifespan.shutdown.failed")
        self.assertIn("resource_b raised RuntimeError: b cannot close", message["message"])

    async def test_async_context_manager_factories(self):
        events = []

        @contextlib.asynccontextmanager
        async def managed(state):
            events.append("in")
            yield
            events.append("out")

        with registered(managed):
            lifespan = Lifespan(get_asgi_application(), {})
            await lifespan.startup()
            await lifespan.shutdown()
        self.assertEqual(events, ["in", "out"])

    @override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT=0.2)
    async def test_hanging_resource_times_out_and_is_named(self):
        async def slow(state):
            await asyncio.sleep(60)
            yield

        with registered(slow), self.assertLogs("lifespan_signals", "INFO"):
            message = await Lifespan(get_asgi_application(), {}).startup()
        self.assertIn(".<locals>.slow timed out: still running after 0.2 s", message["message"])

    @override_settings(LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT=0.2)
    async def test_hanging_resource_exit_times_out(self):
        async def slow_close(state):
            yield
            await asyncio.sleep(60)

        with registered(slow_close), self.assertLogs("lifespan_signals", "INFO"):
            lifespan = Lifespan(get_asgi_application(), {})
            await lifespan.startup()
            message = await lifespan.shutdown()
        self.assertIn(".<locals>.slow_close timed out", message["message"])

    async def test_a_factory_that_returns_no_context_manager_is_a_clear_failure(self):
        def not_a_manager(state):
            return 42

        with registered(not_a_manager), self.assertLogs("lifespan_signals", "INFO"):
            message = await Lifespan(get_asgi_application(), {}).startup()
        self.assertIn("returned 42, which is not an async context manager", message["message"])

    def test_register_is_idempotent_and_rejects_non_callables(self):
        async def res(state):
            yield

        from lifespan_signals import resources

        self.assertIs(register_resource(res), res)
        register_resource(res)
        self.assertEqual(resources.registered().count(res), 1)
        unregister_resource(res)
        unregister_resource(res)
        self.assertNotIn(res, resources.registered())
        with self.assertRaisesMessage(
            TypeError, "register_resource() takes an async generator function"
        ):
            register_resource("myapp.client")
