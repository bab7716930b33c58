"""A LifespanCommand with a sync handle(), using the startup's clients through async_to_sync."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from asgiref.sync import async_to_sync
from django.core.management.base import CommandError

from lifespan_signals.commands import LifespanCommand
from lifespan_signals.state import get_state
from tests.projects.events import record


async def where_the_clients_work() -> dict[str, Any]:
    """Use the aiohttp session here: it works only on the loop it was made on."""
    state = get_state()
    session = state["aiohttp"]
    return {
        "same_loop": asyncio.get_running_loop() is session._loop,
        "aiohttp": id(session),
        "closed": session.closed,
        "keys": sorted(state),
    }


class Command(LifespanCommand):
    help = "Report where the lifespan's clients are usable from a sync handle()."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--fail", action="store_true", help="Raise CommandError.")
        parser.add_argument("--sleep", type=float, default=0, help="Then sleep this long.")

    def handle(self, *args: Any, **options: Any) -> str:
        report = async_to_sync(where_the_clients_work)()
        record("handle", **report)
        if options["fail"]:
            raise CommandError("handle() failed on purpose")
        if options["sleep"]:
            time.sleep(options["sleep"])
            record("handle-end")
        return json.dumps(report)
