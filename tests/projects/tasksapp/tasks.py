"""An async task that calls the upstream through the lifespan's declared client."""

from __future__ import annotations

from importlib.util import find_spec

from django.conf import settings

from lifespan_signals.clients import clients
from tests.projects.events import record

if find_spec("django.tasks"):
    from django.tasks import task
else:
    from django_tasks import task


@task
async def fetch(number: int) -> int:
    client = clients["api"]
    response = await client.get(f"{settings.UPSTREAM}?n={number}")
    record("task", number=number, client=id(client), status=response.status_code)
    return response.status_code
