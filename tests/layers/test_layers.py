"""Channel layers in process, on a real Redis (the harness's private ``redis-server``): made
ready at startup, closed at shutdown, in their place among the steps; the two traps of
channels_redis 4.3 with redis-py 8."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.management import call_command
from django.test import override_settings

from lifespan_signals.asgi import get_asgi_application
from lifespan_signals.lifespan import layers as engine_layers
from lifespan_signals.lifespan.driver import LifespanDriver, LifespanFailed
from lifespan_signals.testing import lifespan
from tests.harness.in_process import registered
from tests.projects.layersapp.management.commands import layersend, layersend_stock

CORE = "channels_redis.core.RedisChannelLayer"
PUBSUB = "channels_redis.pubsub.RedisPubSubChannelLayer"
MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def redis_layer(redis, backend=CORE, **host):
    return {"default": {"BACKEND": backend, "CONFIG": {"hosts": [{"address": redis.url, **host}]}}}


def run(coroutine):
    return asyncio.run(coroutine)


async def steps_of_one_lifespan(app=None):
    driver = LifespanDriver(app or get_asgi_application())
    await driver.startup()
    await driver.shutdown()
    return [(step.phase, step.kind, step.name, step.ok) for step in driver.record.steps]


@pytest.mark.parametrize("backend", [CORE, PUBSUB])
def test_a_redis_layer_opens_on_the_lifespans_loop_and_closes_at_shutdown(redis, backend):
    async def main():
        async with lifespan():
            open_during = len(redis.clients())
            await get_channel_layer().group_send("g", {"type": "x"})  # the pool that is open
            sent_during = len(redis.clients())
        return open_during, sent_during

    with override_settings(CHANNEL_LAYERS=redis_layer(redis, backend)):
        open_during, sent_during = run(main())
    assert open_during >= 1  # startup connected (a PING on each host)
    assert sent_during == open_during
    assert redis.clients() == []  # shutdown closed every connection it opened


def test_each_layer_is_a_step_after_the_clients_and_before_resources_closed_in_reverse(redis):
    async def resource(state):
        yield

    layers = {
        **redis_layer(redis),
        "memory": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
    }
    clients = {"http": {"BACKEND": "httpx.AsyncClient"}}
    with (
        override_settings(CHANNEL_LAYERS=layers, LIFESPAN_SIGNALS_CLIENTS=clients),
        registered(resource),
    ):
        steps = run(steps_of_one_lifespan())
    kinds = [(phase, kind, name) for phase, kind, name, ok in steps if kind != "receiver"]
    assert all(ok for *_, ok in steps)
    name = next(name for _, kind, name in kinds if kind == "resource")
    assert name.endswith(".<locals>.resource")
    assert kinds == [
        ("startup", "client", "http"),
        ("startup", "layer", "default"),
        ("startup", "layer", "memory"),
        ("startup", "resource", name),
        ("shutdown", "resource", name),
        ("shutdown", "layer", "memory"),
        ("shutdown", "layer", "default"),
        ("shutdown", "client", "http"),
    ]


def test_manage_py_lifespan_lists_each_layer_with_its_time(redis, capsys):
    with override_settings(CHANNEL_LAYERS=redis_layer(redis)):
        call_command("lifespan")
    out = capsys.readouterr().out
    assert out.count("layer     default") == 2, out
    assert "Lifespan startup and shutdown succeeded." in out


def test_an_unreachable_redis_is_a_named_startup_failure(tmp_path):
    missing = f"unix://{tmp_path}/no-redis.sock"
    layers = {"default": {"BACKEND": CORE, "CONFIG": {"hosts": [missing]}}}

    async def main():
        async with lifespan():
            pass

    with override_settings(CHANNEL_LAYERS=layers), pytest.raises(LifespanFailed) as caught:
        run(main())
    (failure,) = caught.value.failures
    assert failure.name == f"CHANNEL_LAYERS['default'] ({CORE})"
    assert failure.summary.startswith(
        "raised lifespan_signals.lifespan.layers.LayerUnreachable: CHANNEL_LAYERS['default'] "
        f"could not reach Redis at {missing!r}: ConnectionError: Error 2 connecting to "
    )
    assert "Start Redis there, or fix CONFIG['hosts']" in failure.summary


def test_a_bad_backend_is_a_named_startup_failure():
    layers = {"default": {"BACKEND": "no.such.Layer"}}
    with override_settings(CHANNEL_LAYERS=layers), pytest.raises(LifespanFailed) as caught:
        run(steps_of_one_lifespan())
    (failure,) = caught.value.failures
    assert failure.name == "CHANNEL_LAYERS['default'] (no.such.Layer)"
    assert "InvalidChannelLayerError: Cannot import BACKEND 'no.such.Layer'" in failure.summary


class HangingLayer(InMemoryChannelLayer):
    async def flush(self):
        await asyncio.sleep(3600)


def test_closing_a_layer_is_bounded_by_the_shutdown_budget():
    layers = {"default": {"BACKEND": f"{__name__}.HangingLayer"}}
    started = time.monotonic()
    with (
        override_settings(CHANNEL_LAYERS=layers, LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT=0.5),
        pytest.raises(LifespanFailed) as caught,
    ):
        run(steps_of_one_lifespan())
    assert time.monotonic() - started < 3
    (failure,) = caught.value.failures
    assert failure.name == f"CHANNEL_LAYERS['default'] ({__name__}.HangingLayer)"
    assert failure.summary == (
        "timed out: still closing after 0.5 s (LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT)"
    )


def test_the_in_memory_layer_is_flushed_at_shutdown():
    async def main():
        async with lifespan():
            layer = get_channel_layer()
            channel = await layer.new_channel()
            await layer.group_add("g", channel)
            await layer.send(channel, {"type": "x"})
        return layer

    with override_settings(CHANNEL_LAYERS=MEMORY):
        layer = run(main())
    assert layer.channels == {}
    assert layer.groups == {}


def test_no_channel_layers_no_step():
    with override_settings(CHANNEL_LAYERS={}):
        steps = run(steps_of_one_lifespan())
    assert [step for step in steps if step[1] == "layer"] == []


# -- sync code on the lifespan's loop --------------------------------------------------------


def test_a_lifespan_command_sends_on_the_one_pool_a_plain_command_opens_one_per_call(redis):
    with override_settings(CHANNEL_LAYERS=redis_layer(redis)):
        before = redis.opened()
        call_command(layersend.Command(), "200")
        ours = redis.opened() - before
        before = redis.opened()
        call_command(layersend_stock.Command(), "200")
        stock = redis.opened() - before
    assert ours == 1, ours  # the lifespan's own connection, opened at startup
    assert stock == 200, stock  # asyncio_to_sync without a loop: a new loop, pool, connection


# -- trap (a): the socket timeout ------------------------------------------------------------


def test_the_lifespan_gives_a_host_without_socket_timeout_a_safe_one(redis):
    async def main():
        async with lifespan():
            layer = get_channel_layer()
            kwargs = layer.connection(0).connection_pool.connection_kwargs
        return kwargs

    with override_settings(CHANNEL_LAYERS=redis_layer(redis)):
        assert run(main())["socket_timeout"] == engine_layers.SAFE_SOCKET_TIMEOUT
    with override_settings(CHANNEL_LAYERS=redis_layer(redis, socket_timeout=7)):
        assert run(main())["socket_timeout"] == 7  # the user's own stays
    assert redis_layer(redis)["default"]["CONFIG"]["hosts"][0] == {"address": redis.url}


async def idle_receive(layer, seconds):
    """A consumer's receive(), idle for ``seconds``, then given a message."""
    channel = await layer.new_channel()
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(seconds)
    await layer.send(channel, {"type": "late"})
    try:
        return await asyncio.wait_for(receiving, 10)
    finally:
        receiving.cancel()


def test_an_idle_consumer_keeps_receiving_under_the_lifespan_and_dies_without_it(redis):
    async def ours():
        async with lifespan():
            return await idle_receive(get_channel_layer(), 10)

    async def stock():
        layer = get_channel_layer()
        try:
            return await idle_receive(layer, 6)
        finally:
            await layer.close_pools()

    with override_settings(CHANNEL_LAYERS=redis_layer(redis)):
        assert run(ours()) == {"type": "late"}
    import redis as redis_py

    with (
        override_settings(CHANNEL_LAYERS=redis_layer(redis)),
        pytest.raises(redis_py.exceptions.TimeoutError, match="Timeout reading from"),
    ):
        run(stock())


# -- trap (b): the cancel race ---------------------------------------------------------------


def test_two_receives_cancelled_1_ms_apart_leave_one_stuck_until_the_layer_closes(redis):
    """channels_redis 4.3: the second receive() goes on looping on Redis after its cancel (most
    runs); the lifespan's closing of the layer ends it, within the shutdown budget."""

    async def main():
        stuck_runs = 0
        async with lifespan():
            layer = get_channel_layer()
            for _ in range(10):
                channels = [await layer.new_channel() for _ in range(2)]
                tasks = [asyncio.ensure_future(layer.receive(name)) for name in channels]
                await asyncio.sleep(0.02)
                tasks[0].cancel()
                await asyncio.sleep(0.001)
                tasks[1].cancel()
                _, pending = await asyncio.wait(tasks, timeout=0.5)
                if pending:
                    stuck_runs += 1
                    break
            started = time.monotonic()
        closed_in = time.monotonic() - started
        return stuck_runs, pending, closed_in

    with override_settings(CHANNEL_LAYERS=redis_layer(redis)):
        stuck_runs, pending, closed_in = run(main())
    if stuck_runs == 0 and sys.version_info >= (3, 12):
        pytest.skip("channels_redis' cancel race does not show on Python 3.12+: nothing stuck")
    assert stuck_runs == 1, "the race did not show in 10 runs on Python 3.11"
    assert all(task.done() for task in pending)  # ended by the layer's closing
    assert closed_in < 3
    assert redis.clients() == []


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ({"path": "/nonexistent/redis.sock"}, "unix:///nonexistent/redis.sock"),
        ({"host": "127.0.0.1", "port": 1}, "127.0.0.1:1"),
    ],
)
def test_an_unreachable_host_is_named_as_configured(host, shown):
    layers = {"default": {"BACKEND": CORE, "CONFIG": {"hosts": [host]}}}
    with override_settings(CHANNEL_LAYERS=layers), pytest.raises(LifespanFailed) as caught:
        run(steps_of_one_lifespan())
    assert f"could not reach Redis at {shown!r}" in caught.value.failures[0].summary


# -- the bound on WebSocket applications ----------------------------------------------------


def websocket_app(after_disconnect):
    """An application that waits for websocket.disconnect, then awaits ``after_disconnect``."""
    ended = []

    async def app(scope, receive, send):
        try:
            while (await receive())["type"] != "websocket.disconnect":
                pass
            await after_disconnect()
        finally:
            ended.append(True)

    return app, ended


async def disconnect_then(app):
    inbox = asyncio.Queue()
    await inbox.put({"type": "websocket.disconnect", "code": 1000})
    return await engine_layers.bounded_websocket(
        app, {"type": "websocket", "path": "/ws/"}, inbox.get, lambda message: None
    )


def test_a_websocket_app_that_hangs_after_its_socket_closed_is_cancelled(caplog):
    app, ended = websocket_app(lambda: asyncio.sleep(3600))
    started = time.monotonic()
    with override_settings(LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT=0.2):
        assert run(disconnect_then(app)) is None
    assert time.monotonic() - started < 2
    assert ended == [True]
    assert "did not return within 0.2 s of its socket closing" in caplog.text


def test_a_websocket_app_that_ends_returns_its_result_and_none_means_no_bound():
    async def returns():
        return None

    app, ended = websocket_app(returns)
    with override_settings(LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT=None):
        run(disconnect_then(app))
    with override_settings(LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT=5):
        run(disconnect_then(app))
    assert ended == [True, True]


def test_consumers_still_running_at_shutdown_are_drained_before_the_layer_closes():
    """As granian does: lifespan shutdown while a WebSocket application still runs."""

    async def forever(scope, receive, send):
        await asyncio.sleep(3600)

    async def main():
        async with lifespan():
            inbox = asyncio.Queue()
            running = asyncio.ensure_future(
                engine_layers.bounded_websocket(forever, {"type": "websocket"}, inbox.get, None)
            )
            await asyncio.sleep(0)
        return running

    with override_settings(CHANNEL_LAYERS=MEMORY, LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT=0.4):
        running = run(main())
    assert running.done()  # its application was cancelled by the drain, within the budget
