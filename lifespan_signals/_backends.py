"""Declared clients' backends: the setting's shape, importing, plain options converted, open, close.

httpx and aiohttp are imported only when a ``BACKEND`` is theirs (importing it did so already).
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string

__all__: list[str] = []

SETTING = "LIFESPAN_SIGNALS_CLIENTS"
_KEYS = {"BACKEND", "OPTIONS"}
_EXAMPLE = f'{SETTING} = {{"default": {{"BACKEND": "httpx.AsyncClient", "OPTIONS": {{}}}}}}'
Closer = Callable[[], Any]


@dataclass(frozen=True)
class Problem:
    """What is wrong with the setting, as a system check reports it."""

    check_id: str
    message: str
    hint: str


class ClientConfigError(ValueError):
    """A declared client's configuration is wrong: raised when it is opened."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.message} {problem.hint}")
        self.problem = problem


def shape_problem(value: object) -> Problem | None:
    """What is wrong with the setting's shape (E010, E011), or None."""
    if not isinstance(value, Mapping):
        return Problem(
            "lifespan_signals.E010",
            f"{SETTING} should be a dict of aliases to dicts, not {value!r}.",
            f"Write e.g. {_EXAMPLE}",
        )
    for alias, entry in value.items():
        where = f"{SETTING}[{alias!r}]"
        if not isinstance(alias, str) or not alias:
            message = f"{SETTING}'s aliases should be non-empty strings, not {alias!r}."
        elif not isinstance(entry, Mapping):
            message = f"{where} should be a dict with 'BACKEND' and 'OPTIONS', not {entry!r}."
        elif unknown := sorted(map(str, set(entry) - _KEYS)):
            message = f"{where} should have only the keys 'BACKEND' and 'OPTIONS', not {unknown!r}."
        elif not isinstance(entry.get("BACKEND"), str) or "." not in entry["BACKEND"]:
            message = f"{where}['BACKEND'] should be a dotted path, not {entry.get('BACKEND')!r}."
        elif not isinstance(options := entry.get("OPTIONS", {}), Mapping) or not all(
            isinstance(key, str) for key in options
        ):
            message = f"{where}['OPTIONS'] should be a dict of keyword arguments, not {options!r}."
        else:
            continue
        return Problem("lifespan_signals.E011", message, f"Write e.g. {_EXAMPLE}")
    return None


def import_backend(alias: str, path: str) -> Callable[..., Any]:
    """The ``BACKEND`` object; :class:`ClientConfigError` when missing or not callable."""
    where = f"{SETTING}[{alias!r}]['BACKEND']"
    try:
        backend = import_string(path)
    except ImportError as exc:
        top = path.split(".")[0]
        hint = (
            f"Install it: pip install 'lifespan-signals[{top}]'."
            if top in ("httpx", "aiohttp")
            else "Check the dotted path, and that its package is installed."
        )
        message = f"{where} should be importable, but importing {path!r} failed: {exc}"
        raise ClientConfigError(Problem("lifespan_signals.E012", message, hint)) from exc
    if not callable(backend):
        raise ClientConfigError(
            Problem(
                "lifespan_signals.E013",
                f"{where} should name a class or factory, not {backend!r}.",
                "Point it at a callable that returns the client, e.g. 'httpx.AsyncClient'.",
            )
        )
    return backend  # type: ignore[no-any-return]


def option_problems(
    alias: str, backend: Callable[..., Any], options: Mapping[str, Any]
) -> list[Problem]:
    """Keys the backend does not accept (E014) and values that cannot be converted (E015)."""
    problems = []
    accepted = _accepted(backend)
    for key in options:
        if accepted is not None and key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f"Did you mean {close[0]!r}? " if close else ""
            problems.append(
                Problem(
                    "lifespan_signals.E014",
                    f"{SETTING}[{alias!r}]['OPTIONS'] should hold keyword arguments of "
                    f"{_name(backend)}, which does not accept {key!r}.",
                    f"{hint}Accepted: {', '.join(sorted(accepted))}.",
                )
            )
    try:
        convert(alias, backend, options, on_loop=False)
    except ClientConfigError as exc:
        problems.append(exc.problem)
    return problems


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
                f"{where} should be convertible for {_name(backend)}, but {value!r} is not: {exc}",
                "Use positive numbers of seconds (or None for no limit), and the keyword "
                "arguments the library documents for a dict.",
            )
            raise ClientConfigError(problem) from exc
    return converted


async def open_backend(alias: str, entry: Mapping[str, Any]) -> tuple[Any, Closer]:
    """Build and enter one declared client on the running loop; return it and its closer."""
    backend = import_backend(alias, entry["BACKEND"])
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


def _accepted(backend: Callable[..., Any]) -> list[str] | None:
    """Keyword argument names of ``backend``; None when it takes ``**kwargs`` or cannot tell."""
    try:
        parameters = inspect.signature(backend).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [parameter.name for parameter in parameters if parameter.kind in keyword]


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


def _name(backend: object) -> str:
    return f"{getattr(backend, '__module__', '?')}.{getattr(backend, '__qualname__', backend)}"


def _seconds(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("seconds should be a number, or None for no limit")
    if math.isnan(value) or math.isinf(value) or value <= 0:
        raise ValueError("seconds should be positive and finite (None: no limit)")
    return float(value)


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
    accepted = _accepted(aiohttp.TCPConnector) or []
    if unknown := sorted(set(value) - set(accepted)):
        raise TypeError(f"aiohttp.TCPConnector does not accept {unknown!r}")
    return value


def _seconds_in(value: Any, names: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError("a dict of keyword arguments is needed here")
    return {key: _seconds(item) if key in names else item for key, item in value.items()}
