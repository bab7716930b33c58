"""The package under real ASGI servers: lifespan runs once per process, state reaches requests.

Each test starts a server as a subprocess on port 0 with ``tests.projects.serverapp`` (whose
receivers open an aiohttp session and an httpx client at startup and close them at shutdown,
recording both in an events file), sends real HTTP requests, stops it with SIGTERM and checks exit
code, events and output.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.harness.catalogue import (
    CLOSED,
    GRANIAN,
    GUNICORN,
    HYPERCORN,
    UVICORN,
    UVICORN_AUTO,
    Server,
)
from tests.harness.catalogue import assert_clean as assert_no_leaks
from tests.harness.servers import (
    events_by_pid,
    get_json,
    read_events,
    traceback_exceptions,
    wait_until,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")

SETTINGS = "tests.projects.serverapp.settings"
TIMEOUT = 20.0  # seconds, for each of: becoming ready, stopping, exiting on a failed startup
CLIENTS = ("aiohttp", "httpx")
REPORTED = "RuntimeError: boom at startup"  # how the failing receiver's tracebacks end
SERVERS = [UVICORN, UVICORN_AUTO, HYPERCORN, GRANIAN, GUNICORN]


def _params() -> list[Any]:
    return [server.param() for server in SERVERS]


def count_events(path: Path, name: str) -> int:
    return sum(event["event"] == name for event in read_events(path))


@pytest.mark.parametrize("server", _params())
def test_clients_are_shared_per_process_and_closed_at_shutdown(
    server: Server, serve, events: Path
) -> None:
    events_file = events
    proc = serve(server, settings=SETTINGS)
    proc.wait_ready("/health/", TIMEOUT)
    base = proc.base
    # gunicorn may answer from one worker while the other is still starting.
    wait_until(
        lambda: count_events(events_file, "startup") >= server.processes,
        TIMEOUT,
        f"{server.processes} startup events",
    )
    responses = [get_json(f"{base}/") for _ in range(8)]
    returncode = proc.stop(timeout=TIMEOUT)
    output = proc.output()

    assert returncode == server.stopped_exit, output
    events = read_events(events_file)
    startups = {event["pid"]: event for event in events if event["event"] == "startup"}
    assert len(startups) == server.processes, events
    assert events_by_pid(events) == {pid: ["startup", "shutdown"] for pid in startups}, events
    for event in events:
        if event["event"] == "shutdown":
            assert event["clients"] == CLOSED, event

    for response in responses:
        # Every request sees the very clients its process opened at startup, still open ...
        startup = startups[response["pid"]]
        assert (response["aiohttp"], response["httpx"]) == (startup["aiohttp"], startup["httpx"])
        assert not response["aiohttp_closed"]
        assert not response["httpx_closed"]
        # ... and its own copy of the state: no key from an earlier request leaks into it.
        assert set(CLIENTS) <= set(response["state_keys"]), response
        assert not [key for key in response["state_keys"] if key.startswith("req-")], response

    assert_no_leaks(output, "Traceback", "ResourceWarning")
    # The package's own INFO lines reach stderr, once per process.
    assert output.count("Lifespan startup complete") == server.processes, output
    assert output.count("Lifespan shutdown complete") == server.processes, output


@pytest.mark.parametrize("server", _params())
def test_failing_startup_receiver_stops_the_server_and_closes_clients(
    server: Server, serve, events: Path
) -> None:
    events_file = events
    proc = serve(server, settings=SETTINGS, env={"LIFESPAN_TEST_FAIL_STARTUP": "1"})
    returncode = proc.wait_exit(TIMEOUT)
    output = proc.output()

    assert returncode in server.failed_exits, output
    assert "tests.projects.serverapp.apps.fail_startup" in output
    assert "RuntimeError" in output

    # Every process that started up ran the failing receiver, then shutdown, which closed what
    # the healthy receiver had opened. (gunicorn may halt before its second worker starts.)
    events = read_events(events_file)
    by_pid = events_by_pid(events)
    assert 1 <= len(by_pid) <= server.processes, events
    for names in by_pid.values():
        assert Counter(names) == {"startup": 1, "fail_startup": 1, "shutdown": 1}, events
        assert names[-1] == "shutdown", events
    for event in events:
        if event["event"] == "shutdown":
            assert event["clients"] == CLOSED, event

    assert_no_leaks(output)
    warnings = re.findall(r"ResourceWarning: (.*)", output)
    hint = "Enable tracemalloc to get the object allocation traceback"
    expected = (hint, *server.failure_resource_warnings)
    assert [text for text in warnings if not text.startswith(expected)] == [], output
    # The tracebacks: the failing receiver's, in the report (logged by the package, and by the
    # server if it logs the failure message), plus those the server prints when it stops.
    exceptions = traceback_exceptions(output)
    assert any(line.startswith(REPORTED) for line in exceptions), output
    others = [line for line in exceptions if not line.startswith(REPORTED)]
    assert [line for line in others if not line.startswith(server.failure_tracebacks)] == []
    if server is HYPERCORN:
        assert len(others) == 1, output
