"""A Starlette application with a lifespan of its own, wrapped in ``LifespanWrapper``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import django

django.setup()

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from lifespan_signals.asgi import LifespanWrapper  # noqa: E402
from tests.projects.events import record  # noqa: E402


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    record("starlette-startup")
    yield {"starlette": "ready"}
    record("starlette-shutdown")


async def keys(request: Request) -> JSONResponse:
    return JSONResponse(sorted(request.state._state))


application = LifespanWrapper(Starlette(routes=[Route("/keys/", keys)], lifespan=lifespan))
