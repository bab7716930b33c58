"""Other lifespan clients than servers: asgi-lifespan's ``LifespanManager`` and Starlette's
``TestClient``. Both see a failure only through the application's exception, as Starlette's own
lifespan raises it after ``lifespan.startup.failed``: ours raises the report too."""

from __future__ import annotations

import threading
import time

from asgi_lifespan import LifespanManager
from django.test import SimpleTestCase
from starlette.testclient import TestClient

from lifespan_signals.asgi import get_asgi_application
from lifespan_signals.lifespan.driver import LifespanFailed
from lifespan_signals.signals import asgi_shutdown, asgi_startup
from tests.harness.in_process import connected


async def fail(sender, **kwargs):
    raise RuntimeError("no database")


def _in_thread(function, timeout=10.0):
    """Run ``function`` in a thread; its outcome, or an AssertionError if it hangs."""
    outcome = {}

    def run():
        try:
            outcome["result"] = function()
        except BaseException as exc:  # the test looks at it
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still running after {timeout} s"
    return outcome


class LifespanManagerTests(SimpleTestCase):
    async def test_a_failed_startup_raises_the_report_at_once(self):
        with connected(asgi_startup, fail), self.assertLogs("lifespan_signals", "INFO"):
            started = time.monotonic()
            with self.assertRaises(LifespanFailed) as caught:
                async with LifespanManager(get_asgi_application(), startup_timeout=5):
                    pass  # pragma: no cover - startup fails
        self.assertLess(time.monotonic() - started, 2)  # not the manager's 5 s timeout
        self.assertIn("Lifespan startup failed (1 failure):", str(caught.exception))
        self.assertIn(
            "tests.lifespan.test_lifespan_clients.fail raised RuntimeError", str(caught.exception)
        )

    async def test_a_failed_shutdown_raises_the_report_at_once(self):
        with connected(asgi_shutdown, fail), self.assertLogs("lifespan_signals", "INFO"):
            started = time.monotonic()
            with self.assertRaises(LifespanFailed) as caught:
                async with LifespanManager(get_asgi_application(), shutdown_timeout=5):
                    pass
        self.assertLess(time.monotonic() - started, 2)
        self.assertIn("Lifespan shutdown failed (1 failure):", str(caught.exception))

    async def test_a_clean_lifespan_runs_both_phases(self):
        ran = []

        async def record(sender, signal, **kwargs):
            ran.append(signal)

        with connected(asgi_startup, record), connected(asgi_shutdown, record):
            async with LifespanManager(get_asgi_application()):
                self.assertEqual(ran, [asgi_startup])
        self.assertEqual(ran, [asgi_startup, asgi_shutdown])


class StarletteTestClientTests(SimpleTestCase):
    def test_a_failed_startup_raises_and_the_block_never_runs(self):
        ran = []

        def use():
            with TestClient(get_asgi_application()):
                ran.append(True)  # pragma: no cover - startup fails

        with connected(asgi_startup, fail), self.assertLogs("lifespan_signals", "INFO"):
            outcome = _in_thread(use)
        self.assertEqual(ran, [])
        self.assertIsInstance(outcome.get("error"), LifespanFailed, outcome)
        self.assertIn("Lifespan startup failed (1 failure):", str(outcome["error"]))

    def test_a_failed_shutdown_raises_on_exit_instead_of_hanging(self):
        def use():
            with TestClient(get_asgi_application()):
                pass

        with connected(asgi_shutdown, fail), self.assertLogs("lifespan_signals", "INFO"):
            outcome = _in_thread(use)
        self.assertIsInstance(outcome.get("error"), LifespanFailed, outcome)
        self.assertIn("Lifespan shutdown failed (1 failure):", str(outcome["error"]))
