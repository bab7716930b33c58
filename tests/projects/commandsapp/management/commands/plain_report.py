"""A plain ``BaseCommand`` (not a LifespanCommand): run by ``manage.py lifespan run``."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand, CommandError

from tests.projects.commandsapp.management.commands.use_clients import where_the_clients_work
from tests.projects.events import record


class Command(BaseCommand):
    help = "Report where the lifespan's clients are usable from a command that knows no lifespan."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--fail", action="store_true", help="Raise CommandError.")
        parser.add_argument("--exit", type=int, default=None, help="Exit with this status.")
        parser.add_argument("--sleep", type=float, default=0, help="Then sleep this long.")

    def handle(self, *args: Any, **options: Any) -> None:
        report = async_to_sync(where_the_clients_work)()
        record("plain", **report)
        if options["fail"]:
            raise CommandError("plain_report failed on purpose")
        if options["sleep"]:
            time.sleep(options["sleep"])
            record("plain-end")
        self.stdout.write(json.dumps(report))
        if options["exit"] is not None:
            sys.exit(options["exit"])
