"""Faulty receivers for the fault suite, next to ``serverapp``'s healthy ones.

Set by the environment (described in ``tests/settings.py``): ``LIFESPAN_TEST_HANG``,
``LIFESPAN_TEST_HANG_SECONDS``, ``LIFESPAN_TEST_FAIL_SHUTDOWN`` and ``LIFESPAN_TEST_WATCH``.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.utils import autoreload

from lifespan_signals.signals import asgi_shutdown, asgi_startup
from tests.projects.events import record
from tests.settings import env


def _hang_seconds() -> float:
    return float(env("LIFESPAN_TEST_HANG_SECONDS") or "3600")


async def hang(**kwargs: Any) -> None:
    record("hang-start")
    try:
        await asyncio.sleep(_hang_seconds())
    except asyncio.CancelledError:
        record("hang-cancelled")
        raise


def hang_sync(**kwargs: Any) -> None:
    record("hang-start")
    threading.Event().wait(_hang_seconds())
    record("hang-end")


async def fail_shutdown(**kwargs: Any) -> None:
    record("fail_shutdown")
    raise RuntimeError("boom at shutdown")


def sync_shutdown(**kwargs: Any) -> None:
    record("sync-shutdown")


async def start_background(**kwargs: Any) -> None:
    """Start a task and leave it running, as a receiver starting a poller does."""
    stubborn = env("LIFESPAN_TEST_BACKGROUND") == "stubborn"

    async def poll() -> None:
        record("bg-start")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if stubborn:  # refuses to stop: it must not keep the process for ever
                record("bg-refuses")
                await asyncio.sleep(3600)
            raise
        finally:
            record("bg-finally")

    asyncio.create_task(poll(), name="poller")  # noqa: RUF006 - left running on purpose


def changed(sender: autoreload.BaseReloader, file_path: Path, **kwargs: Any) -> None:
    record("file-changed", path=str(file_path))


def watch_extra_file(sender: autoreload.BaseReloader, **kwargs: Any) -> None:
    sender.extra_files.add(Path(env("LIFESPAN_TEST_WATCH")).resolve())
    # The stat reloader looks once a second; a test doing many restarts has no second to spare.
    if isinstance(sender, autoreload.StatReloader):
        sender.SLEEP_TIME = 0.2


class FaultAppConfig(AppConfig):
    name = "tests.projects.faultapp"
    label = "faultapp"

    def ready(self) -> None:
        where, _, kind = (env("LIFESPAN_TEST_HANG") or "").partition("-")
        if where:
            signal = {"startup": asgi_startup, "shutdown": asgi_shutdown}[where]
            signal.connect(hang_sync if kind == "sync" else hang)
        if env("LIFESPAN_TEST_FAIL_SHUTDOWN") == "1":
            asgi_shutdown.connect(fail_shutdown)
            asgi_shutdown.connect(sync_shutdown)
        if env("LIFESPAN_TEST_BACKGROUND"):
            asgi_startup.connect(start_background)
        if env("LIFESPAN_TEST_WATCH"):
            autoreload.autoreload_started.connect(watch_extra_file)
            autoreload.file_changed.connect(changed)
