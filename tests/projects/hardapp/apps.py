"""Receivers and resources for the hardening tests under real servers, set by the environment.

Next to ``serverapp``'s healthy receivers (clients opened at startup, closed at shutdown), as
``LIFESPAN_TEST_RAISE``, ``LIFESPAN_TEST_BLOCK`` and ``LIFESPAN_TEST_NESTED`` ask (described in
``tests/settings.py``).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from typing import Any

from django.apps import AppConfig

from lifespan_signals.resources import register_resource
from lifespan_signals.signals import asgi_shutdown, asgi_startup
from tests.projects.events import record
from tests.projects.serverapp.apps import close_clients
from tests.settings import env


class Custom(BaseException):
    """A BaseException of the user's own."""


def make(name: str) -> BaseException:
    kinds: dict[str, type[BaseException]] = {
        "SystemExit": SystemExit,
        "KeyboardInterrupt": KeyboardInterrupt,
        "GeneratorExit": GeneratorExit,
        "CancelledError": asyncio.CancelledError,
        "Custom": Custom,
    }
    return kinds[name](f"{name} from the test")


def _raiser(phase: str, name: str) -> Any:
    async def raises(**kwargs: Any) -> None:
        record(f"raise-{phase}")
        raise make(name)

    return raises


def _raising_resource(phase: str, name: str) -> Any:
    async def raising_resource(state: dict[str, Any]) -> AsyncIterator[None]:
        record("resource-enter")
        if phase == "startup":
            raise make(name)
        yield
        record("resource-exit")
        raise make(name)

    return raising_resource


async def block(**kwargs: Any) -> None:
    record("block-start")
    time.sleep(float(env("LIFESPAN_TEST_BLOCK")))  # noqa: ASYNC251 - the point
    record("block-end")


async def sync_shutdown_after(**kwargs: Any) -> None:
    record("healthy-shutdown")


class HardAppConfig(AppConfig):
    name = "tests.projects.hardapp"
    label = "hardapp"

    def ready(self) -> None:
        if spec := env("LIFESPAN_TEST_RAISE"):
            phase, kind, name = spec.split(":")
            if kind == "resource":
                register_resource(_raising_resource(phase, name))
            elif phase == "startup":
                asgi_startup.connect(_raiser(phase, name))
            else:
                # Before the healthy ones: they must still run.
                asgi_shutdown.disconnect(close_clients)
                asgi_shutdown.connect(_raiser(phase, name))
                asgi_shutdown.connect(close_clients)
                asgi_shutdown.connect(sync_shutdown_after)
        if env("LIFESPAN_TEST_BLOCK"):
            asgi_startup.connect(block)
        if env("LIFESPAN_TEST_NESTED") == "1":

            async def nested(**kwargs: Any) -> None:
                record("nested-startup")

            asgi_startup.connect(nested)  # no reference kept but the signal's
            gc.collect()
