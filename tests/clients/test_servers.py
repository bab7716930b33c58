"""Declared clients under real servers: one set per process, used by views, closed at shutdown.

``tests.projects.clientsapp`` declares an httpx client and an aiohttp session pointed at a loopback
upstream (``bench.upstream``); its views call the upstream through ``clients[...]``. Each process
records the clients' open and close steps and its startup receiver's view of them in an events
file. Servers run as subprocesses on port 0 and stop with SIGTERM.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.harness.catalogue import (
    GRANIAN,
    GUNICORN,
    HYPERCORN,
    RUNASGI,
    UPSTREAM,
    UVICORN,
    assert_clean,
)
from tests.harness.servers import (
    ServerProcess,
    events_by_pid,
    get_json,
    read_events,
    traceback_exceptions,
    wait_until,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")

SETTINGS = "tests.projects.clientsapp.settings"
TIMEOUT = 20.0
OPENING = {"startup httpx", "startup aiohttp"}
# Closed concurrently (started in the reverse of the declaration order): they end in any order.
CLOSING = {"shutdown aiohttp", "shutdown httpx"}


@pytest.fixture(scope="module")
def upstream():
    with ServerProcess.of(UPSTREAM, settings=SETTINGS) as proc:
        proc.wait_ready("/", TIMEOUT)
        yield proc.base


def startups(events):
    return {event["pid"]: event for event in events if event["event"] == "startup receiver"}


@pytest.mark.parametrize(
    "server", [server.param() for server in (UVICORN, RUNASGI, GUNICORN, HYPERCORN, GRANIAN)]
)
def test_views_share_one_set_of_clients_per_process_closed_at_shutdown(
    server, upstream, serve, events
):
    events_file = events
    proc = serve(server, settings=SETTINGS, env={"LIFESPAN_TEST_CLIENTS_UPSTREAM": upstream})
    proc.wait_ready("/health/", TIMEOUT)
    base = proc.base
    wait_until(
        lambda: len(startups(read_events(events_file))) >= server.processes,
        TIMEOUT,
        f"{server.processes} startup receivers",
    )
    responses = [get_json(f"{base}/") for _ in range(8)]
    sync_responses = [get_json(f"{base}/sync/") for _ in range(3)]
    returncode = proc.stop(timeout=TIMEOUT)
    output = proc.output()

    assert returncode == server.stopped_exit, output
    events = read_events(events_file)
    opened = startups(events)
    assert len(opened) == server.processes, events
    for names in events_by_pid(events).values():
        assert set(names[:2]) == OPENING, events
        assert names[2] == "startup receiver", events
        assert len(names) == 5, events
        assert set(names[3:]) == CLOSING, events
    served = {response["pid"] for response in responses}
    for event in events:
        if event["event"] in OPENING | CLOSING:
            assert event["ok"], event
        if event["event"] in CLOSING and event["pid"] in served:
            assert event["closed"] is True, event  # the very clients the views used

    for response in responses:
        assert response["upstream"] == ["upstream", "upstream"], response
        startup = opened[response["pid"]]  # the process's one client served every request
        assert (response["httpx"], response["aiohttp"]) == (startup["httpx"], startup["aiohttp"])
    for response in sync_responses:
        assert response["status"] == 200
        assert response["httpx"] == opened[response["pid"]]["httpx"]

    assert_clean(output, "Traceback", "ResourceWarning")


@pytest.mark.parametrize("server", [UVICORN.param(), RUNASGI.param()])
def test_a_client_that_fails_to_open_stops_the_server_and_the_open_ones_close(
    server, upstream, serve, events: Path
):
    events_file = events
    env = {"LIFESPAN_TEST_CLIENTS_UPSTREAM": upstream, "LIFESPAN_TEST_CLIENTS_FAIL": "1"}
    proc = serve(server, settings=SETTINGS, env=env)
    returncode = proc.wait_exit(TIMEOUT)
    output = proc.output()

    assert returncode in server.failed_exits, output
    # The report names the alias and the backend; a SystemExit from a backend is its failure.
    assert (
        "LIFESPAN_SIGNALS_CLIENTS['broken'] (tests.clients.backends.failing) raised SystemExit: 2"
        in output
    )
    events = read_events(events_file)
    [names] = events_by_pid(events).values()
    assert set(names[:3]) == {*OPENING, "startup broken"}, events
    assert len(names) == 5, events  # no receiver ran
    assert set(names[3:]) == CLOSING, events  # both open ones closed
    assert all(event["ok"] for event in events if event["event"] != "startup broken"), events
    assert_clean(output)
    assert set(traceback_exceptions(output)) == {"SystemExit: 2"}, output
