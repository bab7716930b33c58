"""Hardening, in process: every exit path keeps the promise, and no mistake fails silently.

Exceptions that are not ``Exception``, receivers that block the loop, receivers that would vanish,
errors that must point the right way, composition with a wrapped app's lifespan. The same cases
under real servers are in ``tests/servers/test_hardening.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import threading
import time
from unittest import mock

from asgiref.sync import markcoroutinefunction
from django.test import SimpleTestCase, override_settings

from lifespan_signals import get_state
from lifespan_signals.asgi import LifespanWrapper, get_asgi_application
from lifespan_signals.lifespan.budget import Budget, TimedOut
from lifespan_signals.lifespan.driver import LifespanFailed
from lifespan_signals.signals import asgi_shutdown, asgi_startup
from lifespan_signals.state import RequestState, StateKeyError
from lifespan_signals.testing import lifespan
from tests.harness.in_process import Lifespan, connected, open_client, registered

COMPLETE = {"type": "lifespan.startup.complete"}
SHUT = {"type": "lifespan.shutdown.complete"}


class Custom(BaseException):
    pass


# Each raised by a receiver or a resource: none may escape, each is that one's failure.
BASE_EXCEPTIONS = {
    "SystemExit": (SystemExit, "raised SystemExit: 3"),
    "KeyboardInterrupt": (KeyboardInterrupt, "raised KeyboardInterrupt"),
    "GeneratorExit": (GeneratorExit, "raised GeneratorExit"),
    "CancelledError": (asyncio.CancelledError, "raised asyncio.CancelledError"),
    "Custom": (Custom, "raised tests.lifespan.test_hardening.Custom"),
}


def _instance(kind):
    return kind(3) if kind is SystemExit else kind()


def async_raiser(kind):
    async def raises(sender, **kwargs):
        raise _instance(kind)

    return raises


def sync_raiser(kind):
    def raises(sender, **kwargs):
        raise _instance(kind)

    return raises


def raising_resource(kind):
    async def raises(state):
        raise _instance(kind)
        yield

    return raises


def tracked_resource(events, name):
    async def resource(state):
        yield
        events.append(name)

    return resource


class Recorder:
    def __init__(self):
        self.calls = []

    async def close(self, sender, *, state, **kwargs):
        self.calls.append(sorted(state))

    def sync_close(self, sender, **kwargs):
        self.calls.append("sync")


class BaseExceptionTests(SimpleTestCase):
    async def test_in_an_async_startup_receiver(self):
        for label, (kind, summary) in BASE_EXCEPTIONS.items():
            recorder = Recorder()
            with (
                self.subTest(label),
                connected(asgi_startup, open_client, async_raiser(kind)),
                connected(asgi_shutdown, recorder.close),
            ):
                lifespan = Lifespan(get_asgi_application(), {})
                message = await lifespan.startup()
                self.assertEqual(message["type"], "lifespan.startup.failed")
                self.assertIn(
                    f"tests.lifespan.test_hardening.async_raiser.<locals>.raises {summary}",
                    message["message"],
                )
                self.assertEqual(recorder.calls, [["client"]])  # shutdown ran, saw the client
                # The app raises the report (as Starlette does), not the receiver's exception.
                with self.assertRaises(LifespanFailed):
                    await lifespan.communicator.wait(5)

    async def test_in_a_sync_startup_receiver(self):
        for label, (kind, summary) in BASE_EXCEPTIONS.items():
            recorder = Recorder()
            with (
                self.subTest(label),
                connected(asgi_startup, sync_raiser(kind)),
                connected(asgi_shutdown, recorder.close),
            ):
                message = await Lifespan(get_asgi_application(), {}).startup()
                self.assertEqual(message["type"], "lifespan.startup.failed")
                self.assertIn(f".raises {summary}", message["message"])
                self.assertEqual(recorder.calls, [[]])

    async def test_in_a_resource_opened_ones_are_closed(self):
        for label, (kind, summary) in BASE_EXCEPTIONS.items():
            events = []
            with (
                self.subTest(label),
                registered(tracked_resource(events, "first-exit"), raising_resource(kind)),
            ):
                message = await Lifespan(get_asgi_application(), {}).startup()
                self.assertEqual(message["type"], "lifespan.startup.failed")
                self.assertIn(f".raises {summary}", message["message"])
                self.assertEqual(events, ["first-exit"])

    async def test_in_a_shutdown_receiver_every_other_one_runs(self):
        for label, (kind, summary) in BASE_EXCEPTIONS.items():
            recorder = Recorder()
            exited = []
            with (
                self.subTest(label),
                connected(asgi_startup, open_client),
                connected(asgi_shutdown, async_raiser(kind), recorder.close, recorder.sync_close),
                registered(tracked_resource(exited, True)),
            ):
                lifespan = Lifespan(get_asgi_application(), {})
                self.assertEqual(await lifespan.startup(), COMPLETE)
                message = await lifespan.shutdown()
                self.assertEqual(message["type"], "lifespan.shutdown.failed")
                self.assertIn(f".raises {summary}", message["message"])
                self.assertEqual(sorted(map(str, recorder.calls)), ["['client']", "sync"])
                self.assertEqual(exited, [True])

    async def test_a_cancellation_by_the_server_propagates_after_cleanup(self):
        closed = []
        entered = asyncio.Event()

        async def hangs(state):
            entered.set()
            await asyncio.sleep(60)
            yield

        async def opened(state):
            yield
            closed.append(True)

        with registered(opened, hangs):
            lifespan = Lifespan(get_asgi_application(), {})
            await lifespan.communicator.send_input({"type": "lifespan.startup"})
            await entered.wait()
            lifespan.communicator.future.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await lifespan.communicator.future
        self.assertEqual(closed, [True])


class BlameTests(SimpleTestCase):
    @override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT=0.3)
    async def test_an_async_receiver_blocking_the_loop_is_named_not_the_innocent(self):
        async def innocent(sender, **kwargs):
            await asyncio.sleep(0.05)

        async def blocker(sender, **kwargs):
            time.sleep(0.8)  # noqa: ASYNC251 - the point

        with connected(asgi_startup, innocent, blocker):
            message = await Lifespan(get_asgi_application(), {}).startup()
        self.assertEqual(message["type"], "lifespan.startup.failed")
        self.assertIn("Lifespan startup failed (1 failure)", message["message"])
        self.assertRegex(
            message["message"],
            r"\.blocker timed out: ran 0\.[89]\d* s, past the 0\.3 s budget "
            r"\(LIFESPAN_SIGNALS_STARTUP_TIMEOUT\); it blocked the event loop for 0\.[89] s",
        )
        self.assertNotIn(".innocent", message["message"])

    @override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT=0.3)
    async def test_a_sync_receiver_blamed_while_an_async_one_blocks_the_loop(self):
        def fast(sender, **kwargs):
            pass

        async def blocker(sender, **kwargs):
            time.sleep(0.6)  # noqa: ASYNC251

        with connected(asgi_startup, fast, blocker):
            message = await Lifespan(get_asgi_application(), {}).startup()
        self.assertIn(".blocker timed out: ran", message["message"])
        self.assertNotIn(".fast timed out", message["message"])  # it ran late, or not at all

    @override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT=0.3)
    async def test_a_resource_blocking_the_loop_is_named(self):
        exited = []

        async def blocking(state):
            time.sleep(0.6)  # noqa: ASYNC251
            yield
            exited.append(True)

        with registered(blocking):
            message = await Lifespan(get_asgi_application(), {}).startup()
        self.assertIn(".blocking timed out: ran 0.", message["message"])
        self.assertIn("it blocked the event loop for 0.", message["message"])
        self.assertEqual(exited, [True])  # entered late is entered: it is exited too

    @override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT=0.2)
    async def test_sync_receivers_finishing_around_the_deadline_are_named_right(self):
        # The worker and the loop race at the deadline: whatever the order, the report names
        # sync receivers only, and never fails on its own bookkeeping.
        for delay in (0.15, 0.18, 0.19, 0.2, 0.21, 0.22, 0.25):

            def slow(sender, delay=delay, **kwargs):
                threading.Event().wait(delay)

            def after(sender, **kwargs):
                pass

            async def quick(sender, **kwargs):
                pass

            with self.subTest(delay=delay), connected(asgi_startup, slow, after, quick):
                message = await Lifespan(get_asgi_application(), {}).startup()
                self.assertIn(message["type"], {COMPLETE["type"], "lifespan.startup.failed"})
                self.assertNotIn(".quick", message.get("message", ""))

    async def test_an_outside_cancellation_after_the_timer_fired_propagates(self):
        if sys.version_info < (3, 11):
            self.skipTest("Python 3.10 cannot tell the two cancellations apart")
        budget = Budget("SETTING", 0.05)

        async def body():
            with budget.deadline():
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    asyncio.current_task().cancel()  # the server's, right after our timer's
                    raise

        with self.assertRaises(asyncio.CancelledError):
            await asyncio.ensure_future(body())

    async def test_the_timer_alone_is_a_timeout(self):
        budget = Budget("SETTING", 0.05)
        with self.assertRaises(TimedOut), budget.deadline():
            await asyncio.sleep(10)

    async def test_a_failing_shutdown_signal_still_exits_resources(self):
        exited = []

        async def resource(state):
            yield
            exited.append(True)

        with registered(resource):
            lifespan = Lifespan(get_asgi_application(), {})
            self.assertEqual(await lifespan.startup(), COMPLETE)
            with mock.patch(
                "lifespan_signals.lifespan.machine.send_signal", side_effect=RuntimeError("broken")
            ):
                message = await lifespan.shutdown()
        self.assertEqual(message["type"], "lifespan.shutdown.failed")
        self.assertIn("lifespan shutdown raised RuntimeError: broken", message["message"])
        self.assertEqual(exited, [True])


class ReceiverKindsTests(SimpleTestCase):
    @override_settings(DEBUG=False)
    async def test_a_nested_function_connected_without_weak_runs(self):
        ran = []

        def connect():
            async def nested(sender, **kwargs):
                ran.append(True)

            asgi_startup.connect(nested)  # Django's default would be weak=True
            return nested.__qualname__

        qualname = connect()
        gc.collect()
        try:
            self.assertEqual(await Lifespan(get_asgi_application(), {}).startup(), COMPLETE)
        finally:
            for receiver in list(asgi_startup._live_receivers(None)[1]):
                if receiver.__qualname__ == qualname:
                    asgi_startup.disconnect(receiver)
        self.assertEqual(ran, [True])

    async def test_weak_true_is_still_possible(self):
        ran = []

        async def nested(sender, **kwargs):
            ran.append(True)

        asgi_startup.connect(nested, weak=True)
        del nested
        gc.collect()
        self.assertEqual(await Lifespan(get_asgi_application(), {}).startup(), COMPLETE)
        self.assertEqual(ran, [])

    async def test_a_callable_object_with_async_call_is_awaited(self):
        class Receiver:
            def __init__(self):
                self.ran = False

            async def __call__(self, sender, **kwargs):
                await asyncio.sleep(0)
                self.ran = True

        receiver = Receiver()
        with connected(asgi_startup, receiver):
            self.assertEqual(await Lifespan(get_asgi_application(), {}).startup(), COMPLETE)
        self.assertTrue(receiver.ran)

    async def test_a_sync_receiver_returning_an_awaitable_is_refused(self):
        async def work():
            pass

        def returns_coroutine(sender, **kwargs):
            return work()

        with connected(asgi_startup, returns_coroutine):
            message = await Lifespan(get_asgi_application(), {}).startup()
        self.assertEqual(message["type"], "lifespan.startup.failed")
        self.assertIn(
            ".returns_coroutine returned an awaitable (<coroutine object", message["message"]
        )
        self.assertIn("Make the receiver an 'async def' function", message["message"])

    async def test_a_marked_sync_function_is_awaited(self):
        ran = []

        async def work():
            ran.append(True)

        def marked(sender, **kwargs):
            return work()

        markcoroutinefunction(marked)
        with connected(asgi_startup, marked):
            self.assertEqual(await Lifespan(get_asgi_application(), {}).startup(), COMPLETE)
        self.assertEqual(ran, [True])


class ErrorsPointTheRightWayTests(SimpleTestCase):
    def test_missing_key_with_no_lifespan_in_the_process(self):
        with self.assertRaises(StateKeyError) as caught:
            RequestState({})["http"]  # uvicorn --lifespan off gives an empty state
        self.assertIn("no ASGI lifespan ran in this process", str(caught.exception))
        self.assertIn("not uvicorn --lifespan off", str(caught.exception))
        self.assertNotIn("Set it in an asgi_startup receiver", str(caught.exception))

    def test_attribute_style_reads_and_writes_the_state(self):
        data = {"http": 1}
        state = RequestState(data)
        self.assertEqual(state.http, 1)
        state.db = 2
        self.assertEqual(data, {"http": 1, "db": 2})
        del state.db
        self.assertEqual(data, {"http": 1})
        with self.assertRaisesMessage(AttributeError, "request.state has no key 'httpx'"):
            state.httpx  # noqa: B018

    async def test_testing_lifespan_says_which_application_runs(self):
        with self.assertLogs("lifespan_signals.testing", "INFO") as logs:
            async with lifespan():
                pass
        self.assertIn("running lifespan_signals.asgi.get_asgi_application()", logs.output[0])
        self.assertIn("Pass app=... to run another", logs.output[0])

    @override_settings(SETTINGS_MODULE="tests.projects.splitproject.settings.production")
    async def test_testing_lifespan_finds_split_settings_application(self):
        with self.assertLogs("lifespan_signals.testing", "INFO") as logs:
            async with lifespan():
                pass
        self.assertEqual(
            logs.output,
            [
                "INFO:lifespan_signals.testing:lifespan(): running "
                "tests.projects.splitproject.asgi.application"
            ],
        )


class CompositionTests(SimpleTestCase):
    async def test_a_wrapped_starlette_apps_lifespan_runs_inside_ours(self):
        from starlette.applications import Starlette

        events = []

        @contextlib.asynccontextmanager
        async def inner_lifespan(app):
            events.append(("inner-startup", sorted(get_state())))
            yield {"inner": True}
            events.append("inner-shutdown")

        async def ours(sender, *, state, **kwargs):
            events.append("ours-startup")
            state["ours"] = True

        async def ours_down(sender, *, state, **kwargs):
            events.append(("ours-shutdown", sorted(state)))

        app = LifespanWrapper(Starlette(lifespan=inner_lifespan))
        server_state = {}
        with connected(asgi_startup, ours), connected(asgi_shutdown, ours_down):
            lifespan = Lifespan(app, server_state)
            self.assertEqual(await lifespan.startup(), COMPLETE)
            self.assertEqual(server_state, {"ours": True, "inner": True})
            self.assertEqual(await lifespan.shutdown(), SHUT)
        self.assertEqual(
            events,
            [
                "ours-startup",
                ("inner-startup", ["ours"]),
                "inner-shutdown",
                ("ours-shutdown", ["inner", "ours"]),
            ],
        )

    async def test_a_wrapped_lifespan_that_fails_fails_startup(self):
        from starlette.applications import Starlette

        closed = []

        @contextlib.asynccontextmanager
        async def inner_lifespan(app):
            raise RuntimeError("inner boom")
            yield

        async def close(sender, **kwargs):
            closed.append(True)

        app = LifespanWrapper(Starlette(lifespan=inner_lifespan))
        with connected(asgi_shutdown, close):
            message = await Lifespan(app, {}).startup()
        self.assertEqual(message["type"], "lifespan.startup.failed")
        self.assertIn("(the wrapped application's lifespan) failed: ", message["message"])
        self.assertIn("inner boom", message["message"])
        self.assertEqual(closed, [True])


class GranianClearsItsStateTests(SimpleTestCase):
    async def test_shutdown_sees_keys_set_after_startup_though_the_server_cleared_its_dict(self):
        seen = []

        async def close(sender, *, state, **kwargs):
            seen.append(dict(state))

        server_state = {}
        with connected(asgi_startup, open_client), connected(asgi_shutdown, close):
            lifespan = Lifespan(get_asgi_application(), server_state)
            self.assertEqual(await lifespan.startup(), COMPLETE)
            get_state()["rotated"] = "new"  # reaches the server's dict, which requests copy
            self.assertEqual(server_state["rotated"], "new")
            server_state.clear()  # what granian does before lifespan.shutdown
            self.assertEqual(await lifespan.shutdown(), SHUT)
        self.assertEqual(sorted(seen[0]), ["client", "rotated"])
        self.assertEqual(seen[0]["rotated"], "new")


class StaticFilesWrapperTests(SimpleTestCase):
    @override_settings(
        INSTALLED_APPS=["django.contrib.staticfiles", "lifespan_signals"],
        STATIC_URL="/static/",
        ASGI_APPLICATION="tests._static_asgi.application",
    )
    def test_runasgi_does_not_wrap_ours_a_second_time(self):
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        from lifespan_signals.management.commands.runasgi import Command
        from tests.harness.in_process import fake_module

        application = ASGIStaticFilesHandler(get_asgi_application())
        fake_module("tests._static_asgi", application=application)
        self.assertIs(Command().get_application({"use_static_handler": False}), application)


class LiveStateTests(SimpleTestCase):
    def test_every_write_reaches_the_servers_dict(self):
        from lifespan_signals.state import LiveState

        server = {"a": 1}
        live = LiveState(server)
        live["b"] = 2
        live.update({"c": 3}, d=4)
        self.assertEqual(live.setdefault("e", 5), 5)
        self.assertEqual(live.setdefault("e", 6), 5)
        self.assertEqual(server, {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
        del live["a"]
        self.assertEqual(live.pop("b"), 2)
        self.assertEqual(live.pop("missing", None), None)
        key, _ = live.popitem()
        self.assertNotIn(key, server)
        self.assertEqual(server, dict(live))
        server.clear()  # the server's doing (granian): ours keeps what it had
        self.assertEqual(len(live), 2)
        live.clear()
        self.assertEqual((live, server), ({}, {}))

    def test_request_state_private_and_missing_attributes(self):
        state = RequestState({})
        with self.assertRaises(AttributeError):
            state._private  # noqa: B018
        with self.assertRaisesMessage(AttributeError, "request.state has no key 'gone'"):
            del state.gone


class WatchedTests(SimpleTestCase):
    async def test_closing_it_closes_what_it_awaits(self):
        from lifespan_signals.lifespan.budget import Watched

        finished = []

        async def inner():
            try:
                await asyncio.sleep(10)
            finally:
                finished.append(True)

        steps = Watched(inner()).__await__()
        steps.send(None)  # the first step: it now waits on the sleep
        steps.close()
        self.assertEqual(finished, [True])

    async def test_no_limit_is_no_deadline(self):
        with Budget("SETTING", None).deadline():
            await asyncio.sleep(0)
