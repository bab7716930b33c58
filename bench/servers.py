"""Servers as subprocesses on loopback port 0 (the tests' harness), and wrk to load them."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.harness.catalogue import Server
from tests.harness.servers import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 32
WRK = ["wrk", "-t2", f"-c{CONNECTIONS}", "--timeout", "10s"]

# Taken out of every server's environment: proxies (all traffic is loopback) and debug modes.
CLEAN_ENV: dict[str, str | None] = {
    key: None
    for key in os.environ
    if "proxy" in key.lower() or key in {"PYTHONASYNCIODEBUG", "PYTHONWARNINGS"}
} | {"PYTHONDEVMODE": None}


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Running:
    process: ServerProcess
    url: str


@contextlib.contextmanager
def serve(
    server: Server, app: str, options: Sequence[str], env: dict[str, str], path: str, log: Path
) -> Iterator[Running]:
    """Start ``server`` on port 0, wait until ``path`` answers 200; SIGTERM it at the end.

    Its output is written to ``log`` once it has stopped.
    """
    settings = env.get("DJANGO_SETTINGS_MODULE", "bench.settings")
    process = ServerProcess.of(server, *options, app=app, settings=settings, env=CLEAN_ENV | env)
    try:
        process.start()
        process.wait_ready(path, 60)
        yield Running(process, process.url(path))
    finally:
        if process.returncode is None:
            with contextlib.suppress(AssertionError):  # still running after 15 s: killed below
                process.stop(timeout=15)
        process.kill()
        log.write_text(process.output())


def wrk(url: str, seconds: int, connections: int = CONNECTIONS) -> tuple[float, int]:
    """Requests/s that wrk's connections get from ``url``, and the requests it completed.

    Fails on any non-2xx answer; gives (0.0, 0) when no request completed.

    Requests/s is connections / mean latency (Little's law: each connection sends its next request
    as soon as it has an answer), not requests completed in the window: a server that blocks
    its loop (creating an httpx client per request does) answers in waves of CONNECTIONS, and a
    window of a few seconds holds one wave or two: counting them would halve or double its figure.
    """
    command = [*WRK, f"-d{seconds}s", url]
    if connections != CONNECTIONS:
        command[2] = f"-c{connections}"
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
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
    return connections / seconds_each, int(completed[1])


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) so far of every process in process group ``pgid``."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid:  # field 5 of stat, the process group
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def settle(pid: int, timeout: float = 10, *, clock: Callable[[int], float] = cpu_seconds) -> None:
    """Wait until server ``pid`` is idle: what it still owes the last run must not slow the next.
    ``clock``: its CPU seconds (``group_cpu_seconds`` for a whole process group)."""
    deadline = time.monotonic() + timeout
    before = clock(pid)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = clock(pid)
        if now - before <= 0.01:
            return
        before = now
