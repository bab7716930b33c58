"""A LifespanCommand with an async handle(), using the startup's clients directly."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.core.management.base import CommandError

from lifespan_signals.commands import LifespanCommand
from tests.projects.commandsapp.management.commands.use_clients import where_the_clients_work
from tests.projects.events import record


class Command(LifespanCommand):
    help = "Report where the lifespan's clients are usable from an async handle()."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--fail", action="store_true", help="Raise CommandError.")
        parser.add_argument("--sleep", type=float, default=0, help="Then sleep this long.")

    async def handle(self, *args: Any, **options: Any) -> str:
        report = await where_the_clients_work()
        record("handle", **report)
        if options["fail"]:
            raise CommandError("handle() failed on purpose")
        if options["sleep"]:
            try:
                await asyncio.sleep(options["sleep"])
            except asyncio.CancelledError:
                record("handle-cancelled", closed=report["closed"])
                raise
            record("handle-end")
        return json.dumps(report)
