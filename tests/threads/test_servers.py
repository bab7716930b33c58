"""Request threads under real servers: reused with the setting, one request per thread at a time.

``tests.projects.threadapp`` has a sync ``request_started`` receiver, a sync-only middleware and
sync views that check one request's sync code runs in one thread, which no other request holds
meanwhile (thread objects are marked: idents are reused). Each test sends rounds of 64 concurrent
requests, then sequential ones, and stops the server with SIGTERM.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.harness.catalogue import GUNICORN, RUNASGI, UVICORN, Server, assert_clean
from tests.harness.in_process import needs_request_threads
from tests.harness.servers import get_json, read_events, wait_until

pytestmark = [
    pytest.mark.servers,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups"),
]

APP = "tests.projects.threadapp.asgi:application"
SETTINGS = "tests.projects.threadapp.settings"
TIMEOUT = 30.0
KEPT = 4  # LIFESPAN_SIGNALS_REQUEST_THREADS in the "on" runs
CONCURRENT = 64
SERVERS = [UVICORN.param(), RUNASGI.param(), GUNICORN.param()]


def _load(
    base: str, between: Callable[[], None]
) -> tuple[dict[int, set[str]], dict[int, list[str]], dict[int, set[str]]]:
    """Three rounds of 64 concurrent requests, ``between()``, then 20 one after another.

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
    between()
    for _ in range(20):
        answer = get(f"{base}/")
        sequential[answer["pid"]].append(answer["thread"])  # type: ignore[index, arg-type]
    return burst, sequential, violations


def _run(
    serve, server: Server, threads: int | None, events: Path
) -> tuple[dict[int, set[str]], dict[int, list[str]]]:
    env = {} if threads is None else {"LIFESPAN_TEST_REQUEST_THREADS": str(threads)}
    proc = serve(server, settings=SETTINGS, app=APP, env=env)
    proc.wait_ready("/health/", TIMEOUT)
    base = proc.base

    def settle() -> None:
        """The extra threads of the bursts end; each process keeps at most ``threads``."""
        if threads is None:
            return
        alive: dict[int, int] = {}

        def settled() -> bool:
            report = get_json(f"{base}/report/")
            alive[report["pid"]] = len(report["request_threads_alive"])
            return len(alive) == server.processes and max(alive.values()) <= threads

        wait_until(settled, TIMEOUT, f"at most {threads} request threads per process")

    # Settled before the sequential requests too: a burst's last requests may still be handing
    # their threads back as the first of them arrives (and a thread kept then is one more).
    burst, sequential, violations = _load(base, settle)
    settle()
    returncode = proc.stop(timeout=TIMEOUT)
    output = proc.output()
    assert returncode == server.stopped_exit, output
    assert_clean(output, "Traceback", "ResourceWarning")
    assert len(burst) == server.processes, burst
    assert all(not found for found in violations.values()), violations
    exits = [event for event in read_events(events) if event["event"] == "exit"]
    assert len(exits) == server.processes, (exits, output)
    # Stopped at lifespan shutdown: no request thread outlives the server.
    assert [event["alive"] for event in exits] == [[]] * server.processes, exits
    return burst, sequential


@needs_request_threads
@pytest.mark.parametrize("server", SERVERS)
def test_request_threads_are_reused_one_request_at_a_time(serve, server, events) -> None:
    burst, sequential = _run(serve, server, KEPT, events)
    for pid, threads in sequential.items():
        # The requests that came one by one all ran in threads kept from the bursts.
        assert len(set(threads)) <= KEPT, (pid, threads)
        assert set(threads) <= burst[pid], (pid, threads, burst[pid])


@pytest.mark.parametrize("server", SERVERS)
def test_without_the_setting_each_request_gets_a_new_thread(serve, server, events) -> None:
    burst, sequential = _run(serve, server, None, events)
    for pid, threads in sequential.items():
        assert len(set(threads)) == len(threads), (pid, threads)  # Django's: a new one each
        assert not set(threads) & burst[pid], (pid, threads)
