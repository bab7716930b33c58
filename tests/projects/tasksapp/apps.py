"""Records the declared client the lifespan opened, and whether shutdown closed it."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig

from lifespan_signals.clients import clients
from lifespan_signals.signals import asgi_shutdown, asgi_startup
from tests.projects.events import record

_opened: dict[str, Any] = {}


async def opened(**kwargs: Any) -> None:
    _opened["api"] = clients["api"]
    record("startup", client=id(clients["api"]))


async def closing(**kwargs: Any) -> None:
    # Receivers run before the declared clients close: note which one is open now.
    record("shutdown", client=id(_opened.get("api")))


class TasksAppConfig(AppConfig):
    name = "tests.projects.tasksapp"
    label = "tasksapp"

    def ready(self) -> None:
        asgi_startup.connect(opened)
        asgi_shutdown.connect(closing)
