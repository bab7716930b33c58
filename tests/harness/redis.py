"""A private Redis for tests: Debian's ``redis-server`` listening only on a unix socket in a
temporary directory (``--port 0`` turns its TCP listener off), as the PostgreSQL test does.

Nothing is saved to disk. The tests' own connection is named ``test``; the test projects name
theirs ``pid-<pid>`` (``LIFESPAN_TEST_REDIS``), so that ``CLIENT LIST`` tells the processes apart.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INSTALL = (
    "redis-server was not found on PATH. Install it with `make redis` (Debian/Ubuntu: "
    "apt-get install -y redis-server), then run the tests again."
)


@dataclass
class Redis:
    """A running private Redis: its socket, its URL for channels_redis, a client of the tests."""

    socket: str
    log: Path
    client: Any  # redis.Redis, named "test"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def clients(self) -> list[dict[str, Any]]:
        """``CLIENT LIST``, less the tests' own connection."""
        return [entry for entry in self.client.client_list() if entry.get("name") != "test"]

    def connections_by_pid(self) -> dict[int, int]:
        """How many connections each test-project process has open (by its ``pid-`` name)."""
        counts: dict[int, int] = {}
        for entry in self.clients():
            name = entry.get("name", "")
            if name.startswith("pid-"):
                pid = int(name[4:])
                counts[pid] = counts.get(pid, 0) + 1
        return counts

    def opened(self) -> int:
        """Connections Redis accepted since it started (``INFO stats``), the tests' own included."""
        return int(self.client.info("stats")["total_connections_received"])


@contextlib.contextmanager
def redis_server(timeout: float = 10.0) -> Iterator[Redis]:
    """Start a private ``redis-server``; yield it once it answers PING; stop it on exit."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise AssertionError(INSTALL)
    with tempfile.TemporaryDirectory(prefix="redis-") as tmp:
        root = Path(tmp)
        sock, log = root / "redis.sock", root / "redis.log"
        args = [binary, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
        args += ["--save", "", "--appendonly", "no", "--dir", tmp, "--logfile", str(log)]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        client = redis.Redis(unix_socket_path=str(sock), client_name="test")
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    text = log.read_text() if log.exists() else ""
                    raise AssertionError(f"redis-server exited with {proc.returncode}:\n{text}")
                try:
                    if sock.exists() and client.ping():
                        break
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"redis-server did not answer within {timeout} s")
                time.sleep(0.02)
            yield Redis(str(sock), log, client)
        finally:
            client.close()
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
