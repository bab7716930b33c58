"""The demo shop in process, with lifespan_signals.testing: its receivers, views and consumer.

These run the demo's ASGI application's lifespan under the package's test settings, with the
shop's URLs; the shop app is not installed here, so its ``ready()`` does not connect the
receivers: each test connects them. The pages
and the consumer call the shop's "microservices" over HTTP at their own address; in process there
is no server, so a small loopback server stands in for one and answers through the real views.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from unittest import mock

import aiohttp
import httpx
from channels.routing import URLRouter
from django.test import SimpleTestCase, override_settings
from django.urls import include, path

from lifespan_signals.signals import asgi_shutdown, asgi_startup
from lifespan_signals.testing import AsyncClient, LifespanTestMixin, lifespan
from sampleproject.shop.apps import ShopStats, close_clients, open_clients
from sampleproject.shop.views import PROMOTIONS, RECOMMENDATIONS
from tests.utils import connected

urlpatterns = [path("", include("sampleproject.shop.urls"))]

TEMPLATES = Path(__file__).resolve().parent.parent / "sampleproject" / "shop" / "templates"

shop_settings = override_settings(
    ASGI_APPLICATION="sampleproject.asgi.application",  # the lifespan helpers' default app
    ROOT_URLCONF=__name__,  # the shop's URLs without the admin's (not installed here)
    SAMPLE_SERVICE_LATENCY=0,
    SAMPLE_STATS_INTERVAL=60,
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [TEMPLATES]}],
    USE_X_FORWARDED_HOST=True,  # the loopback server's address, for build_absolute_uri()
)


@contextlib.contextmanager
def shop_receivers():
    with connected(asgi_startup, open_clients), connected(asgi_shutdown, close_clients):
        yield


@contextlib.asynccontextmanager
async def loopback_server():
    """Serve HTTP/1.1 (keep-alive) on 127.0.0.1 through Django's test client; yield the host."""
    writers = set()

    async def serve(reader, writer):
        writers.add(writer)
        try:
            while request_line := await reader.readline():
                await reader.readuntil(b"\r\n\r\n")
                response = await AsyncClient().get(request_line.split()[1].decode())
                head = f"HTTP/1.1 {response.status_code} OK\r\ncontent-type: application/json\r\n"
                writer.write(f"{head}content-length: {len(response.content)}\r\n\r\n".encode())
                writer.write(response.content)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


def stat(html, name):
    return int(re.search(rf'data-stat="{name}">(\d+)<', html)[1])


@shop_settings
class ShopTests(LifespanTestMixin, SimpleTestCase):
    """Each test runs inside the lifespan, with the shop's receivers connected."""

    def setUp(self):
        receivers = shop_receivers()
        receivers.__enter__()
        self.addCleanup(receivers.__exit__, None, None, None)

    async def test_startup_opened_the_shared_clients(self):
        state = self.lifespan_state
        self.assertIsInstance(state["aiohttp"], aiohttp.ClientSession)
        self.assertFalse(state["aiohttp"].closed)
        self.assertIsInstance(state["httpx"], httpx.AsyncClient)
        self.assertFalse(state["httpx"].is_closed)
        self.assertIsInstance(state["stats"], ShopStats)

    async def test_service_views(self):
        promotions = await self.async_client.get("/services/promotions/")
        recommendations = await self.async_client.get("/services/recommendations/")
        health = await self.async_client.get("/health/")
        self.assertEqual(promotions.json(), {"promotions": PROMOTIONS})
        self.assertEqual(recommendations.json(), {"recommendations": RECOMMENDATIONS})
        self.assertEqual((health.status_code, health.content), (200, b"ok"))

    async def test_home_page_calls_the_services_through_the_shared_clients(self):
        async with loopback_server() as host:
            forwarded = {"X-Forwarded-Host": host}
            first = (await self.async_client.get("/", headers=forwarded)).content.decode()
            second = (await self.async_client.get("/", headers=forwarded)).content.decode()
        self.assertIn('data-promotion="AUTUMN15"', second)
        self.assertIn("Merino hiking socks", second)
        for name, client in (("aiohttp", "aiohttp"), ("httpx", "httpx")):
            self.assertEqual(stat(first, f"{name}-id"), id(self.lifespan_state[client]))
            self.assertEqual(stat(second, f"{name}-id"), id(self.lifespan_state[client]))
            self.assertEqual(stat(second, f"{name}-requests"), 2)
            self.assertEqual(stat(second, f"{name}-reused-connections"), 1)

    async def test_live_stats_consumer_sees_the_same_clients(self):
        state = self.lifespan_state
        # Consumers close old database connections as they finish; these tests use no database.
        with mock.patch("channels.db.close_old_connections"):
            await self._talk_to_the_consumer(state)

    async def _talk_to_the_consumer(self, state):
        from lifespan_signals.testing import WebsocketCommunicator
        from sampleproject.shop.routing import websocket_urlpatterns

        async with loopback_server() as host:
            app = URLRouter(websocket_urlpatterns)
            communicator = WebsocketCommunicator(
                app, "/ws/stats/", headers=[(b"host", host.encode())]
            )
            self.assertEqual(await communicator.connect(), (True, None))
            stats = await communicator.receive_json_from()
            self.assertEqual(stats["clients"]["aiohttp"]["id"], id(state["aiohttp"]))
            self.assertEqual(stats["clients"]["httpx"]["id"], id(state["httpx"]))
            await communicator.send_json_to({"fetch": "promotions"})
            fetched = await communicator.receive_json_from()
            expected = {"type": "promotions", "client": "aiohttp", "promotions": PROMOTIONS}
            self.assertEqual(fetched, expected)
            await communicator.disconnect()


@shop_settings
class ShopShutdownTests(SimpleTestCase):
    async def test_shutdown_closes_the_clients_that_requests_used(self):
        with shop_receivers(), self.assertLogs("sampleproject", "INFO") as logs:
            async with lifespan() as state:
                response = await AsyncClient().get("/health/")
                self.assertEqual(response.status_code, 200)
        self.assertTrue(state["aiohttp"].closed)
        self.assertTrue(state["httpx"].is_closed)
        self.assertIn(f"Closed aiohttp.ClientSession id={id(state['aiohttp'])}", logs.output[-2])
        self.assertIn(f"Closed httpx.AsyncClient id={id(state['httpx'])}", logs.output[-1])
