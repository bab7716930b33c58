"""A sync request_started receiver that notes its thread."""

from __future__ import annotations

import threading
from typing import Any

from django.apps import AppConfig
from django.core.signals import request_started


def started(*, scope: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if scope is not None:  # ASGI requests: the receiver's thread, for the middleware to compare
        scope["started_in"] = threading.current_thread()


class ThreadAppConfig(AppConfig):
    name = "tests.projects.threadapp"

    def ready(self) -> None:
        request_started.connect(started, dispatch_uid="tests.projects.threadapp.started")
