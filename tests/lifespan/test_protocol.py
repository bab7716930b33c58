"""The lifespan protocol, in process, message by message (asgiref ApplicationCommunicator)."""

from __future__ import annotations

import asyncio
import threading
import time

from asgiref.sync import async_to_sync, sync_to_async
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import SimpleTestCase, override_settings

from lifespan_signals import get_state
from lifespan_signals.asgi import LifespanASGIHandler, get_asgi_application
from lifespan_signals.lifespan.machine import LifespanProtocolError
from lifespan_signals.signals import asgi_shutdown, asgi_startup
from lifespan_signals.state import LifespanNotStarted
from tests.harness.in_process import LIFESPAN_SCOPE, Lifespan, connected, open_client

COMPLETE = {"type": "lifespan.startup.complete"}
SHUT = {"type": "lifespan.shutdown.complete"}


async def boom(sender, **kwargs):
    raise RuntimeError("boom")


def sync_boom(sender, **kwargs):
    raise ValueError("sync boom")


class StartupTests(SimpleTestCase):
    async def test_receivers_get_sender_scope_and_state(self):
        calls = []

        async def receiver(sender, *, scope, state, **kwargs):
            calls.append((sender, scope["type"], state))

        state = {}
        with connected(asgi_startup, receiver):
            self.assertEqual(await Lifespan(get_asgi_application(), state).startup(), COMPLETE)
        self.assertEqual(calls, [(LifespanASGIHandler, "lifespan", state)])

    async def test_async_receivers_run_on_the_loop_sync_ones_in_a_thread(self):
        seen = {}

        async def on_loop(sender, **kwargs):
            seen["async"] = asyncio.get_running_loop()

        def in_thread(sender, **kwargs):
            seen["sync_thread"] = threading.current_thread()
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                seen["sync_loop"] = None

        with connected(asgi_startup, on_loop, in_thread):
            await Lifespan(get_asgi_application(), {}).startup()
        self.assertIs(seen["async"], asyncio.get_running_loop())
        self.assertIsNot(seen["sync_thread"], threading.current_thread())
        self.assertIsNone(seen["sync_loop"])

    async def test_async_receivers_run_concurrently(self):
        async def slow(sender, **kwargs):
            await asyncio.sleep(0.2)

        receivers = [_copy_async(slow) for _ in range(10)]
        started = time.perf_counter()
        with connected(asgi_startup, *receivers):
            self.assertEqual(await Lifespan(get_asgi_application(), {}).startup(), COMPLETE)
        self.assertLess(time.perf_counter() - started, 1.0)

    async def test_every_receiver_runs_and_each_failure_is_named(self):
        ran = []

        async def healthy(sender, **kwargs):
            ran.append("async")

        def healthy_sync(sender, **kwargs):
            ran.append("sync")

        closed = []

        async def close(sender, *, state, **kwargs):
            closed.append(dict(state))

        with (
            connected(asgi_startup, boom, healthy, sync_boom, healthy_sync, open_client),
            connected(asgi_shutdown, close),
            self.assertLogs("lifespan_signals.lifespan", "INFO") as logs,
        ):
            message = await Lifespan(get_asgi_application(), {}).startup()
        self.assertEqual(message["type"], "lifespan.startup.failed")
        text = message["message"]
        self.assertIn("Lifespan startup failed (2 failures):", text)
        self.assertIn("tests.lifespan.test_protocol.boom raised RuntimeError: boom", text)
        self.assertIn("tests.lifespan.test_protocol.sync_boom raised ValueError: sync boom", text)
        self.assertIn("Traceback (most recent call last):", text)
        self.assertIn('raise RuntimeError("boom")', text)
        self.assertCountEqual(ran, ["async", "sync"])
        # shutdown ran, with what the healthy receivers opened
        self.assertEqual(len(closed), 1)
        self.assertIn("client", closed[0])
        # The server prints the report (the ASGI spec asks it to): the log only says so, once.
        self.assertIn(
            "Lifespan startup failed with 2 failures; the server reports it.", logs.output[0]
        )
        self.assertNotIn("boom", "\n".join(logs.output))

    async def test_exception_without_message_still_says_what_it_is(self):
        async def bare(sender, **kwargs):
            raise RuntimeError()

        with connected(asgi_startup, bare), self.assertLogs("lifespan_signals", "INFO"):
            message = await Lifespan(get_asgi_application(), {}).startup()
        self.assertIn(
            "test_exception_without_message_still_says_what_it_is.<locals>.bare "
            "raised RuntimeError\n",
            message["message"],
        )

    async def test_bound_method_and_callable_object_names(self):
        class Opener:
            async def open(self, sender, **kwargs):
                raise KeyError("k")

        opener = Opener()
        with connected(asgi_startup, opener.open), self.assertLogs("lifespan_signals", "INFO"):
            message = await Lifespan(get_asgi_application(), {}).startup()
        self.assertIn(".<locals>.Opener.open raised KeyError: 'k'", message["message"])

    async def test_logs_info_on_completion_and_debug_per_receiver(self):
        with (
            connected(asgi_startup, open_client),
            self.assertLogs("lifespan_signals", "DEBUG") as logs,
        ):
            lifespan = Lifespan(get_asgi_application(), {})
            await lifespan.startup()
            await lifespan.shutdown()
        output = "\n".join(logs.output)
        self.assertRegex(
            output,
            r"DEBUG:lifespan_signals.lifespan.steps:"
            r"startup receiver tests.harness.in_process.open_client: [0-9.]+ ms",
        )
        self.assertRegex(
            output,
            r"INFO:lifespan_signals.lifespan.machine:Lifespan startup complete in [0-9.]+ ms "
            r"\(asgi_startup receivers: 1, resources: 0\)",
        )
        self.assertRegex(
            output,
            r"INFO:lifespan_signals.lifespan.machine:Lifespan shutdown complete in [0-9.]+ ms "
            r"\(asgi_shutdown receivers: 0, resources: 0\)",
        )


def _copy_async(func):
    async def receiver(sender, **kwargs):
        await func(sender, **kwargs)

    return receiver


class ShutdownTests(SimpleTestCase):
    async def test_every_shutdown_receiver_runs_failures_reported_together(self):
        ran = []

        async def healthy(sender, **kwargs):
            ran.append("healthy")

        with (
            connected(asgi_shutdown, boom, healthy, sync_boom),
            self.assertLogs("lifespan_signals", "INFO"),
        ):
            lifespan = Lifespan(get_asgi_application(), {})
            self.assertEqual(await lifespan.startup(), COMPLETE)
            message = await lifespan.shutdown()
        self.assertEqual(message["type"], "lifespan.shutdown.failed")
        self.assertIn("Lifespan shutdown failed (2 failures):", message["message"])
        self.assertIn(
            "tests.lifespan.test_protocol.boom raised RuntimeError: boom", message["message"]
        )
        self.assertIn(
            "tests.lifespan.test_protocol.sync_boom raised ValueError", message["message"]
        )
        self.assertEqual(ran, ["healthy"])

    async def test_shutdown_sees_startup_state_even_when_server_emptied_it(self):
        seen = []

        async def close(sender, *, state, **kwargs):
            seen.append(state.get("client"))

        server_state = {}
        with connected(asgi_startup, open_client), connected(asgi_shutdown, close):
            lifespan = Lifespan(get_asgi_application(), server_state)
            await lifespan.startup()
            opened = server_state["client"]
            server_state.clear()  # granian does this before lifespan.shutdown
            self.assertEqual(await lifespan.shutdown(), SHUT)
        self.assertEqual(seen, [opened])

    async def test_cycles_repeat_in_one_process(self):
        counts = {"up": 0, "down": 0}

        async def up(sender, **kwargs):
            counts["up"] += 1

        async def down(sender, **kwargs):
            counts["down"] += 1

        app = get_asgi_application()
        with connected(asgi_startup, up), connected(asgi_shutdown, down):
            for _ in range(3):
                lifespan = Lifespan(app, {})
                self.assertEqual(await lifespan.startup(), COMPLETE)
                self.assertEqual(await lifespan.shutdown(), SHUT)
        self.assertEqual(counts, {"up": 3, "down": 3})

    async def test_cancelled_after_startup_still_shuts_down(self):
        closed = []

        async def close(sender, **kwargs):
            closed.append(True)

        with connected(asgi_shutdown, close):
            lifespan = Lifespan(get_asgi_application(), {})
            await lifespan.startup()
            lifespan.communicator.future.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await lifespan.communicator.future
        self.assertEqual(closed, [True])


class TimeoutTests(SimpleTestCase):
    @override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT=0.2)
    async def test_hanging_startup_receiver_times_out_and_is_named(self):
        cancelled = []

        async def hangs(sender, **kwargs):
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        with (
            connected(asgi_startup, hangs, open_client),
            self.assertLogs("lifespan_signals", "INFO"),
        ):
            started = time.perf_counter()
            message = await Lifespan(get_asgi_application(), {}).startup()
        self.assertLess(time.perf_counter() - started, 3)
        self.assertEqual(message["type"], "lifespan.startup.failed")
        self.assertIn(
            "TimeoutTests.test_hanging_startup_receiver_times_out_and_is_named.<locals>.hangs "
            "timed out: still running after 0.2 s (LIFESPAN_SIGNALS_STARTUP_TIMEOUT)",
            message["message"],
        )
        self.assertNotIn("open_client", message["message"])
        self.assertEqual(cancelled, [True])

    @override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT=0.2)
    async def test_hanging_sync_receiver_names_it_and_those_after_it(self):
        release = threading.Event()
        ran = []

        threads = []

        def hangs(sender, **kwargs):
            threads.append(threading.current_thread())
            release.wait(5)

        def after(sender, **kwargs):
            ran.append("after")

        with connected(asgi_startup, hangs, after), self.assertLogs("lifespan_signals", "INFO"):
            message = await Lifespan(get_asgi_application(), {}).startup()
        release.set()
        text = message["message"]
        self.assertIn(".<locals>.hangs timed out: still running after 0.2 s", text)
        self.assertIn(".<locals>.after timed out: never started after 0.2 s", text)
        # Wait for the event that would disprove it: the receivers' batch runs on to ``after`` in
        # the same thread-sensitive thread once ``hangs`` returns. A call queued behind the batch
        # on that thread runs once the batch is over, whichever way it ended.
        barrier = await sync_to_async(threading.current_thread, thread_sensitive=True)()
        self.assertEqual(threads, [barrier])
        self.assertEqual(ran, [])

    @override_settings(LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT=0.2)
    async def test_hanging_shutdown_receiver_times_out(self):
        async def hangs(sender, **kwargs):
            await asyncio.sleep(60)

        with connected(asgi_shutdown, hangs), self.assertLogs("lifespan_signals", "INFO"):
            lifespan = Lifespan(get_asgi_application(), {})
            await lifespan.startup()
            message = await lifespan.shutdown()
        self.assertEqual(message["type"], "lifespan.shutdown.failed")
        self.assertIn(
            "timed out: still running after 0.2 s (LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT)",
            message["message"],
        )

    @override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT=None)
    async def test_none_means_no_limit(self):
        with connected(asgi_startup, open_client):
            self.assertEqual(await Lifespan(get_asgi_application(), {}).startup(), COMPLETE)

    @override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT="soon")
    async def test_invalid_setting_fails_startup_with_a_clear_message(self):
        with self.assertLogs("lifespan_signals", "INFO"):
            message = await Lifespan(get_asgi_application(), {}).startup()
        self.assertEqual(message["type"], "lifespan.startup.failed")
        self.assertIn(
            "LIFESPAN_SIGNALS_STARTUP_TIMEOUT should be a positive number of seconds or None, "
            "not 'soon'.",
            message["message"],
        )


class ProtocolErrorTests(SimpleTestCase):
    async def assert_protocol_error(self, message_type, error):
        lifespan = Lifespan(get_asgi_application(), {})
        await lifespan.communicator.send_input({"type": message_type})
        with self.assertRaisesMessage(LifespanProtocolError, error):
            await lifespan.communicator.wait(5)

    async def test_unknown_message_type_is_named(self):
        await self.assert_protocol_error(
            "lifespan.reboot",
            "Unknown lifespan message type 'lifespan.reboot'; expected 'lifespan.startup'.",
        )

    async def test_second_startup_is_an_error_and_shuts_down(self):
        closed = []

        async def close(sender, **kwargs):
            closed.append(True)

        with connected(asgi_shutdown, close):
            lifespan = Lifespan(get_asgi_application(), {})
            await lifespan.startup()
            await lifespan.communicator.send_input({"type": "lifespan.startup"})
            with self.assertRaisesMessage(
                LifespanProtocolError, "Received 'lifespan.startup' twice in one lifespan scope."
            ):
                await lifespan.communicator.wait(5)
        self.assertEqual(closed, [True])

    async def test_shutdown_before_startup_is_an_error(self):
        await self.assert_protocol_error(
            "lifespan.shutdown", "Received 'lifespan.shutdown' before 'lifespan.startup' completed."
        )

    async def test_failed_send_from_server_propagates_untouched(self):
        """hypercorn raises from send() on *.failed to stop itself; that must reach it as is."""

        class ServerStops(Exception):
            pass

        messages = [{"type": "lifespan.startup"}]

        async def receive():
            return messages.pop(0)

        async def send(message):
            if message["type"].endswith(".failed"):
                raise ServerStops(message["message"])

        with (
            connected(asgi_startup, boom),
            self.assertLogs("lifespan_signals", "INFO"),
            self.assertRaises(ServerStops),
        ):
            await get_asgi_application()({**LIFESPAN_SCOPE, "state": {}}, receive, send)


class GetStateTests(SimpleTestCase):
    async def test_get_state_during_lifespan_only(self):
        with self.assertRaisesMessage(
            LifespanNotStarted, "No ASGI lifespan is running in this process"
        ):
            get_state()
        seen = []

        async def peek(sender, state, **kwargs):
            seen.append(get_state())
            self.assertIs(get_state(), state)  # what receivers fill is what get_state() gives

        state = {}
        with connected(asgi_startup, open_client, peek):
            lifespan = Lifespan(get_asgi_application(), state)
            await lifespan.startup()
            self.assertEqual(get_state(), state)
            self.assertIn("client", get_state())
            await lifespan.shutdown()
        self.assertEqual(seen, [state])
        with self.assertRaises(LifespanNotStarted):
            get_state()


class CancelledStartupTests(SimpleTestCase):
    async def test_cancelled_during_startup_closes_what_was_opened(self):
        closed = []
        entered = asyncio.Event()

        async def hangs(sender, **kwargs):
            entered.set()
            await asyncio.sleep(60)

        async def close(sender, *, state, **kwargs):
            closed.append(sorted(state))

        with connected(asgi_startup, open_client, hangs), connected(asgi_shutdown, close):
            lifespan = Lifespan(get_asgi_application(), {})
            await lifespan.communicator.send_input({"type": "lifespan.startup"})
            await entered.wait()
            lifespan.communicator.future.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await lifespan.communicator.future
        self.assertEqual(closed, [["client"]])
        with self.assertRaises(LifespanNotStarted):
            get_state()


# -- where sync receivers run --------------------------------------------------------------------


def _run_lifespan_recording_sync_receivers(run: object) -> list[tuple[threading.Thread, object]]:
    """Startup and shutdown through ``run`` (``asyncio.run`` or ``async_to_sync``); for each sync
    receiver call, its thread and its database connection (thread-local; none is opened)."""
    seen = []

    def first(sender, **kwargs):
        seen.append((threading.current_thread(), connections[DEFAULT_DB_ALIAS]))

    def second(sender, **kwargs):
        seen.append((threading.current_thread(), connections[DEFAULT_DB_ALIAS]))

    async def startup_and_shutdown():
        lifespan = Lifespan(get_asgi_application(), {})
        assert await lifespan.startup() == COMPLETE
        assert await lifespan.shutdown() == SHUT

    with connected(asgi_startup, first, second):
        run(startup_and_shutdown)  # type: ignore[operator]
    return seen


def test_under_a_server_sync_receivers_run_in_a_daemon_thread_of_their_own():
    # A server's event loop has no sync thread to return to: asgiref's fallback thread would be
    # joined at exit (a hung receiver would keep the process alive), ours is a daemon.
    seen = _run_lifespan_recording_sync_receivers(lambda main: asyncio.run(main()))
    (thread, used), (same_thread, same_connection) = seen
    assert thread is same_thread
    assert used is same_connection
    assert thread.daemon
    assert thread is not threading.current_thread()
    assert used is not connections[DEFAULT_DB_ALIAS]


def test_called_from_a_sync_thread_sync_receivers_run_in_it_on_its_connection():
    # async_to_sync (tests, commands): thread-sensitive, as Django runs sync receivers.
    seen = _run_lifespan_recording_sync_receivers(lambda main: async_to_sync(main)())
    assert seen == [(threading.current_thread(), connections[DEFAULT_DB_ALIAS])] * 2
