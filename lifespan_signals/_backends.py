"""Declared clients' backends: plain options converted, then opened and closed on the loop.

httpx and aiohttp are imported only when a ``BACKEND`` is theirs (importing it did so already).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from lifespan_signals._client_settings import (
    SETTING,
    ClientConfigError,
    Problem,
    accepted_keywords,
    backend_name,
    import_backend,
    unknown_options,
)

__all__: list[str] = []

Closer = Callable[[], Any]


def convert(
    alias: str, backend: Callable[..., Any], options: Mapping[str, Any], *, on_loop: bool
) -> dict[str, Any]:
    """``options`` with plain values turned into what httpx/aiohttp want.

    ``on_loop``: build objects that need a running loop (aiohttp's connector); else only check.
    """
    converted = dict(options)
    library = _library(backend)
    for key, value in options.items():
        where = f"{SETTING}[{alias!r}]['OPTIONS'][{key!r}]"
        try:
            if library == "httpx" and key in ("timeout", "limits"):
                converted[key] = _httpx(key, value)
            elif library == "aiohttp" and key == "timeout":
                converted[key] = _aiohttp_timeout(value)
            elif library == "aiohttp" and key == "connector" and isinstance(value, Mapping):
                converted[key] = _aiohttp_connector(value, on_loop)
        except (TypeError, ValueError) as exc:
            problem = Problem(
                "lifespan_signals.E015",
                f"{where} should be convertible for {backend_name(backend)}, but {value!r} is "
                f"not: {exc}",
                "Use positive numbers of seconds (or None for no limit), and the keyword "
                "arguments the library documents for a dict.",
            )
            raise ClientConfigError(problem) from exc
    return converted


async def open_backend(alias: str, entry: Mapping[str, Any]) -> tuple[Any, Closer]:
    """Build and enter one declared client on the running loop; return it and its closer."""
    backend = import_backend(alias, entry["BACKEND"])
    if unknown := unknown_options(alias, backend, entry.get("OPTIONS", {})):
        raise ClientConfigError(unknown[0])
    options = convert(alias, backend, entry.get("OPTIONS", {}), on_loop=True)
    try:
        made = backend(**options)
        if inspect.isawaitable(made) and not _is_async_cm(made):
            made = await made
    except BaseException:
        for key, value in options.items():  # a connector we built: nobody else will close it
            if value is not entry.get("OPTIONS", {}).get(key) and hasattr(value, "close"):
                await call_closer(value.close)
        raise
    if _is_async_cm(made):
        try:
            return await made.__aenter__(), lambda: made.__aexit__(None, None, None)
        except BaseException:
            await _close_unentered(made)
            raise
    closer = getattr(made, "aclose", None) or getattr(made, "close", None)
    if not callable(closer):
        raise TypeError(
            f"{SETTING}[{alias!r}]: {entry['BACKEND']} returned {made!r}, which is not an async "
            "context manager and has no aclose() or close(). Point BACKEND at a factory whose "
            "result can be closed."
        )
    return made, closer


async def call_closer(closer: Closer) -> None:
    result = closer()
    if inspect.isawaitable(result):
        await result


async def _close_unentered(made: Any) -> None:
    closer = getattr(made, "aclose", None) or getattr(made, "close", None)
    if callable(closer):
        await call_closer(closer)


def _is_async_cm(obj: object) -> bool:
    return hasattr(obj, "__aenter__") and hasattr(obj, "__aexit__")


def _library(backend: Callable[..., Any]) -> str | None:
    top = getattr(backend, "__module__", "").split(".")[0]
    if top == "httpx":
        import httpx

        return "httpx" if _subclass(backend, httpx.AsyncClient) else None
    if top == "aiohttp":
        import aiohttp

        return "aiohttp" if _subclass(backend, aiohttp.ClientSession) else None
    return None


def _subclass(backend: object, cls: type) -> bool:
    return isinstance(backend, type) and issubclass(backend, cls)


def _seconds(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("seconds should be a number, or None for no limit")
    try:
        seconds = float(value)
    except OverflowError:  # an int too large for a float (10**400)
        seconds = math.inf
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError("seconds should be positive and finite (None: no limit)")
    return seconds


def _httpx(key: str, value: Any) -> Any:
    import httpx

    if key == "limits":
        return httpx.Limits(**_seconds_in(value, ("keepalive_expiry",)))
    if isinstance(value, Mapping):
        names = ("timeout", "connect", "read", "write", "pool")
        return httpx.Timeout(**_seconds_in(value, names))
    return httpx.Timeout(_seconds(value))


def _aiohttp_timeout(value: Any) -> Any:
    import aiohttp

    if isinstance(value, Mapping):
        names = ("total", "connect", "sock_read", "sock_connect")
        return aiohttp.ClientTimeout(**_seconds_in(value, names))
    return aiohttp.ClientTimeout(total=_seconds(value))


def _aiohttp_connector(value: Mapping[str, Any], on_loop: bool) -> Any:
    import aiohttp

    if on_loop:
        return aiohttp.TCPConnector(**value)
    accepted = accepted_keywords(aiohttp.TCPConnector) or []
    if unknown := sorted(set(value) - set(accepted)):
        raise TypeError(f"aiohttp.TCPConnector does not accept {unknown!r}")
    return value


def _seconds_in(value: Any, names: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError("a dict of keyword arguments is needed here")
    return {key: _seconds(item) if key in names else item for key, item in value.items()}
