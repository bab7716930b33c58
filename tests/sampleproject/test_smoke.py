"""Smoke tests of the demo project under a real uvicorn subprocess."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

import pytest

from tests.harness.catalogue import UVICORN, assert_clean
from tests.harness.servers import ServerProcess, http_get

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")

TIMEOUT = 30.0


def _get(url: str) -> str:
    status, body = http_get(url, timeout=10)
    assert status == 200, body
    return body.decode()


def _stat(html: str, name: str) -> int:
    match = re.search(rf'data-stat="{re.escape(name)}">(\d+)<', html)
    assert match, f"{name!r} not found in page:\n{html}"
    return int(match.group(1))


@pytest.fixture
def server(serve, tmp_path: Path) -> ServerProcess:
    env = {"SAMPLE_DB_PATH": str(tmp_path / "db.sqlite3"), "SAMPLE_SERVICE_LATENCY": "0.02"}
    proc = serve(
        UVICORN, settings="sampleproject.settings", app="sampleproject.asgi:application", env=env
    )
    proc.wait_ready("/health/", TIMEOUT)
    return proc


def test_home_uses_shared_clients_and_shuts_down_cleanly(server: ServerProcess) -> None:
    first = _get(server.url("/"))
    second = _get(server.url("/"))

    for page in (first, second):
        assert 'data-promotion="AUTUMN15"' in page
        assert "Merino hiking socks" in page
    for client in ("aiohttp", "httpx"):
        assert _stat(first, f"{client}-id") == _stat(second, f"{client}-id")
        assert _stat(first, f"{client}-requests") == 1
        assert _stat(second, f"{client}-requests") == 2
        # Back-to-back requests to the same host: the second one rides the pooled connection.
        assert _stat(second, f"{client}-new-connections") == 1
        assert _stat(second, f"{client}-reused-connections") == 1
    assert _stat(first, "pid") == _stat(second, "pid") == server.pid

    returncode = server.stop(signal.SIGTERM, TIMEOUT)
    output = server.output()
    # uvicorn (0.29+) finishes a graceful shutdown, then re-raises the signal it caught, so the
    # exit status is -SIGTERM rather than 0; its last log lines show the shutdown was clean.
    assert returncode == UVICORN.stopped_exit == -signal.SIGTERM, output
    assert "Lifespan startup complete" in output
    assert "Lifespan shutdown complete" in output
    assert "Application shutdown complete." in output
    # The declared clients every request used (those the shop counts) were closed at shutdown.
    counted = (
        f"Counting traffic of aiohttp.ClientSession id={_stat(first, 'aiohttp-id')} and "
        f"httpx.AsyncClient id={_stat(first, 'httpx-id')}"
    )
    assert counted in output, output
    assert "shutdown client httpx" in output, output
    assert "shutdown client aiohttp" in output, output
    assert_clean(output, "ResourceWarning", "Traceback")
