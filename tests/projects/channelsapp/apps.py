"""Receivers that open one aiohttp session per process at startup and close it at shutdown.

Each process appends what happened, as JSON lines, to the file named by ``LIFESPAN_TEST_EVENTS``.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from django.apps import AppConfig

from lifespan_signals.signals import asgi_shutdown, asgi_startup
from tests.projects.events import record

# What startup created in this process, to check that shutdown got the very same object.
_created: dict[str, Any] = {}


async def open_session(*, sender: type, state: dict[str, Any], **kwargs: Any) -> None:
    state["aiohttp"] = _created["aiohttp"] = aiohttp.ClientSession()
    record("startup", sender=sender.__qualname__, aiohttp=id(state["aiohttp"]))


async def close_session(*, state: dict[str, Any], **kwargs: Any) -> None:
    session = state.get("aiohttp")
    if session is not None:  # startup may have failed before it got there
        await session.close()
        record("shutdown", same=session is _created.get("aiohttp"), closed=session.closed)


class ChannelsAppConfig(AppConfig):
    name = "tests.projects.channelsapp"
    label = "channelsapp"

    def ready(self) -> None:
        asgi_startup.connect(open_session, dispatch_uid="tests.projects.channelsapp.open_session")
        asgi_shutdown.connect(
            close_session, dispatch_uid="tests.projects.channelsapp.close_session"
        )
