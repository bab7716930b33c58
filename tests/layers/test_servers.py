"""Channel layers under real servers, on a real Redis: group messages reach consumers from async
and sync views, pools close at shutdown with nothing noisy at exit, sync sends use the server's
pool, an idle consumer survives, and the cancel race cannot hang shutdown."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.harness.catalogue import (
    GRANIAN,
    GUNICORN,
    HYPERCORN,
    LAYER_LEAKS,
    LIFESPAN_DAPHNE,
    RUNASGI,
    UVICORN,
    assert_clean,
)
from tests.harness.servers import get_json, open_connections, read_events, wait_until

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, unix sockets")

TIMEOUT = 20.0
SETTINGS = "tests.projects.layersapp.settings"
APP = "tests.projects.layersapp.asgi:application"
STOCK = "tests.projects.layersapp.asgi:stock"
# Everything that no clean run prints, with a layer.
NOISE = (*LAYER_LEAKS, "Traceback", "ResourceWarning")
STUCK = "did not return within 2 s of its socket closing"

SERVERS = [
    UVICORN.param(),
    HYPERCORN.param(),
    GRANIAN.param(),
    GUNICORN.param(),
    RUNASGI.param(),
    LIFESPAN_DAPHNE.param(),
]


def start(serve, server, redis, *options, app=APP, **env):
    proc = serve(
        server, *options, settings=SETTINGS, app=app, env={"LIFESPAN_TEST_REDIS": redis.url, **env}
    )
    proc.wait_ready("/health/", TIMEOUT)
    return proc


def ws_url(proc):
    return f"ws://127.0.0.1:{proc.wait_port()}/ws/group/"


def receive_json(websocket, timeout=TIMEOUT):
    return json.loads(websocket.recv(timeout=timeout))


@pytest.mark.parametrize("server", SERVERS)
def test_group_sends_from_async_and_sync_views_reach_the_consumer_then_pools_close(
    serve, server, redis
):
    proc = start(serve, server, redis)
    with connect(ws_url(proc), proxy=None, open_timeout=TIMEOUT) as websocket:
        hello = receive_json(websocket)
        get_json(proc.url("/send/async/?text=from-async"))
        get_json(proc.url("/send/sync/?text=from-sync"))
        received = [receive_json(websocket), receive_json(websocket)]
        if server.name == "hypercorn":
            # Under Python 3.11, hypercorn stopping with a socket open prints a CancelledError
            # traceback of asyncio's StreamReaderProtocol callback (with or without layers):
            # stop it once it has closed every connection of ours.
            websocket.close()
            port = proc.wait_port()
            wait_until(lambda: open_connections(port) == 0, TIMEOUT, "hypercorn to close them")
        returncode = proc.stop(timeout=TIMEOUT)
        with pytest.raises(ConnectionClosed):
            websocket.recv(timeout=TIMEOUT)
    output = proc.output()

    assert returncode == server.stopped_exit, output
    assert sorted(message["text"] for message in received) == ["from-async", "from-sync"]
    assert {message["pid"] for message in received} == {hello["pid"]}
    # Every process that ran a lifespan closed its layer, and then nothing was left open.
    assert output.count("startup layer default") == server.processes, output
    assert output.count("shutdown layer default") == server.processes, output
    assert redis.clients() == []
    assert_clean(output, *NOISE)


@pytest.mark.parametrize("backend", ["pubsub", "memory"])
def test_the_other_layers_close_quietly_too(serve, redis, backend):
    env = {"LIFESPAN_TEST_LAYER": backend} if backend != "memory" else {}
    proc = serve(
        UVICORN,
        settings=SETTINGS,
        app=APP,
        env={"LIFESPAN_TEST_REDIS": redis.url, **env} if env else {},
    )
    proc.wait_ready("/health/", TIMEOUT)
    with connect(ws_url(proc), proxy=None, open_timeout=TIMEOUT) as websocket:
        receive_json(websocket)
        get_json(proc.url("/send/sync/?text=s"))
        assert receive_json(websocket)["text"] == "s"
        returncode = proc.stop(timeout=TIMEOUT)
    output = proc.output()
    assert returncode == UVICORN.stopped_exit, output
    assert "shutdown layer default" in output
    assert redis.clients() == []
    assert_clean(output, *NOISE)


def connections_for_sync_sends(serve, redis, app, *options, count=1000):
    """(before, after): the server process's Redis connections around ``count`` sync-view
    group_sends; and the connections it opened meanwhile."""
    proc = start(serve, UVICORN, redis, *options, app=app)
    pid = get_json(proc.url("/health/"))["pid"]
    get_json(proc.url("/send/sync/?n=1"))  # stock Channels opens its pool on first use
    before, opened = redis.connections_by_pid().get(pid, 0), redis.opened()
    assert get_json(proc.url(f"/send/sync/?n={count}"), timeout=60)["sent"] == count
    after, opened = redis.connections_by_pid().get(pid, 0), redis.opened() - opened
    proc.stop(timeout=TIMEOUT)
    return before, after, opened, proc.output()


def test_sync_view_sends_use_the_servers_pool_not_a_connection_per_call(serve, redis):
    before, after, opened, output = connections_for_sync_sends(serve, redis, APP)
    assert (before, after, opened) == (1, 1, 0), output
    assert_clean(output, *NOISE)


def test_stock_channels_for_comparison_leaves_its_pool_to_the_exit(serve, redis):
    before, after, opened, output = connections_for_sync_sends(
        serve, redis, STOCK, "--lifespan", "off"
    )
    # Also one pool on the server's loop (asgiref runs the sync view's async_to_sync there), but
    # nobody closes it: the interpreter's exit does, noisily or not, depending on the moment.
    assert (before, after, opened) == (1, 1, 0), output
    assert "shutdown layer default" not in output


def test_an_idle_consumer_receives_after_10_s(serve, redis):
    """redis-py 8's 5 s socket_timeout against channels_redis' 5 s blocking receive: without the
    lifespan's safe default, the consumer's read times out ("Timeout reading from ...")."""
    proc = start(serve, UVICORN, redis)
    with connect(ws_url(proc), proxy=None, open_timeout=TIMEOUT) as websocket:
        receive_json(websocket)
        # Idle: nothing arrives for 10 s (the wait is the point of the test).
        with pytest.raises(TimeoutError):
            websocket.recv(timeout=10)
        get_json(proc.url("/send/async/?text=after-10-s"))
        assert receive_json(websocket)["text"] == "after-10-s"
        proc.stop(timeout=TIMEOUT)
    assert_clean(proc.output(), *NOISE)


def disconnects(events):
    return sum(event["event"] == "disconnect" for event in read_events(events))


def blocked_for(redis, seconds):
    """Whether some connection stays blocked (BZPOPMIN) on Redis for ``seconds``."""
    deadline = time.monotonic() + seconds
    while any("b" in entry["flags"] for entry in redis.clients()):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("server", [UVICORN.param(), LIFESPAN_DAPHNE.param()])
def test_sockets_closed_1_ms_apart_then_sigterm_shutdown_completes_and_pools_close(
    serve, server, redis, events
):
    """channels_redis' cancel race: the second of two consumers cancelled about 1 ms apart goes
    on waiting on Redis. The bound on a consumer after its socket closed, and the bounded
    closing of the layer, let shutdown finish."""
    proc = start(serve, server, redis, LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT="2")
    raced = False
    for rounds in range(1, 11):  # rounds until the race shows (most rounds on Python 3.11)
        with contextlib.ExitStack() as stack:
            sockets = [
                stack.enter_context(connect(ws_url(proc), proxy=None, open_timeout=TIMEOUT))
                for _ in range(6)
            ]
            for websocket in sockets:
                receive_json(websocket)
            for websocket in sockets:  # abrupt closes, 1 ms apart: three chances for the race
                websocket.socket.shutdown(socket.SHUT_RDWR)
                time.sleep(0.001)
        ended = 6 * rounds
        wait_until(lambda: disconnects(events) == ended, TIMEOUT, "the consumers' ends")  # noqa: B023
        # A cancelled receive lets go of its BZPOPMIN at once; a stuck one goes on blocking.
        if blocked_for(redis, 0.5):
            raced = True
            break
    # Then SIGTERM, while a consumer is stuck on Redis (if the race showed: it does on Python
    # 3.11, not on 3.12+, whose cancellation the stuck receive does not swallow).
    assert raced or sys.version_info >= (3, 12), "the race did not show in 10 rounds on 3.11"
    started = time.monotonic()
    returncode = proc.stop(timeout=TIMEOUT)
    took = time.monotonic() - started
    output = proc.output()
    assert returncode == server.stopped_exit, output
    assert took < 2 + 10 + 5, output  # the consumer bound, the shutdown budget, a margin
    if raced and server.name == "uvicorn":  # it waits for every connection: the bound ended it
        assert STUCK in output, output
    assert "shutdown layer default" in output
    assert redis.clients() == []
    assert_clean(output, *NOISE)
