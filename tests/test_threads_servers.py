"""Request threads under real servers: reused with the setting, one request per thread at a time.

``tests.threadapp`` has a sync ``request_started`` receiver, a sync-only middleware and sync views
that check one request's sync code runs in one thread, which no other request holds meanwhile
(thread objects are marked: idents are reused). Each test sends rounds of 64 concurrent requests,
then sequential ones, and stops the server with SIGTERM.
"""

from __future__ import annotations

import importlib.metadata
import signal
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.servers import ServerProcess, free_port, get_json, read_events, wait_until

pytestmark = [
    pytest.mark.servers,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups"),
]

APP = "tests.threadapp.asgi:application"
SETTINGS = "tests.threadapp.settings"
TIMEOUT = 30.0
KEPT = 4  # LIFESPAN_SIGNALS_REQUEST_THREADS in the "on" runs
CONCURRENT = 64
LEAKS = ("Traceback", "Unclosed", "Task was destroyed", "Exception ignored", "ResourceWarning")


def _uvicorn(port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "--lifespan", "on", "--port", str(port), APP]


def _runasgi(port: int) -> list[str]:
    return [sys.executable, "manage.py", "runasgi", "--noreload", f"127.0.0.1:{port}"]


def _gunicorn(port: int) -> list[str]:
    options = ["-w", "2", "-k", "uvicorn_worker.UvicornWorker", "-b", f"127.0.0.1:{port}"]
    if int(importlib.metadata.version("gunicorn").split(".")[0]) >= 27:
        options.append("--no-control-socket")
    return [sys.executable, "-m", "gunicorn", *options, APP]


# name -> (command, processes serving requests, Popen.returncode after SIGTERM)
SERVERS = {
    "uvicorn": (_uvicorn, 1, -signal.SIGTERM),
    "runasgi": (_runasgi, 1, 0),
    "gunicorn-uvicorn-worker": (_gunicorn, 2, 0),
}


def _params() -> list[object]:
    needs = {"uvicorn": "uvicorn", "runasgi": "daphne", "gunicorn-uvicorn-worker": "uvicorn_worker"}
    return [
        pytest.param(name, id=name, marks=pytest.mark.skipif(not find_spec(module), reason=module))
        for name, module in needs.items()
    ]


def _load(base: str) -> tuple[dict[int, set[str]], dict[int, list[str]], dict[int, set[str]]]:
    """Three rounds of 64 concurrent requests, then 20 one after another.

    Returns, per process: the threads seen in the concurrent rounds, in the sequential requests
    (in order), and the violations the processes reported.
    """
    burst: dict[int, set[str]] = defaultdict(set)
    sequential: dict[int, list[str]] = defaultdict(list)
    violations: dict[int, set[str]] = defaultdict(set)

    def get(url: str) -> dict[str, object]:
        answer: dict[str, object] = get_json(url, timeout=TIMEOUT)
        violations[answer["pid"]].update(answer["violations"])  # type: ignore[index, arg-type]
        return answer

    with ThreadPoolExecutor(CONCURRENT) as pool:
        for _ in range(3):
            for answer in pool.map(get, [f"{base}/?sleep=0.05"] * CONCURRENT):
                burst[answer["pid"]].add(answer["thread"])  # type: ignore[index, arg-type]
    for _ in range(20):
        answer = get(f"{base}/")
        sequential[answer["pid"]].append(answer["thread"])  # type: ignore[index, arg-type]
    return burst, sequential, violations


def _run(
    name: str, threads: int | None, events: Path
) -> tuple[dict[int, set[str]], dict[int, list[str]]]:
    command, processes, stopped = SERVERS[name]
    port = free_port()
    env = {"LIFESPAN_TEST_EVENTS": str(events)}
    if threads is not None:
        env["LIFESPAN_TEST_REQUEST_THREADS"] = str(threads)
    with ServerProcess(command(port), settings=SETTINGS, env=env) as server:
        base = f"http://127.0.0.1:{port}"
        server.wait_ready(f"{base}/health/", TIMEOUT)
        burst, sequential, violations = _load(base)
        if threads is not None:
            # The extra threads of the bursts end; each process keeps at most KEPT.
            alive: dict[int, int] = {}

            def settled() -> bool:
                report = get_json(f"{base}/report/")
                alive[report["pid"]] = len(report["request_threads_alive"])
                return len(alive) == processes and max(alive.values()) <= threads

            wait_until(settled, TIMEOUT, f"at most {threads} request threads per process")
        returncode = server.stop(timeout=TIMEOUT)
        output = server.output()
    assert returncode == stopped, output
    for leak in LEAKS:
        assert leak not in output, output
    assert len(burst) == processes, burst
    assert all(not found for found in violations.values()), violations
    exits = [event for event in read_events(events) if event["event"] == "exit"]
    assert len(exits) == processes, (exits, output)
    # Stopped at lifespan shutdown: no request thread outlives the server.
    assert [event["alive"] for event in exits] == [[]] * processes, exits
    return burst, sequential


@pytest.mark.parametrize("name", _params())
def test_request_threads_are_reused_one_request_at_a_time(name: str, tmp_path: Path) -> None:
    burst, sequential = _run(name, KEPT, tmp_path / "events.jsonl")
    for pid, threads in sequential.items():
        # The requests that came one by one all ran in threads kept from the bursts.
        assert len(set(threads)) <= KEPT, (pid, threads)
        assert set(threads) <= burst[pid], (pid, threads, burst[pid])


@pytest.mark.parametrize("name", _params())
def test_without_the_setting_each_request_gets_a_new_thread(name: str, tmp_path: Path) -> None:
    burst, sequential = _run(name, None, tmp_path / "events.jsonl")
    for pid, threads in sequential.items():
        assert len(set(threads)) == len(threads), (pid, threads)  # Django's: a new one each
        assert not set(threads) & burst[pid], (pid, threads)
