"""What tests read from servers: HTTP answers, the receivers' events, output, ports, processes;
and polling.

``tests.harness.servers`` re-exports these names (tests import them from there).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def manage_py_check(settings: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``manage.py check`` in a process of its own, with ``settings`` and ``env`` added."""
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": settings, **env}
    command = [sys.executable, "manage.py", "check"]
    return subprocess.run(command, cwd=REPO_ROOT, env=environ, capture_output=True, text=True)


# No proxies from the environment: the servers under test are on 127.0.0.1.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Compatibility only (for branches written before the catalogue): another process may take the
    port between this call and the server's bind. Start servers on port 0 and read the port back
    (``ServerProcess(..., reports_port=...)``, ``ServerProcess.of(server, ...)``).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url`` on a new connection; return the status and body (also for error statuses)."""
    try:
        with _opener.open(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET ``url`` and decode its JSON body; fail unless the status is 200."""
    status, body = http_get(url, timeout)
    assert status == 200, f"GET {url} returned {status}: {body[:2000]!r}"
    return json.loads(body)


def read_events(path: Path) -> list[dict[str, Any]]:
    """The JSON-lines events file written by the server processes (empty if none yet)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def events_by_pid(events: list[dict[str, Any]]) -> dict[int, list[str]]:
    """Each process's event names, in the order it recorded them."""
    by_pid: dict[int, list[str]] = {}
    for event in events:
        by_pid.setdefault(event["pid"], []).append(event["event"])
    return by_pid


def traceback_exceptions(output: str) -> list[str]:
    """The exception line that ends each traceback in ``output``."""
    lines = output.splitlines()
    found = []
    for index, line in enumerate(lines):
        if line.endswith("Traceback (most recent call last):"):
            following = (later for later in lines[index + 1 :] if later and not later[0].isspace())
            found.append(next(following, "<end of output>"))
    return found


def listening_ports(pgid: int) -> list[int]:
    """The 127.0.0.1 TCP ports that processes of process group ``pgid`` listen on (Linux)."""
    inodes = set()
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or os.getpgid(int(proc.name)) != pgid:
                continue
            fds = list((proc / "fd").iterdir())
        except OSError:  # gone meanwhile, or not ours to read
            continue
        for fd in fds:
            # One descriptor closed between the listing and the read (the server just hung up on
            # a client) must not hide the others, the listening socket among them.
            with contextlib.suppress(OSError):
                if (link := os.readlink(fd)).startswith("socket:["):
                    inodes.add(link[8:-1])
    ports = set()
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        address, port = fields[1].split(":")
        if fields[3] == "0A" and address == "0100007F" and fields[9] in inodes:  # LISTEN
            ports.add(int(port, 16))
    return sorted(ports)


def open_connections(port: int) -> int:
    """The TCP connections to 127.0.0.1:``port`` that its server has not closed yet (Linux)."""
    count = 0
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        address, local = fields[1].split(":")
        # ESTABLISHED, or CLOSE_WAIT: the client hung up, the server has yet to.
        if address == "0100007F" and int(local, 16) == port and fields[3] in ("01", "08"):
            count += 1
    return count


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie that nobody reaped yet does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def group_members(pgid: int) -> list[int]:
    """The running processes of process group ``pgid`` (a server's children stay in it)."""
    members: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(group) == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting for {what}.")
        time.sleep(0.05)
