"""``manage.py layersend_stock N``: what ``layersend`` does, in a plain ``BaseCommand``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tests.projects.layersapp.management.commands.layersend import send


class Command(BaseCommand):
    help = "Send N messages to the group 'broadcast' from a sync handle(), with no lifespan."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("count", type=int, help="How many messages to send.")

    def handle(self, *args: Any, count: int, **options: Any) -> None:
        send(count)
        self.stdout.write(f"sent {count}")
