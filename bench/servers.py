"""Servers as subprocesses on free loopback ports, and wrk to load them."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 32
WRK = ["wrk", "-t2", f"-c{CONNECTIONS}", "--timeout", "10s"]

# The environment of every server: no proxies (all traffic is loopback), no debug modes.
BASE_ENV = {
    key: value
    for key, value in os.environ.items()
    if "proxy" not in key.lower()
    and key not in {"PYTHONDEVMODE", "PYTHONASYNCIODEBUG", "PYTHONWARNINGS"}
} | {"PYTHONPATH": str(ROOT)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    url: str


@contextlib.contextmanager
def serve(command: list[str], env: dict[str, str], path: str, log: Path) -> Iterator[Running]:
    """Start ``command`` on a free port, wait until ``path`` answers 200; SIGTERM it at the end."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [part.format(port=port) for part in command],
            cwd=ROOT,
            env=BASE_ENV | env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}{path}"
        wait_ready(process, url, log)
        yield Running(process, url)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited ({process.returncode}):\n{tail(log)}")
        with contextlib.suppress(OSError), opener.open(url, timeout=5) as response:
            if response.status == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready after {timeout} s:\n{tail(log)}")
        time.sleep(0.1)


def wrk(url: str, seconds: int) -> tuple[float, int]:
    """Requests/s that wrk's connections get from ``url``, and the requests it completed.

    Fails on any non-2xx answer; gives (0.0, 0) when no request completed.

    Requests/s is connections / mean latency (Little's law: each connection sends its next request
    as soon as it has an answer), not requests completed in the window: a server that blocks
    its loop (creating an httpx client per request does) answers in waves of CONNECTIONS, and a
    window of a few seconds holds one wave or two: counting them would halve or double its figure.
    """
    out = subprocess.run(
        [*WRK, f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk got error responses from {url}:\n{out}")
    if "Socket errors" in out:
        print(f"  (wrk on {url}: {out.split('Socket errors:')[1].splitlines()[0].strip()})")
    completed = re.search(r"\b(\d+) requests in", out)
    latency = re.search(r"Latency\s+([\d.]+)(us|ms|s|m)\s", out)
    assert completed, out
    assert latency, out
    if completed[1] == "0":
        return 0.0, 0
    seconds_each = float(latency[1]) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}[latency[2]]
    return CONNECTIONS / seconds_each, int(completed[1])


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, timeout: float = 10) -> None:
    """Wait until server ``pid`` is idle: what it still owes the last run must not slow the next."""
    deadline = time.monotonic() + timeout
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = cpu_seconds(pid)
        if now - before <= 0.01:
            return
        before = now
