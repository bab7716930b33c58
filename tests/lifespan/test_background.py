"""Tasks that lifespan startup leaves running: cancelled after the ``asgi_shutdown`` receivers,
awaited within the shutdown budget, named when they do not finish."""

from __future__ import annotations

import asyncio

from django.test import SimpleTestCase, override_settings

from lifespan_signals.asgi import get_asgi_application
from lifespan_signals.signals import asgi_shutdown, asgi_startup
from lifespan_signals.testing import lifespan
from tests.harness.in_process import Lifespan, connected


class BackgroundTaskTests(SimpleTestCase):
    async def test_a_task_left_running_is_cancelled_after_the_shutdown_receivers(self):
        happened = []

        async def poll():
            try:
                await asyncio.sleep(3600)
            finally:
                happened.append("finally")

        async def start(sender, **kwargs):
            asyncio.create_task(poll())  # noqa: RUF006

        async def stop(sender, **kwargs):
            happened.append("shutdown receiver")

        with connected(asgi_startup, start), connected(asgi_shutdown, stop):
            app = Lifespan(get_asgi_application(), {})
            self.assertEqual((await app.startup())["type"], "lifespan.startup.complete")
            self.assertEqual((await app.shutdown())["type"], "lifespan.shutdown.complete")
        self.assertEqual(happened, ["shutdown receiver", "finally"])

    async def test_a_task_started_by_a_sync_receiver_through_async_to_sync_is_cancelled_too(self):
        from asgiref.sync import async_to_sync

        happened = []

        async def poll():
            try:
                await asyncio.sleep(3600)
            finally:
                happened.append("finally")

        async def spawn():
            asyncio.get_running_loop().create_task(poll())

        def start(sender, **kwargs):
            async_to_sync(spawn)()

        with connected(asgi_startup, start):
            async with lifespan(get_asgi_application()):
                pass
        self.assertEqual(happened, ["finally"])

    @override_settings(LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT=0.2)
    async def test_a_task_that_does_not_stop_is_named_and_abandoned(self):
        release = asyncio.Event()

        async def stubborn():
            while not release.is_set():
                try:
                    await release.wait()
                except asyncio.CancelledError:
                    continue  # refuses to stop

        async def start(sender, **kwargs):
            asyncio.create_task(stubborn(), name="stubborn")  # noqa: RUF006

        with connected(asgi_startup, start), self.assertLogs("lifespan_signals", "WARNING") as logs:
            app = Lifespan(get_asgi_application(), {})
            await app.startup()
            message = await app.shutdown()
        release.set()
        self.assertEqual(message["type"], "lifespan.shutdown.failed")
        self.assertIn(
            "background task 'stubborn' (tests.lifespan.test_background.BackgroundTaskTests."
            "test_a_task_that_does_not_stop_is_named_and_abandoned.<locals>.stubborn) did not "
            "finish within 1 s after it was cancelled at shutdown",
            message["message"],
        )
        self.assertIn("Abandoning 1 background task(s) still running.", "\n".join(logs.output))

    async def test_tasks_of_the_server_are_left_alone(self):
        outside = asyncio.create_task(asyncio.sleep(3600))
        try:
            app = Lifespan(get_asgi_application(), {})
            await app.startup()
            during = asyncio.create_task(asyncio.sleep(3600))  # the server's, not startup's
            await app.shutdown()
            self.assertFalse(outside.done())
            self.assertFalse(during.done())
        finally:
            outside.cancel()
            during.cancel()
        self.assertIsNone(asyncio.get_running_loop().get_task_factory())
