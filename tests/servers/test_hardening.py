"""Hardening under real servers: BaseException from receivers and resources, a receiver that
blocks the loop, a receiver held only by the signal under ``DEBUG=False``, a client rotated after
startup under granian, a wrapped Starlette app's lifespan, and split settings with ``runasgi``.

``tests.projects.hardapp`` adds, as the environment asks, receivers and resources that raise or
block to ``tests.projects.serverapp``'s healthy ones (an aiohttp session and an httpx client opened
at startup, closed at shutdown). Each test starts the real server on loopback port 0, stops it with
SIGTERM (or waits for it to refuse to start) and checks exit code, recorded events and output.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.harness.catalogue import CLOSED, GRANIAN, HYPERCORN, RUNASGI, Server, assert_clean
from tests.harness.catalogue import UVICORN_AUTO as UVICORN
from tests.harness.servers import events_by_pid, get_json, http_get, read_events, wait_until

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")

SETTINGS = "tests.projects.hardapp.settings"
TIMEOUT = 30.0
RAISER = "tests.projects.hardapp.apps._raiser.<locals>.raises"


def assert_refused_to_start(serve, target: Server, events: Path, raised: str, **env: str) -> str:
    """Start ``target``; it must exit with its failure code, having closed what it opened."""
    launched = time.monotonic()
    proc = serve(target, settings=SETTINGS, env=env)
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
    assert_clean(output)
    return output


@pytest.mark.parametrize("target", [UVICORN, HYPERCORN, GRANIAN, RUNASGI], ids=lambda t: t.name)
def test_system_exit_in_a_startup_receiver_stops_every_server(serve, target: Server, events):
    assert_refused_to_start(
        serve,
        target,
        events,
        f"{RAISER} raised SystemExit: SystemExit from the test",
        LIFESPAN_TEST_RAISE="startup:receiver:SystemExit",
    )


@pytest.mark.parametrize("name", ["KeyboardInterrupt", "CancelledError", "GeneratorExit", "Custom"])
def test_other_base_exceptions_in_a_startup_receiver_under_uvicorn_auto(serve, name: str, events):
    kind = {
        "CancelledError": "asyncio.CancelledError",
        "Custom": "tests.projects.hardapp.apps.Custom",
    }
    assert_refused_to_start(
        serve,
        UVICORN,
        events,
        f"{RAISER} raised {kind.get(name, name)}: {name} from the test",
        LIFESPAN_TEST_RAISE=f"startup:receiver:{name}",
    )


@pytest.mark.parametrize("target", [UVICORN, GRANIAN], ids=lambda t: t.name)
def test_cancelled_error_from_a_resource_stops_the_server(serve, target: Server, events):
    output = assert_refused_to_start(
        serve,
        target,
        events,
        "_raising_resource.<locals>.raising_resource raised asyncio.CancelledError",
        LIFESPAN_TEST_RAISE="startup:resource:CancelledError",
    )
    assert "Lifespan startup failed" in output


@pytest.mark.parametrize("name", ["SystemExit", "CancelledError"])
def test_base_exception_in_a_shutdown_receiver_the_others_still_run(serve, name: str, events):
    proc = serve(
        UVICORN, settings=SETTINGS, env={"LIFESPAN_TEST_RAISE": f"shutdown:receiver:{name}"}
    )
    proc.wait_ready("/health/", TIMEOUT)
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
    assert_clean(output)


def test_a_nested_receiver_connected_in_ready_runs_with_debug_false(serve, events):
    proc = serve(UVICORN, settings=SETTINGS, env={"LIFESPAN_TEST_NESTED": "1"})  # DEBUG = False
    proc.wait_ready("/health/", TIMEOUT)
    returncode = proc.stop(timeout=TIMEOUT)
    output = proc.output()
    assert returncode == UVICORN.stopped_exit, output
    [names] = events_by_pid(read_events(events)).values()
    assert sorted(names) == ["nested-startup", "shutdown", "startup"], names


def test_a_receiver_blocking_the_loop_is_named(serve, events):
    output = assert_refused_to_start(
        serve,
        UVICORN,
        events,
        "tests.projects.hardapp.apps.block timed out: ran",
        LIFESPAN_TEST_BLOCK="2.5",
        LIFESPAN_SIGNALS_STARTUP_TIMEOUT="1",
    )
    assert "past the 1 s budget (LIFESPAN_SIGNALS_STARTUP_TIMEOUT); it blocked the event loop" in (
        output
    )
    assert "open_clients timed out" not in output  # the innocent


def test_granian_closes_a_client_rotated_after_startup(serve, events):
    proc = serve(GRANIAN, settings=SETTINGS)
    proc.wait_ready("/health/", TIMEOUT)
    base = proc.base
    rotated = get_json(f"{base}/rotate/")["aiohttp"]
    assert get_json(f"{base}/")["aiohttp"] == rotated  # later requests get the new one
    returncode = proc.stop(timeout=TIMEOUT)
    output = proc.output()
    assert returncode == 0, output
    [shutdown] = [event for event in read_events(events) if event["event"] == "shutdown"]
    assert shutdown["clients"] == CLOSED, shutdown  # "same": the rotated one, closed
    assert_clean(output)


def test_a_wrapped_starlette_apps_lifespan_runs_inside_ours(serve, events):
    proc = serve(UVICORN, settings=SETTINGS, app="tests.projects.hardapp.starlette:application")
    wait_until(lambda: len(read_events(events)) >= 2, TIMEOUT, "both startups")
    proc.wait_ready("/keys/", TIMEOUT)
    keys = get_json(proc.url("/keys/"))
    returncode = proc.stop(timeout=TIMEOUT)
    output = proc.output()
    assert returncode == UVICORN.stopped_exit, output
    [names] = events_by_pid(read_events(events)).values()
    assert names == ["startup", "starlette-startup", "starlette-shutdown", "shutdown"], names
    assert keys == ["aiohttp", "httpx", "starlette"], keys
    assert_clean(output, "Traceback")


def test_runasgi_finds_the_application_of_split_settings(serve, events):
    proc = serve(RUNASGI, settings="tests.projects.splitproject.settings.production")
    proc.wait_ready("/health/", TIMEOUT)
    status, _ = http_get(proc.url("/"))
    returncode = proc.stop(timeout=TIMEOUT)
    output = proc.output()
    assert returncode == 0, output
    assert status == 200, output
    [names] = events_by_pid(read_events(events)).values()
    assert names == ["startup", "shutdown"], names
