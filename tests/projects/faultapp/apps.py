"""Faulty receivers for the fault suite, next to ``tests.projects.serverapp``'s healthy ones.

Set by the environment:

- ``LIFESPAN_TEST_HANG``: ``startup`` or ``shutdown`` connects the async receiver ``hang`` to that
  signal; ``startup-sync`` / ``shutdown-sync`` connect the sync ``hang_sync`` instead. Both record
  ``hang-start`` and then wait ``LIFESPAN_TEST_HANG_SECONDS`` (default 3600).
- ``LIFESPAN_TEST_FAIL_SHUTDOWN=1``: an async shutdown receiver that fails, plus a sync one that
  records ``sync-shutdown`` (so both kinds of healthy receivers are around the failing one).
- ``LIFESPAN_TEST_WATCH``: a file the autoreloader watches besides the modules, so a test can
  trigger restarts without touching a file that other tests (or test runs) watch too; the
  reloader then looks for changes five times a second, and records ``file-changed`` when it
  notices one.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.utils import autoreload

from lifespan_signals.signals import asgi_shutdown, asgi_startup
from tests.projects.serverapp.apps import record


def _hang_seconds() -> float:
    return float(os.environ.get("LIFESPAN_TEST_HANG_SECONDS", "3600"))


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


def changed(sender: autoreload.BaseReloader, file_path: Path, **kwargs: Any) -> None:
    record("file-changed", path=str(file_path))


def watch_extra_file(sender: autoreload.BaseReloader, **kwargs: Any) -> None:
    sender.extra_files.add(Path(os.environ["LIFESPAN_TEST_WATCH"]).resolve())
    # The stat reloader looks once a second; a test doing many restarts has no second to spare.
    if isinstance(sender, autoreload.StatReloader):
        sender.SLEEP_TIME = 0.2


class FaultAppConfig(AppConfig):
    name = "tests.projects.faultapp"
    label = "faultapp"

    def ready(self) -> None:
        where, _, kind = os.environ.get("LIFESPAN_TEST_HANG", "").partition("-")
        if where:
            signal = {"startup": asgi_startup, "shutdown": asgi_shutdown}[where]
            signal.connect(hang_sync if kind == "sync" else hang)
        if os.environ.get("LIFESPAN_TEST_FAIL_SHUTDOWN") == "1":
            asgi_shutdown.connect(fail_shutdown)
            asgi_shutdown.connect(sync_shutdown)
        if os.environ.get("LIFESPAN_TEST_WATCH"):
            autoreload.autoreload_started.connect(watch_extra_file)
            autoreload.file_changed.connect(changed)
