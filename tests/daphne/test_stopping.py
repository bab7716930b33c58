"""Stopping on time: ``--graceful-timeout`` bounds a running sync view, on SIGTERM and on reload.

A thread cannot be interrupted, but a process need not wait for it: past the graceful timeout
(and at most two grace periods of 1 s: the request told its client is gone, then cancelled), the
request is abandoned by name, lifespan shutdown runs, and the process exits without the thread.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
import time

import pytest

from tests.harness.catalogue import LIFESPAN_DAPHNE, RUNASGI, RUNASGI_RELOAD
from tests.harness.in_process import needs_request_threads
from tests.harness.servers import alive, http_get, read_events, wait_until

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SETTINGS = "tests.projects.faultapp.settings"
TIMEOUT = 20.0
VIEW = "/slow-sync/?seconds=12"
# The documented bound: the graceful timeout (1 s), then the two grace periods (1 s each); plus a
# margin for a loaded machine. Without the fix: 11.5 s to 12.7 s.
BOUND = 1 + 2 + 2.5
ABANDONED = f"Abandoning GET {VIEW}: still running after the graceful timeout"


def kinds(events):
    return [event["event"] for event in read_events(events)]


def _request_in_background(url):
    def get():
        with contextlib.suppress(OSError):  # the server hung up on it: that is the point
            http_get(url, timeout=TIMEOUT)

    thread = threading.Thread(target=get, daemon=True)
    thread.start()
    return thread


def _sigterm_during_the_sync_view(proc, events):
    """SIGTERM while the slow sync view runs: the exit code, the seconds to exit, the output."""
    proc.wait_ready("/health/", TIMEOUT)
    _request_in_background(proc.url(VIEW))
    wait_until(lambda: "sync-slow-start" in kinds(events), TIMEOUT, "the sync view")
    stopped = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait_exit(TIMEOUT)
    return code, time.monotonic() - stopped, proc.output()


@pytest.mark.parametrize("server", [RUNASGI.param(), LIFESPAN_DAPHNE.param()])
def test_sigterm_abandons_a_sync_view_past_the_graceful_timeout_and_exits(serve, server, events):
    proc = serve(server, "--graceful-timeout", "1", settings=SETTINGS)
    code, took, output = _sigterm_during_the_sync_view(proc, events)
    assert code == 0, output
    assert took < BOUND, f"exited {took:.1f} s after SIGTERM:\n{output}"
    assert output.count(ABANDONED) == 1, output
    assert output.index(ABANDONED) < output.index("Lifespan shutdown complete")
    assert kinds(events)[-1] == "shutdown"
    assert "sync-slow-end" not in kinds(events)


@needs_request_threads
@pytest.mark.parametrize("one_hop", ["", "1"], ids=["request-threads", "one-hop"])
def test_a_sync_view_on_a_request_thread_is_named_at_shutdown(serve, events, one_hop):
    env = {"LIFESPAN_TEST_REQUEST_THREADS": "2", "LIFESPAN_TEST_ONE_HOP": one_hop}
    proc = serve(RUNASGI, "--graceful-timeout", "1", settings=SETTINGS, env=env)
    code, took, output = _sigterm_during_the_sync_view(proc, events)
    assert code == 0, output
    assert took < BOUND + 1, f"exited {took:.1f} s after SIGTERM:\n{output}"  # + the threads' 1 s
    assert re.search(rf"lifespan-signals-request-\d+, serving GET {re.escape(VIEW)}\)", output)
    assert kinds(events)[-1] == "shutdown"
    assert "sync-slow-end" not in kinds(events)


def test_a_reload_abandons_a_sync_view_and_the_old_child_exits_on_time(serve, events, watched):
    proc = serve(RUNASGI_RELOAD, "--graceful-timeout", "1", settings=SETTINGS,
                 env={"LIFESPAN_TEST_WATCH": str(watched)})  # fmt: skip
    proc.wait_ready("/health/", TIMEOUT)
    (old,) = {event["pid"] for event in read_events(events) if event["event"] == "startup"}
    _request_in_background(proc.url(VIEW))
    wait_until(lambda: "sync-slow-start" in kinds(events), TIMEOUT, "the sync view")
    deadline = time.monotonic() + TIMEOUT
    while "file-changed" not in kinds(events):  # a touch before the reloader's first look is lost
        assert time.monotonic() < deadline, "the reloader never noticed the change"
        os.utime(watched)
        time.sleep(0.1)  # polling, with the deadline above
    noticed = time.monotonic()
    # The new child starts once the old one has exited: that is what the graceful timeout bounds
    # (the new child's own boot is not).
    wait_until(lambda: not alive(old), TIMEOUT, "the old child's exit")
    took = time.monotonic() - noticed
    proc.wait_port(TIMEOUT, count=2)  # the new child's banner
    proc.wait_ready("/health/", TIMEOUT)
    output = proc.output()
    assert took < BOUND, f"the old child exited {took:.1f} s after the change:\n{output}"
    assert output.count(ABANDONED) == 1, output
    recorded = kinds(events)
    assert recorded.count("shutdown") == 1, recorded  # the old child's, before the new startup
    last_startup = max(index for index, kind in enumerate(recorded) if kind == "startup")
    assert recorded.index("shutdown") < last_startup, recorded
    assert proc.stop(signal.SIGTERM, TIMEOUT) == 0, proc.output()
