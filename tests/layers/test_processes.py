"""Across processes, on one real Redis: gunicorn with 2 uvicorn workers plus a lifespan-daphne;
group messages reach every socket exactly once; SIGTERM to one worker closes its sockets (1012)
and its layer, and the others go on serving and receiving, losing nothing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.harness.catalogue import GUNICORN, LAYER_LEAKS, LIFESPAN_DAPHNE, assert_clean
from tests.harness.servers import get_json, wait_until

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, unix sockets"),
    pytest.mark.skipif(bool(GUNICORN.missing() or LIFESPAN_DAPHNE.missing()), reason="servers"),
]

TIMEOUT = 20.0
SETTINGS = "tests.projects.layersapp.settings"
APP = "tests.projects.layersapp.asgi:application"


def receive_json(websocket):
    return json.loads(websocket.recv(timeout=TIMEOUT))


def texts_until(websocket, marker):
    """Every group message's text up to and including ``marker`` (sent last)."""
    texts = []
    while not texts or texts[-1] != marker:
        texts.append(receive_json(websocket)["text"])
    return texts


def test_two_gunicorn_workers_and_a_daphne_on_one_redis(serve, redis):
    env = {"LIFESPAN_TEST_REDIS": redis.url, "LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT": "3"}
    gunicorn = serve(GUNICORN, settings=SETTINGS, app=APP, env=env)
    daphne = serve(LIFESPAN_DAPHNE, settings=SETTINGS, app=APP, env=env)
    gunicorn.wait_ready("/health/", TIMEOUT)
    daphne.wait_ready("/health/", TIMEOUT)

    with contextlib.ExitStack() as stack:

        def open_socket(proc):
            url = f"ws://127.0.0.1:{proc.wait_port()}/ws/group/"
            websocket = stack.enter_context(connect(url, proxy=None, open_timeout=TIMEOUT))
            return receive_json(websocket)["pid"], websocket

        # The kernel spreads gunicorn's connections over its workers: open until both have some.
        sockets = [open_socket(daphne), open_socket(daphne)]
        for _ in range(40):
            sockets.append(open_socket(gunicorn))
            if len({pid for pid, _ in sockets}) == 3 and len(sockets) >= 6:
                break
        by_pid: dict[int, list] = {}
        for pid, websocket in sockets:
            by_pid.setdefault(pid, []).append(websocket)
        assert len(by_pid) == 3, by_pid
        workers = [pid for pid in by_pid if pid != daphne.pid]

        # One group_send from an async view, one from a sync view: each socket gets each once.
        get_json(gunicorn.url("/send/async/?text=async-1"))
        get_json(daphne.url("/send/sync/?text=sync-1"))
        get_json(daphne.url("/send/async/?text=marker-1"))
        for _, websocket in sockets:
            assert sorted(texts_until(websocket, "marker-1")) == ["async-1", "marker-1", "sync-1"]

        # SIGTERM to one worker: its sockets close with 1012, its layer closes.
        stopped, survivor = workers
        os.kill(stopped, signal.SIGTERM)
        for websocket in by_pid[stopped]:
            with pytest.raises(ConnectionClosed) as closed:
                websocket.recv(timeout=TIMEOUT)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1012
        get_json(daphne.url("/send/sync/?text=sync-2"))
        get_json(gunicorn.url("/send/async/?text=async-2"))  # a survivor, or the new worker
        get_json(daphne.url("/send/async/?text=marker-2"))
        for websocket in [*by_pid[survivor], *by_pid[daphne.pid]]:
            assert sorted(texts_until(websocket, "marker-2")) == ["async-2", "marker-2", "sync-2"]
        # Its shutdown ends after its consumers (one may be stuck on Redis: bounded at 3 s).
        wait_until(
            lambda: "shutdown layer default" in gunicorn.output(), TIMEOUT, "its layer closing"
        )
        assert gunicorn.output().count("shutdown layer default") == 1, gunicorn.output()
        wait_until(lambda: stopped not in redis.connections_by_pid(), TIMEOUT, "its exit")

    for proc in (gunicorn, daphne):
        proc.stop(timeout=TIMEOUT)
        assert_clean(proc.output(), *LAYER_LEAKS, "Traceback")
    assert redis.clients() == []
