"""A failure report is printed once per process that ran the lifespan, on every server.

uvicorn (and so gunicorn's uvicorn workers), hypercorn and granian print the
``lifespan.*.failed`` message they are sent, as the ASGI spec asks; runasgi and lifespan-daphne
leave it to the package's log. Either way each process prints the report once.
"""

from __future__ import annotations

import signal

import pytest

from tests.harness.catalogue import (
    GRANIAN,
    GUNICORN,
    HYPERCORN,
    LIFESPAN_DAPHNE,
    RUNASGI,
    UVICORN,
)
from tests.harness.servers import events_by_pid, read_events

SERVERS = [UVICORN, HYPERCORN, GRANIAN, GUNICORN, RUNASGI, LIFESPAN_DAPHNE]
FAILURE = "tests.projects.serverapp.apps.fail_startup raised RuntimeError: boom at startup"


@pytest.mark.parametrize("server", [server.param() for server in SERVERS])
def test_a_startup_failure_report_is_printed_once_per_process(server, serve, events):
    proc = serve(
        server,
        settings="tests.projects.serverapp.settings",
        env={"LIFESPAN_TEST_FAIL_STARTUP": "1"},
    )
    returncode = proc.wait_exit(30)
    output = proc.output()

    assert returncode in server.failed_exits, output
    processes = len(events_by_pid(read_events(events)))  # gunicorn may halt before its second
    assert 1 <= processes <= server.processes, output
    assert output.count("Lifespan startup failed (1 failure):") == processes, output
    assert output.count(FAILURE) == processes, output


@pytest.mark.parametrize("server", [server.param() for server in (UVICORN, RUNASGI)])
def test_a_shutdown_failure_report_is_printed_once(server, serve):
    proc = serve(
        server,
        settings="tests.projects.faultapp.settings",
        env={"LIFESPAN_TEST_FAIL_SHUTDOWN": "1"},
    )
    proc.wait_ready("/health/", 30)
    returncode = proc.stop(signal.SIGTERM, 30)
    output = proc.output()

    assert returncode == server.stopped_exit, output
    assert output.count("Lifespan shutdown failed (1 failure):") == 1, output
    assert output.count("fail_shutdown raised RuntimeError: boom at shutdown") == 1, output
