"""The demo's live feed under a real uvicorn: a WebSocket consumer using the shared clients."""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.harness.catalogue import GUNICORN, UVICORN, assert_clean
from tests.harness.servers import http_get

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")

TIMEOUT = 20.0
APP = "sampleproject.asgi:application"
BAD = ("No application configured", "unsupported", "ResourceWarning", "Traceback")


def page_stats(html: str) -> dict[str, int]:
    return {name: int(value) for name, value in re.findall(r'data-stat="([\w-]+)">(\d+)<', html)}


def get_page(url: str) -> dict[str, int]:
    status, body = http_get(url, TIMEOUT)
    assert status == 200, body
    return page_stats(body.decode())


def receive(websocket, kind: str) -> dict:
    """The next message of type ``kind`` (stats pushes may come in between)."""
    while True:
        message = json.loads(websocket.recv(timeout=TIMEOUT))
        if message["type"] == kind:
            return message


def test_live_feed_pushes_the_stats_of_the_clients_the_page_uses(serve, tmp_path: Path) -> None:
    env = {
        "SAMPLE_DB_PATH": str(tmp_path / "db.sqlite3"),
        "SAMPLE_SERVICE_LATENCY": "0.01",
        "SAMPLE_STATS_INTERVAL": "0.1",
    }
    app = "sampleproject.asgi:application"
    proc = serve(UVICORN, settings="sampleproject.settings", app=app, env=env)
    proc.wait_ready("/health/", TIMEOUT)
    base = proc.base
    ws_url = f"ws://127.0.0.1:{proc.wait_port()}/ws/stats/"
    page = get_page(f"{base}/")
    with connect(ws_url, origin=base, proxy=None, open_timeout=TIMEOUT) as websocket:
        pushed = receive(websocket, "stats")
        second_push = receive(websocket, "stats")  # it keeps pushing, unasked
        websocket.send(json.dumps({"fetch": "promotions"}))
        promotions = receive(websocket, "promotions")
        after_fetch = receive(websocket, "stats")
    page_again = get_page(f"{base}/")
    # AllowedHostsOriginValidator turns away pages from other sites.
    with pytest.raises(InvalidStatus, match="403"):
        connect(ws_url, origin="http://evil.example", proxy=None, open_timeout=TIMEOUT)
    returncode = proc.stop(timeout=TIMEOUT)
    output = proc.output()

    # The consumer's clients are the very objects the page's views used, in the same process.
    assert pushed["pid"] == page["pid"] == proc.pid
    for client in ("aiohttp", "httpx"):
        assert pushed["clients"][client]["id"] == page[f"{client}-id"] == page_again[f"{client}-id"]
        assert pushed["clients"][client]["requests"] == page[f"{client}-requests"] == 1
    assert second_push["clients"] == pushed["clients"]
    # The consumer called the promotions service through the shared aiohttp session; the page
    # (the same ClientStats object, in state["stats"]) counts that request too.
    assert [promotion["code"] for promotion in promotions["promotions"]] == ["AUTUMN15", "FREESHIP"]
    assert after_fetch["clients"]["aiohttp"]["requests"] == 2
    assert after_fetch["clients"]["aiohttp"]["reused-connections"] == 1
    assert page_again["aiohttp-requests"] == 3
    assert page_again["httpx-requests"] == 2

    # uvicorn re-raises the SIGTERM it handled after a clean shutdown.
    assert returncode == -signal.SIGTERM, output
    assert "Lifespan startup complete" in output
    assert f"Counting traffic of aiohttp.ClientSession id={page['aiohttp-id']}" in output, output
    assert "shutdown client aiohttp" in output, output
    assert_clean(output, *BAD)


def test_with_redis_every_process_broadcasts_to_every_feed(serve, redis, tmp_path: Path) -> None:
    """REDIS_URL set: the feed of one socket shows the counters of both gunicorn workers."""
    env = {
        "SAMPLE_DB_PATH": str(tmp_path / "db.sqlite3"),
        "SAMPLE_STATS_INTERVAL": "0.1",
        "REDIS_URL": redis.url,
    }
    proc = serve(GUNICORN, settings="sampleproject.settings", app=APP, env=env)
    proc.wait_ready("/health/", TIMEOUT)
    base = proc.base
    pids = set()
    with connect(
        f"ws://127.0.0.1:{proc.wait_port()}/ws/stats/",
        origin=base,
        proxy=None,
        open_timeout=TIMEOUT,
    ) as websocket:
        for _ in range(200):  # 0.1 s apart from each worker: both show up long before
            pids.add(receive(websocket, "stats")["pid"])
            if len(pids) == 2:
                break
    proc.stop(timeout=TIMEOUT)
    assert len(pids) == 2
    assert proc.output().count("shutdown layer default") == 2, proc.output()
    assert_clean(proc.output(), *BAD)
