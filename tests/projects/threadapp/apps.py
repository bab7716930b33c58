"""A sync request_started receiver that notes its thread; events for the tests."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from django.apps import AppConfig
from django.core.signals import request_started


def started(*, scope: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if scope is not None:  # ASGI requests: the receiver's thread, for the middleware to compare
        scope["started_in"] = threading.current_thread()


def record(event: str, **data: Any) -> None:
    path = os.environ.get("LIFESPAN_TEST_EVENTS")
    if path:
        with open(path, "a") as file:
            file.write(json.dumps({"event": event, "pid": os.getpid(), **data}) + "\n")


class ThreadAppConfig(AppConfig):
    name = "tests.projects.threadapp"

    def ready(self) -> None:
        request_started.connect(started, dispatch_uid="tests.projects.threadapp.started")
