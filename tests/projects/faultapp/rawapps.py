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


async def _answer_http(scope: dict[str, Any], send: Any) -> None:
    body = b"state" if "state" in scope else b"no state"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def http_raises_on_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Serves HTTP; on lifespan raises, as Django's own handler does."""
    if scope["type"] != "http":
        raise ValueError(f"no {scope['type']} here")
    await _answer_http(scope, send)


async def http_returns_on_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Serves HTTP; returns at once on lifespan."""
    if scope["type"] == "http":
        await _answer_http(scope, send)


async def http_answers_lifespan_with_http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Serves HTTP, and answers every scope as HTTP, lifespan too."""
    await receive()
    await _answer_http(scope, send)
    await asyncio.Event().wait() if scope["type"] == "lifespan" else None
