"""The package under real ASGI servers: lifespan runs once per process, state reaches requests.

Each test starts a server as a subprocess on a free port with ``tests.serverapp`` (whose receivers
open an aiohttp session and an httpx client at startup and close them at shutdown, recording both
in an events file), sends real HTTP requests, stops it with SIGTERM and checks exit code, events
and output.
"""

from __future__ import annotations

import importlib.metadata
import re
import signal
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

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

pytestmark = [
    pytest.mark.servers,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups"),
]

APP = "tests.serverapp.asgi:application"
SETTINGS = "tests.serverapp.settings"
TIMEOUT = 20.0  # seconds, for each of: becoming ready, stopping, exiting on a failed startup
CLIENTS = ("aiohttp", "httpx")
CLOSED_BY_SHUTDOWN = {client: {"same": True, "closed": True} for client in CLIENTS}
# What no run may print: aiohttp's leak warnings, asyncio's lost tasks and transports, errors
# in finalizers. A clean run prints no traceback and no ResourceWarning at all, either.
LEAKS = (
    "Unclosed client session",
    "Unclosed connector",
    "unclosed transport",
    "Task was destroyed",
    "Exception ignored",
)
REPORTED = "RuntimeError: boom at startup"  # how the failing receiver's tracebacks end


@dataclass(frozen=True)
class Server:
    name: str
    module: str  # run as ``python -m <module>``
    options: Callable[[int], list[str]]  # port -> command line options
    processes: int = 1  # how many processes run a lifespan
    stopped_exit: int = 0  # Popen.returncode after SIGTERM and a clean shutdown
    failed_exits: tuple[int, ...] = (1,)  # Popen.returncode when a startup receiver fails
    # Tracebacks (their last line) and ResourceWarnings the server itself prints when it stops
    # because startup failed: nothing to do with the application.
    failure_tracebacks: tuple[str, ...] = ()
    failure_resource_warnings: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()  # modules besides ``module``

    def args(self, port: int) -> list[str]:
        return [sys.executable, "-m", self.module, *self.options(port)]


def _uvicorn(*options: str) -> Callable[[int], list[str]]:
    return lambda port: [*options, "--host", "127.0.0.1", "--port", str(port), APP]


def _gunicorn(port: int) -> list[str]:
    options = ["-w", "2", "-k", "uvicorn_worker.UvicornWorker", "-b", f"127.0.0.1:{port}"]
    # gunicorn 27 opens a control socket under $HOME by default; the tests have no use for it.
    if int(importlib.metadata.version("gunicorn").split(".")[0]) >= 27:
        options.append("--no-control-socket")
    return [*options, APP]


SERVERS = [
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly, so it "dies" of
    # SIGTERM. lifespan.startup.failed makes it exit 3 with --lifespan on and "auto" alike.
    Server(
        "uvicorn-lifespan-on",
        "uvicorn",
        _uvicorn("--lifespan", "on"),
        stopped_exit=-signal.SIGTERM,
        failed_exits=(3,),
    ),
    Server(
        "uvicorn-lifespan-auto",
        "uvicorn",
        _uvicorn(),
        stopped_exit=-signal.SIGTERM,
        failed_exits=(3,),
    ),
    # hypercorn runs one worker process. On lifespan.startup.failed its send() raises
    # LifespanFailureError (message: the report), which kills the worker: multiprocessing prints
    # "Process SpawnProcess-1:" and that traceback. The main process then stops serving and
    # exits, but with 0: hypercorn 0.18's run() joins its (already emptied) worker list a second
    # time and that overwrites the worker's exit code 1 (pgjones/hypercorn#269, fix in PR #372).
    Server(
        "hypercorn",
        "hypercorn",
        lambda port: ["--bind", f"127.0.0.1:{port}", APP],
        failed_exits=(0,),
        failure_tracebacks=("hypercorn.utils.LifespanFailureError: Lifespan failure in startup.",),
    ),
    # granian: the worker logs the report and exits 1; the main process stops and exits 1.
    Server(
        "granian",
        "granian",
        lambda port: ["--interface", "asgi", "--host", "127.0.0.1", "--port", str(port), APP],
    ),
    # gunicorn: each uvicorn worker runs its own lifespan. A worker exiting 3 (uvicorn's startup
    # failure) makes the arbiter halt, "Reason: Worker failed to boot.", exit 3 -- unless the
    # other worker exits 3 too while halt() waits for it: then reap_workers() raises HaltServer
    # again inside halt(), uncaught (traceback, exit 1; seen under load, a long-standing arbiter
    # race, e.g. benoitc/gunicorn#2393). Its exiting workers leave their listening socket and
    # the arbiter its worker temp files unclosed (ResourceWarnings under PYTHONDEVMODE).
    Server(
        "gunicorn-uvicorn-worker",
        "gunicorn",
        _gunicorn,
        processes=2,
        failed_exits=(3, 1),
        failure_tracebacks=("gunicorn.errors.HaltServer: <HaltServer 'Worker failed to boot.' 3>",),
        failure_resource_warnings=("unclosed <socket.socket ", "unclosed file <_io.FileIO "),
        requires=("uvicorn_worker",),
    ),
]


def _params() -> list[Any]:
    params = []
    for server in SERVERS:
        missing = [name for name in (server.module, *server.requires) if not find_spec(name)]
        skip = pytest.mark.skipif(bool(missing), reason=f"{', '.join(missing)} not installed")
        params.append(pytest.param(server, id=server.name, marks=skip))
    return params


def count_events(path: Path, name: str) -> int:
    return sum(event["event"] == name for event in read_events(path))


@pytest.mark.parametrize("server", _params())
def test_clients_are_shared_per_process_and_closed_at_shutdown(
    server: Server, tmp_path: Path
) -> None:
    events_file = tmp_path / "events.jsonl"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"LIFESPAN_TEST_EVENTS": str(events_file)}

    with ServerProcess(server.args(port), settings=SETTINGS, env=env) as proc:
        proc.wait_ready(f"{base}/health/", TIMEOUT)
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
            assert event["clients"] == CLOSED_BY_SHUTDOWN, event

    for response in responses:
        # Every request sees the very clients its process opened at startup, still open ...
        startup = startups[response["pid"]]
        assert (response["aiohttp"], response["httpx"]) == (startup["aiohttp"], startup["httpx"])
        assert not response["aiohttp_closed"]
        assert not response["httpx_closed"]
        # ... and its own copy of the state: no key from an earlier request leaks into it.
        assert set(CLIENTS) <= set(response["state_keys"]), response
        assert not [key for key in response["state_keys"] if key.startswith("req-")], response

    for text in (*LEAKS, "Traceback", "ResourceWarning"):
        assert text not in output, output
    # The package's own INFO lines reach stderr, once per process.
    assert output.count("Lifespan startup complete") == server.processes, output
    assert output.count("Lifespan shutdown complete") == server.processes, output


@pytest.mark.parametrize("server", _params())
def test_failing_startup_receiver_stops_the_server_and_closes_clients(
    server: Server, tmp_path: Path
) -> None:
    events_file = tmp_path / "events.jsonl"
    env = {"LIFESPAN_TEST_EVENTS": str(events_file), "LIFESPAN_TEST_FAIL_STARTUP": "1"}

    with ServerProcess(server.args(free_port()), settings=SETTINGS, env=env) as proc:
        returncode = proc.wait_exit(TIMEOUT)
        output = proc.output()

    assert returncode in server.failed_exits, output
    assert "tests.serverapp.apps.fail_startup" in output
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
            assert event["clients"] == CLOSED_BY_SHUTDOWN, event

    for text in LEAKS:
        assert text not in output, output
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
    if server.module == "hypercorn":
        assert len(others) == 1, output
