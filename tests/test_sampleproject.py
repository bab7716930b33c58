"""Smoke tests of the demo project under a real uvicorn subprocess."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STARTUP_DEADLINE = 30.0
SHUTDOWN_DEADLINE = 15.0


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


def _wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"server exited with {server.process.returncode}:\n{server.output()}")
        try:
            if _get(f"{server.base_url}/health/") == "ok":
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.05)
    pytest.fail(f"server not healthy after {STARTUP_DEADLINE} s:\n{server.output()}")


def _stat(html: str, name: str) -> int:
    match = re.search(rf'data-stat="{re.escape(name)}">(\d+)<', html)
    assert match, f"{name!r} not found in page:\n{html}"
    return int(match.group(1))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "sampleproject.settings",
        "SAMPLE_DB_PATH": str(tmp_path / "db.sqlite3"),
        "SAMPLE_SERVICE_LATENCY": "0.02",
        "PYTHONDEVMODE": "1",
    }
    log_path = tmp_path / "server.log"
    command = [
        sys.executable, "-m", "uvicorn", "sampleproject.asgi:application",
        "--host", "127.0.0.1", "--port", str(port), "--lifespan", "on",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield Server(process, f"http://127.0.0.1:{port}", log_path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=SHUTDOWN_DEADLINE)


def test_home_uses_shared_clients_and_shuts_down_cleanly(server: Server) -> None:
    _wait_until_healthy(server)

    first = _get(f"{server.base_url}/")
    second = _get(f"{server.base_url}/")

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
    assert _stat(first, "pid") == _stat(second, "pid") == server.process.pid

    server.process.send_signal(signal.SIGTERM)
    returncode = server.process.wait(timeout=SHUTDOWN_DEADLINE)
    output = server.output()
    # uvicorn (0.29+) finishes a graceful shutdown, then re-raises the signal it caught, so the
    # exit status is -SIGTERM rather than 0; its last log lines show the shutdown was clean.
    assert returncode == -signal.SIGTERM, output
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
    for bad in ("Unclosed client session", "Unclosed connector", "ResourceWarning", "Traceback"):
        assert bad not in output, output
