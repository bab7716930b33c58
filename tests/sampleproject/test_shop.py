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

import aiohttp
import httpx
from channels.routing import URLRouter
from django.test import SimpleTestCase, override_settings
from django.urls import include, path

from lifespan_signals.clients import clients
from lifespan_signals.signals import asgi_startup
from lifespan_signals.testing import AsyncClient, LifespanTestMixin, lifespan
from sampleproject.settings import LIFESPAN_SIGNALS_CLIENTS
from sampleproject.shop.apps import ShopStats, count_traffic
from sampleproject.shop.views import PROMOTIONS, RECOMMENDATIONS
from tests.harness.in_process import connected, enter, without_db_connection_cleanup
from tests.harness.probes import REPO_ROOT

urlpatterns = [path("", include("sampleproject.shop.urls"))]

TEMPLATES = REPO_ROOT / "sampleproject" / "shop" / "templates"

shop_settings = override_settings(
    ASGI_APPLICATION="sampleproject.asgi.application",  # the lifespan helpers' default app
    CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
    LIFESPAN_SIGNALS_CLIENTS=LIFESPAN_SIGNALS_CLIENTS,
    ROOT_URLCONF=__name__,  # the shop's URLs without the admin's (not installed here)
    SAMPLE_SERVICE_LATENCY=0,
    SAMPLE_STATS_INTERVAL=60,
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [TEMPLATES]}],
    USE_X_FORWARDED_HOST=True,  # the loopback server's address, for build_absolute_uri()
)


@contextlib.contextmanager
def shop_receivers():
    with connected(asgi_startup, count_traffic):
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
        enter(self, shop_receivers())

    async def test_startup_opened_the_declared_clients(self):
        self.assertFalse(clients.get("aiohttp", aiohttp.ClientSession).closed)
        self.assertFalse(clients.get("httpx", httpx.AsyncClient).is_closed)
        self.assertIsInstance(self.lifespan_state["stats"], ShopStats)

    async def test_idle_connections_outlive_a_slow_reload(self):
        # httpx drops idle connections after 5 s by default, aiohttp after 15 s: a page reloaded
        # after that would open new ones, which reads as "sharing does not work".
        self.assertEqual(clients["httpx"]._transport._pool._keepalive_expiry, 60)
        self.assertEqual(clients["aiohttp"].connector._keepalive_timeout, 60)

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
        self.assertIn('<link rel="icon" href="data:,">', second)  # no GET /favicon.ico: no 404
        self.assertIn("Merino hiking socks", second)
        for name, client in (("aiohttp", "aiohttp"), ("httpx", "httpx")):
            self.assertEqual(stat(first, f"{name}-id"), id(clients[client]))
            self.assertEqual(stat(second, f"{name}-id"), id(clients[client]))
            self.assertEqual(stat(second, f"{name}-requests"), 2)
            self.assertEqual(stat(second, f"{name}-reused-connections"), 1)

    async def test_live_stats_consumer_sees_the_same_clients(self):
        with without_db_connection_cleanup():
            await self._talk_to_the_consumer()

    async def _talk_to_the_consumer(self):
        from lifespan_signals.testing import WebsocketCommunicator
        from sampleproject.shop.routing import websocket_urlpatterns

        async with loopback_server() as host:
            app = URLRouter(websocket_urlpatterns)
            communicator = WebsocketCommunicator(
                app, "/ws/stats/", headers=[(b"host", host.encode())]
            )
            self.assertEqual(await communicator.connect(), (True, None))
            stats = await communicator.receive_json_from()
            self.assertEqual(stats["clients"]["aiohttp"]["id"], id(clients["aiohttp"]))
            self.assertEqual(stats["clients"]["httpx"]["id"], id(clients["httpx"]))
            await communicator.send_json_to({"fetch": "promotions"})
            fetched = await communicator.receive_json_from()
            expected = {"type": "promotions", "client": "aiohttp", "promotions": PROMOTIONS}
            self.assertEqual(fetched, expected)
            await communicator.disconnect()


@shop_settings
class ShopShutdownTests(SimpleTestCase):
    async def test_shutdown_closes_the_clients_that_requests_used(self):
        with shop_receivers(), self.assertLogs("lifespan_signals.lifespan.steps", "DEBUG") as logs:
            async with lifespan():
                response = await AsyncClient().get("/health/")
                self.assertEqual(response.status_code, 200)
                session, client = clients["aiohttp"], clients["httpx"]
        self.assertTrue(session.closed)
        self.assertTrue(client.is_closed)
        closed = [record.lifespan_step["name"] for record in logs.records[-2:]]
        self.assertEqual(closed, ["httpx", "aiohttp"])  # the reverse of the declaration order
