"""Declared clients under real servers: one set per process, used by views, closed at shutdown.

``tests.clientsapp`` declares an httpx client and an aiohttp session pointed at a loopback
upstream (``bench.upstream``); its views call the upstream through ``clients[...]``. Each process
records the clients' open and close steps and its startup receiver's view of them in an events
file. Servers run as subprocesses on free ports and stop with SIGTERM.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.servers import (
    ServerProcess,
    events_by_pid,
    free_port,
    get_json,
    read_events,
    traceback_exceptions,
    wait_until,
)
from tests.test_servers import LEAKS, SERVERS, Server

pytestmark = [
    pytest.mark.servers,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups"),
]

SETTINGS = "tests.clientsapp.settings"
TIMEOUT = 20.0
RUNASGI = Server(
    "runasgi",
    "django",  # what it needs; command() builds its command line
    lambda port: [],
    stopped_exit=0,
    failed_exits=(1,),
)
CATALOGUE = {server.name: server for server in SERVERS}
SERVED = ["uvicorn-lifespan-on", "runasgi", "gunicorn-uvicorn-worker", "hypercorn", "granian"]
OPENED = {"startup httpx", "startup aiohttp"}
CLOSED = ["shutdown aiohttp", "shutdown httpx"]  # the reverse of the declaration order


def command(name: str, port: int) -> list[str]:
    if name == "runasgi":
        return [sys.executable, "manage.py", "runasgi", "--noreload", f"127.0.0.1:{port}"]
    return CATALOGUE[name].args(port)


def server_for(name: str) -> Server:
    return RUNASGI if name == "runasgi" else CATALOGUE[name]


@pytest.fixture(scope="module")
def upstream():
    port = free_port()
    with ServerProcess(
        [sys.executable, "-m", "bench.upstream", str(port)], settings=SETTINGS
    ) as proc:
        proc.wait_ready(f"http://127.0.0.1:{port}/", TIMEOUT)
        yield f"http://127.0.0.1:{port}"


def startups(events):
    return {event["pid"]: event for event in events if event["event"] == "startup receiver"}


@pytest.mark.parametrize("name", SERVED)
def test_views_share_one_set_of_clients_per_process_closed_at_shutdown(name, upstream, tmp_path):
    server = server_for(name)
    for module in (server.module, *server.requires):
        pytest.importorskip(module)
    events_file = tmp_path / "events.jsonl"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"LIFESPAN_TEST_EVENTS": str(events_file), "CLIENTS_UPSTREAM": upstream}

    with ServerProcess(command(name, port), settings=SETTINGS, env=env) as proc:
        proc.wait_ready(f"{base}/health/", TIMEOUT)
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
        assert set(names[:2]) == OPENED, events
        assert names[2:] == ["startup receiver", *CLOSED], events
    served = {response["pid"] for response in responses}
    for event in events:
        if event["event"] in OPENED | set(CLOSED):
            assert event["ok"], event
        if event["event"] in CLOSED and event["pid"] in served:
            assert event["closed"] is True, event  # the very clients the views used

    for response in responses:
        assert response["upstream"] == ["upstream", "upstream"], response
        startup = opened[response["pid"]]  # the process's one client served every request
        assert (response["httpx"], response["aiohttp"]) == (startup["httpx"], startup["aiohttp"])
    for response in sync_responses:
        assert response["status"] == 200
        assert response["httpx"] == opened[response["pid"]]["httpx"]

    for text in (*LEAKS, "Traceback", "ResourceWarning"):
        assert text not in output, output


@pytest.mark.parametrize("name", ["uvicorn-lifespan-on", "runasgi"])
def test_a_client_that_fails_to_open_stops_the_server_and_the_open_ones_close(
    name, upstream, tmp_path: Path
):
    server = server_for(name)
    events_file = tmp_path / "events.jsonl"
    env = {
        "LIFESPAN_TEST_EVENTS": str(events_file),
        "CLIENTS_UPSTREAM": upstream,
        "CLIENTS_FAIL": "1",
    }
    with ServerProcess(command(name, free_port()), settings=SETTINGS, env=env) as proc:
        returncode = proc.wait_exit(TIMEOUT)
        output = proc.output()

    assert returncode in server.failed_exits, output
    # The report names the alias and the backend; a SystemExit from a backend is its failure.
    assert (
        "LIFESPAN_SIGNALS_CLIENTS['broken'] (tests.clientbackends.failing) raised SystemExit: 2"
        in output
    )
    events = read_events(events_file)
    [names] = events_by_pid(events).values()
    assert set(names[:3]) == {*OPENED, "startup broken"}, events
    assert names[3:] == CLOSED, events  # no receiver ran; the open ones closed, in reverse
    assert all(event["ok"] for event in events if event["event"] != "startup broken"), events
    for text in LEAKS:
        assert text not in output, output
    assert set(traceback_exceptions(output)) == {"SystemExit: 2"}, output
