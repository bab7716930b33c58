"""An ASGI application that does not speak lifespan and cannot be told apart (not Django's)."""

from __future__ import annotations

from typing import Any


async def no_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        raise ValueError("no lifespan here")
