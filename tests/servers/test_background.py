"""A task that a startup receiver leaves running is cancelled at shutdown, after the
``asgi_shutdown`` receivers, the same on every server; one that refuses to stop is named, and
the process exits anyway."""

from __future__ import annotations

import signal
import sys

import pytest

from tests.harness.catalogue import (
    GRANIAN,
    GUNICORN,
    HYPERCORN,
    LIFESPAN_DAPHNE,
    RUNASGI,
    RUNASGI_RELOAD,
    UVICORN,
    UVICORN_AUTO,
    assert_clean,
)
from tests.harness.servers import events_by_pid, read_events, wait_until

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SETTINGS = "tests.projects.faultapp.settings"
TIMEOUT = 20.0
SERVERS = [
    server.param()
    for server in (
        UVICORN,
        UVICORN_AUTO,
        HYPERCORN,
        GRANIAN,
        GUNICORN,
        RUNASGI,
        RUNASGI_RELOAD,
        LIFESPAN_DAPHNE,
    )
]


def _started(events, processes):
    by_pid = events_by_pid(read_events(events))
    return sum("bg-start" in names for names in by_pid.values()) >= processes


@pytest.mark.parametrize("server", SERVERS)
def test_a_task_left_running_by_startup_is_cancelled_after_the_shutdown_receivers(
    serve, server, events
):
    proc = serve(server, settings=SETTINGS, env={"LIFESPAN_TEST_BACKGROUND": "1"})
    proc.wait_ready("/health/", TIMEOUT)
    wait_until(lambda: _started(events, server.processes), TIMEOUT, "the background tasks")
    code = proc.stop(signal.SIGTERM, TIMEOUT)
    output = proc.output()
    assert code == server.stopped_exit, output
    for pid, names in events_by_pid(read_events(events)).items():
        assert "bg-finally" in names, (pid, names, output)
        assert names.index("shutdown") < names.index("bg-finally"), names
    assert "Lifespan shutdown complete" in output
    assert_clean(output, "Traceback")


@pytest.mark.parametrize("server", [RUNASGI.param(), LIFESPAN_DAPHNE.param(), UVICORN.param()])
def test_a_task_that_refuses_to_stop_is_named_and_the_process_exits(serve, server, events):
    env = {"LIFESPAN_TEST_BACKGROUND": "stubborn", "LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT": "1"}
    proc = serve(server, settings=SETTINGS, env=env)
    proc.wait_ready("/health/", TIMEOUT)
    wait_until(lambda: _started(events, 1), TIMEOUT, "the background task")
    code = proc.stop(signal.SIGTERM, TIMEOUT)
    output = proc.output()
    assert code == server.stopped_exit, output
    assert "bg-refuses" in [event["event"] for event in read_events(events)]
    assert (
        "background task 'poller' (tests.projects.faultapp.apps.start_background.<locals>.poll) "
        "did not finish within 1 s after it was cancelled at shutdown"
    ) in output
