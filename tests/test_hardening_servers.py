"""Hardening under real servers: BaseException from receivers and resources, a receiver that
blocks the loop, a receiver held only by the signal under ``DEBUG=False``, a client rotated after
startup under granian, a wrapped Starlette app's lifespan, and split settings with ``runasgi``.

``tests.hardapp`` adds, as the environment asks, receivers and resources that raise or block to
``tests.serverapp``'s healthy ones (an aiohttp session and an httpx client opened at startup,
closed at shutdown). Each test starts the real server on a free loopback port, stops it with
SIGTERM (or waits for it to refuse to start) and checks exit code, recorded events and output.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import (
    ServerProcess,
    events_by_pid,
    free_port,
    get_json,
    http_get,
    read_events,
    wait_until,
)

pytestmark = [
    pytest.mark.servers,
    pytest.mark.faults,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups"),
]

SETTINGS = "tests.hardapp.settings"
APP = "tests.serverapp.asgi:application"
TIMEOUT = 30.0
CLOSED = {"aiohttp": {"same": True, "closed": True}, "httpx": {"same": True, "closed": True}}
LEAKS = (
    "Unclosed client session",
    "Unclosed connector",
    "unclosed transport",
    "Task was destroyed",
    "Exception ignored",
)
RAISER = "tests.hardapp.apps._raiser.<locals>.raises"


@dataclass(frozen=True)
class Target:
    name: str
    command: Callable[[int, str], list[str]]  # port, application -> argv
    failed_exit: int  # Popen.returncode when lifespan startup fails
    stopped_exit: int = 0


def _uvicorn(port: int, app: str) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), app]


def _hypercorn(port: int, app: str) -> list[str]:
    return [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}", app]


def _granian(port: int, app: str) -> list[str]:
    options = ["--interface", "asgi", "--host", "127.0.0.1", "--port", str(port)]
    return [sys.executable, "-m", "granian", *options, app]


def _runasgi(port: int, app: str) -> list[str]:
    return [sys.executable, "manage.py", "runasgi", "--noreload", f"127.0.0.1:{port}"]


# Exit codes as test_servers.py explains them: uvicorn 3 on a failed startup (also with the
# default --lifespan auto) and death by its re-raised SIGTERM; hypercorn 0.18 exits 0 either way.
UVICORN = Target("uvicorn", _uvicorn, 3, -signal.SIGTERM)
HYPERCORN = Target("hypercorn", _hypercorn, 0)
GRANIAN = Target("granian", _granian, 1)
RUNASGI = Target("runasgi", _runasgi, 1)


def server(target: Target, events: Path, app: str = APP, **env: str) -> tuple[ServerProcess, str]:
    port = free_port()
    env = {"LIFESPAN_TEST_EVENTS": str(events), **env}
    return ServerProcess(target.command(port, app), settings=SETTINGS, env=env), (
        f"http://127.0.0.1:{port}"
    )


def assert_refused_to_start(target: Target, events: Path, raised: str, **env: str) -> str:
    """Start ``target``; it must exit with its failure code, having closed what it opened."""
    proc, _ = server(target, events, **env)
    launched = time.monotonic()
    with proc:
        returncode = proc.wait_exit(TIMEOUT)
        elapsed = time.monotonic() - launched
        output = proc.output()
    print(f"\n{target.name}: {raised} at startup: exit {returncode} after {elapsed:.2f} s")
    assert returncode == target.failed_exit, output
    assert raised in output, output
    assert "appears unsupported" not in output, output  # uvicorn --lifespan auto
    by_pid = events_by_pid(read_events(events))
    assert len(by_pid) == 1, by_pid
    [names] = by_pid.values()
    assert names[0] == "startup" or names[0] == "resource-enter", names
    assert names[-1] == "shutdown", names  # what was opened got closed
    for event in read_events(events):
        if event["event"] == "shutdown" and "aiohttp" in event["clients"]:
            assert event["clients"] == CLOSED, event
    for leak in LEAKS:
        assert leak not in output, output
    return output


@pytest.mark.parametrize("target", [UVICORN, HYPERCORN, GRANIAN, RUNASGI], ids=lambda t: t.name)
def test_system_exit_in_a_startup_receiver_stops_every_server(target: Target, tmp_path: Path):
    assert_refused_to_start(
        target,
        tmp_path / "events.jsonl",
        f"{RAISER} raised SystemExit: SystemExit from the test",
        LIFESPAN_TEST_RAISE="startup:receiver:SystemExit",
    )


@pytest.mark.parametrize("name", ["KeyboardInterrupt", "CancelledError", "GeneratorExit", "Custom"])
def test_other_base_exceptions_in_a_startup_receiver_under_uvicorn_auto(name: str, tmp_path: Path):
    kind = {"CancelledError": "asyncio.CancelledError", "Custom": "tests.hardapp.apps.Custom"}
    assert_refused_to_start(
        UVICORN,
        tmp_path / "events.jsonl",
        f"{RAISER} raised {kind.get(name, name)}: {name} from the test",
        LIFESPAN_TEST_RAISE=f"startup:receiver:{name}",
    )


@pytest.mark.parametrize("target", [UVICORN, GRANIAN], ids=lambda t: t.name)
def test_cancelled_error_from_a_resource_stops_the_server(target: Target, tmp_path: Path):
    output = assert_refused_to_start(
        target,
        tmp_path / "events.jsonl",
        "_raising_resource.<locals>.raising_resource raised asyncio.CancelledError",
        LIFESPAN_TEST_RAISE="startup:resource:CancelledError",
    )
    assert "Lifespan startup failed" in output


@pytest.mark.parametrize("name", ["SystemExit", "CancelledError"])
def test_base_exception_in_a_shutdown_receiver_the_others_still_run(name: str, tmp_path: Path):
    events = tmp_path / "events.jsonl"
    proc, base = server(UVICORN, events, LIFESPAN_TEST_RAISE=f"shutdown:receiver:{name}")
    with proc:
        proc.wait_ready(f"{base}/health/", TIMEOUT)
        returncode = proc.stop(timeout=TIMEOUT)
        output = proc.output()
    assert returncode == UVICORN.stopped_exit, output
    [names] = events_by_pid(read_events(events)).values()
    assert names[0] == "startup", names  # then the shutdown receivers, concurrently
    assert sorted(names[1:]) == ["healthy-shutdown", "raise-shutdown", "shutdown"], names
    [shutdown] = [event for event in read_events(events) if event["event"] == "shutdown"]
    assert shutdown["clients"] == CLOSED
    assert f"{RAISER} raised" in output, output
    assert "Lifespan shutdown failed (1 failure)" in output, output
    for leak in LEAKS:
        assert leak not in output, output


def test_a_nested_receiver_connected_in_ready_runs_with_debug_false(tmp_path: Path):
    events = tmp_path / "events.jsonl"
    proc, base = server(UVICORN, events, LIFESPAN_TEST_NESTED="1")  # settings: DEBUG = False
    with proc:
        proc.wait_ready(f"{base}/health/", TIMEOUT)
        returncode = proc.stop(timeout=TIMEOUT)
        output = proc.output()
    assert returncode == UVICORN.stopped_exit, output
    [names] = events_by_pid(read_events(events)).values()
    assert sorted(names) == ["nested-startup", "shutdown", "startup"], names


def test_a_receiver_blocking_the_loop_is_named(tmp_path: Path):
    events = tmp_path / "events.jsonl"
    output = assert_refused_to_start(
        UVICORN,
        events,
        "tests.hardapp.apps.block timed out: ran",
        LIFESPAN_TEST_BLOCK="2.5",
        LIFESPAN_SIGNALS_STARTUP_TIMEOUT="1",
    )
    assert "past the 1 s budget (LIFESPAN_SIGNALS_STARTUP_TIMEOUT); it blocked the event loop" in (
        output
    )
    assert "open_clients timed out" not in output  # the innocent


def test_granian_closes_a_client_rotated_after_startup(tmp_path: Path):
    events = tmp_path / "events.jsonl"
    proc, base = server(GRANIAN, events)
    with proc:
        proc.wait_ready(f"{base}/health/", TIMEOUT)
        rotated = get_json(f"{base}/rotate/")["aiohttp"]
        assert get_json(f"{base}/")["aiohttp"] == rotated  # later requests get the new one
        returncode = proc.stop(timeout=TIMEOUT)
        output = proc.output()
    assert returncode == 0, output
    [shutdown] = [event for event in read_events(events) if event["event"] == "shutdown"]
    assert shutdown["clients"] == CLOSED, shutdown  # "same": the rotated one, closed
    for leak in LEAKS:
        assert leak not in output, output


def test_a_wrapped_starlette_apps_lifespan_runs_inside_ours(tmp_path: Path):
    events = tmp_path / "events.jsonl"
    proc, base = server(UVICORN, events, app="tests.hardapp.starlette:application")
    with proc:
        wait_until(lambda: len(read_events(events)) >= 2, TIMEOUT, "both startups")
        proc.wait_ready(f"{base}/keys/", TIMEOUT)
        keys = get_json(f"{base}/keys/")
        returncode = proc.stop(timeout=TIMEOUT)
        output = proc.output()
    assert returncode == UVICORN.stopped_exit, output
    [names] = events_by_pid(read_events(events)).values()
    assert names == ["startup", "starlette-startup", "starlette-shutdown", "shutdown"], names
    assert keys == ["aiohttp", "httpx", "starlette"], keys
    for leak in (*LEAKS, "Traceback"):
        assert leak not in output, output


def test_runasgi_finds_the_application_of_split_settings(tmp_path: Path):
    events = tmp_path / "events.jsonl"
    port = free_port()
    proc = ServerProcess(
        _runasgi(port, ""),
        settings="tests.splitproject.settings.production",
        env={"LIFESPAN_TEST_EVENTS": str(events)},
    )
    with proc:
        proc.wait_ready(f"http://127.0.0.1:{port}/health/", TIMEOUT)
        status, _ = http_get(f"http://127.0.0.1:{port}/")
        returncode = proc.stop(timeout=TIMEOUT)
        output = proc.output()
    assert returncode == 0, output
    assert status == 200, output
    [names] = events_by_pid(read_events(events)).values()
    assert names == ["startup", "shutdown"], names
