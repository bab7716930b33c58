"""ASGI applications that do not speak lifespan correctly (``LIFESPAN_TEST_ASGI_APPLICATION``)."""

from __future__ import annotations

import asyncio
from typing import Any


async def raises(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise ValueError(f"no {scope['type']} here")


async def returns(scope: dict[str, Any], receive: Any, send: Any) -> None:
    return


async def raises_at_shutdown(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "lifespan.startup.complete"})
    await receive()
    raise RuntimeError("no shutdown here")


async def silent(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await asyncio.Event().wait()  # never replies
