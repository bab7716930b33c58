"""Record, for each request, the thread objects its sync code ran in; at exit, what still runs."""

from __future__ import annotations

import atexit
import json
import os
import threading
from typing import Any

from django.apps import AppConfig
from django.core.signals import request_started


def started(*, scope: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if scope is not None:  # ASGI requests: the receiver's thread, for the middleware to compare
        scope["started_in"] = threading.current_thread()


def report_request_threads_at_exit() -> None:
    """Write to ``LIFESPAN_TEST_EVENTS`` the request threads still alive at exit (after a grace)."""
    path = os.environ.get("LIFESPAN_TEST_EVENTS")
    alive = [t for t in threading.enumerate() if t.name.startswith("lifespan-signals-request")]
    for thread in alive:
        thread.join(5.0)
    if path:
        names = [thread.name for thread in alive if thread.is_alive()]
        with open(path, "a") as file:
            file.write(json.dumps({"event": "exit", "pid": os.getpid(), "alive": names}) + "\n")


class ThreadAppConfig(AppConfig):
    name = "tests.threadapp"

    def ready(self) -> None:
        request_started.connect(started, dispatch_uid="tests.threadapp.started")
        atexit.register(report_request_threads_at_exit)
