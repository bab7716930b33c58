"""``manage.py layersend N``: N group_sends from a sync ``handle()``, each through
``async_to_sync``, inside the lifespan (``--stock``: a plain ``BaseCommand``, as without it)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from lifespan_signals.commands import LifespanCommand
from tests.projects.layersapp.consumers import GROUP


def send(count: int) -> None:
    layer = get_channel_layer()
    for index in range(count):
        async_to_sync(layer.group_send)(GROUP, {"type": "broadcast", "text": f"command-{index}"})


class Command(LifespanCommand):
    help = "Send N messages to the group 'broadcast' from a sync handle()."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("count", type=int, help="How many messages to send.")

    def handle(self, *args: Any, count: int, **options: Any) -> None:
        send(count)
        self.stdout.write(f"sent {count}")
