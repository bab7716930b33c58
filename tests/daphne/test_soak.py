"""Soak: "code change, then stop" at random moments, 20 times (``pytest -m soak``, not `make test`).

Each run starts ``runasgi`` with the reloader, changes a watched file, waits a random 0-4 s
(before the reloader notices, while the old child shuts down, while the new one imports or starts
up, or while it serves), then stops it with SIGTERM or Ctrl+C. A run is clean when the command
exits 0, every process that started up shut down exactly once, and no process is left.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time

import pytest

from tests.harness.catalogue import RUNASGI_RELOAD
from tests.harness.servers import ServerProcess, alive, events_by_pid, group_members, read_events
from tests.settings import env

pytestmark = [
    pytest.mark.soak,
    pytest.mark.servers,
    pytest.mark.timeout(600),  # 20 runs of up to ~10 s each on a loaded machine
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups"),
]

RUNS = 20
SETTINGS = "tests.projects.faultapp.settings"


def _one_run(tmp_path, index, rng):
    events = tmp_path / f"events-{index}.jsonl"
    watched = tmp_path / f"watched-{index}.txt"
    watched.write_text("")
    env = {
        "LIFESPAN_TEST_WATCH": str(watched),
        "LIFESPAN_TEST_HANG": "shutdown",
        "LIFESPAN_TEST_HANG_SECONDS": "0.5",  # a shutdown that takes a moment
    }
    how = rng.choice(["sigterm", "ctrl-c"])
    delay = rng.uniform(0, 4)
    runasgi = ServerProcess.of(RUNASGI_RELOAD, settings=SETTINGS, events=events, env=env)
    with runasgi as server:
        server.wait_ready("/health/", 30)
        os.utime(watched)
        time.sleep(delay)
        if how == "ctrl-c":
            os.killpg(server.pid, signal.SIGINT)
        else:
            server.send_signal(signal.SIGTERM)
        try:
            code = server.wait_exit(30)
        except AssertionError:
            code = None
        left = group_members(server.pid)  # any process of the command's, lifespan or not
        output = server.output()
    lifespans = events_by_pid(
        [e for e in read_events(events) if e["event"] in ("startup", "shutdown")]
    )
    paired = all(names == ["startup", "shutdown"] for names in lifespans.values())
    left += [pid for pid in lifespans if alive(pid) and pid not in left]
    clean = code == 0 and paired and not left and "Traceback" not in output
    return clean, f"run {index}: {how} after {delay:.2f} s: exit {code}, {lifespans}, left {left}"


def test_code_change_then_stop_at_random_moments(tmp_path):
    rng = random.Random(env("LIFESPAN_TEST_SOAK_SEED"))
    results = [_one_run(tmp_path, index, rng) for index in range(RUNS)]
    clean = sum(ok for ok, _ in results)
    print(f"\n{clean}/{RUNS} runs clean")
    for _, line in results:
        print(line)
    assert clean == RUNS, [line for ok, line in results if not ok]
