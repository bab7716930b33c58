"""Declared clients' backends: the ``BACKEND`` imported, its ``OPTIONS`` checked and converted
(plain values to what httpx/aiohttp want), then the client opened and closed on the loop.

The system checks run the same conversion as a dry run (``on_loop=False``), so that what
``manage.py check`` accepts is what startup accepts. httpx and aiohttp are imported only when a
``BACKEND`` is theirs (importing it did so already).
"""

from __future__ import annotations

import difflib
import inspect
import math
import sys
from collections.abc import Callable, Mapping
from importlib.util import find_spec
from typing import Any

from django.utils.module_loading import import_string

from lifespan_signals.clients import ClientConfigError
from lifespan_signals.conf import CLIENTS_SETTING as SETTING
from lifespan_signals.conf import Problem, redact, shape

__all__ = [
    "Closer",
    "accepted_keywords",
    "call_closer",
    "convert",
    "import_backend",
    "open_backend",
    "option_problems",
    "unknown_options",
]


def import_backend(alias: str, path: str) -> Callable[..., Any]:
    """The ``BACKEND`` object; :class:`ClientConfigError` when missing or not callable."""
    where = f"{SETTING}[{alias!r}]['BACKEND']"
    try:
        backend = import_string(path)
    except Exception as exc:  # ImportError; ValueError for ".x"; whatever the module raises
        top = path.split(".")[0]
        hint = (
            f"Install it: pip install 'lifespan-signals[{top}]'."
            if top in ("httpx", "aiohttp") and find_spec(top) is None
            else "Check the dotted path (module.attribute), and that its package is installed."
        )
        message = f"{where} should be importable, but importing {path!r} failed: {redact(str(exc))}"
        raise ClientConfigError(Problem("clients.import", message, hint)) from exc
    if not callable(backend):
        raise ClientConfigError(
            Problem(
                "clients.callable",
                f"{where} should name a class or factory, not {shape(backend)}.",
                "Point it at a callable that returns the client, e.g. 'httpx.AsyncClient'.",
            )
        )
    return backend  # type: ignore[no-any-return]


def unknown_options(
    alias: str, backend: Callable[..., Any], options: Mapping[str, Any]
) -> list[Problem]:
    """Keys of ``options`` that ``backend`` does not accept (E014), from its signature."""
    problems = []
    accepted = accepted_keywords(backend)
    for key in options:
        if accepted is not None and key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f"Did you mean {close[0]!r}? " if close else ""
            problems.append(
                Problem(
                    "clients.option",
                    f"{SETTING}[{alias!r}]['OPTIONS'] should hold keyword arguments of "
                    f"{backend_name(backend)}, which does not accept {key!r}.",
                    f"{hint}Accepted: {', '.join(sorted(accepted))}.",
                )
            )
    return problems


def option_problems(
    alias: str, backend: Callable[..., Any], options: Mapping[str, Any]
) -> list[Problem]:
    """Keys the backend does not accept (E014) and values that cannot be converted (E015)."""
    problems = unknown_options(alias, backend, options)
    try:
        convert(alias, backend, options, on_loop=False)
    except ClientConfigError as exc:
        problems.append(exc.problem)
    return problems


def accepted_keywords(backend: Callable[..., Any]) -> list[str] | None:
    """Keyword argument names of ``backend``; None when it takes ``**kwargs`` or cannot tell."""
    try:
        parameters = inspect.signature(backend).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [parameter.name for parameter in parameters if parameter.kind in keyword]


def backend_name(backend: object) -> str:
    return f"{getattr(backend, '__module__', '?')}.{getattr(backend, '__qualname__', backend)}"


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
                "clients.value",
                f"{where} should be convertible for {backend_name(backend)}, but "
                f"{shape(value)} is not: {redact(str(exc))}",
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
            client = await made.__aenter__()
        except BaseException:
            await _close_unentered(made)
            raise
        exit_made: Closer = lambda: made.__aexit__(None, None, None)  # noqa: E731
        if client is None:
            await call_closer(exit_made)
            raise TypeError(
                f"{SETTING}[{alias!r}]: {entry['BACKEND']} yielded None, not a client. Did the "
                "factory yield the client? Write 'yield client', not a bare 'yield'."
            )
        return client, exit_made
    if made is None:
        raise TypeError(
            f"{SETTING}[{alias!r}]: {entry['BACKEND']} returned None, not a client. Did the "
            "factory return the client (or yield it, as an async context manager)?"
        )
    closer = getattr(made, "aclose", None) or getattr(made, "close", None)
    if not callable(closer):
        raise TypeError(
            f"{SETTING}[{alias!r}]: {entry['BACKEND']} returned {shape(made)}, which is not an "
            "async context manager and has no aclose() or close(). Point BACKEND at a factory "
            "whose result can be closed."
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
    """``"httpx"`` for ``httpx.AsyncClient`` and its subclasses (a project's own too), likewise
    ``"aiohttp"`` for ``aiohttp.ClientSession``; else None. Only a library already imported can
    be one (a subclass's module imported it), so this imports nothing."""
    if not isinstance(backend, type):
        return None
    for library, name in (("httpx", "AsyncClient"), ("aiohttp", "ClientSession")):
        base = getattr(sys.modules.get(library), name, None)
        if isinstance(base, type) and issubclass(backend, base):
            return library
    return None


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

    if isinstance(value, httpx.Limits if key == "limits" else httpx.Timeout):
        return value  # the library's own option object: as it is
    if key == "limits":
        return httpx.Limits(**_seconds_in(value, ("keepalive_expiry",)))
    if isinstance(value, Mapping):
        names = ("timeout", "connect", "read", "write", "pool")
        return httpx.Timeout(**_seconds_in(value, names))
    return httpx.Timeout(_seconds(value))


def _aiohttp_timeout(value: Any) -> Any:
    import aiohttp

    if isinstance(value, aiohttp.ClientTimeout):
        return value  # the library's own option object: as it is
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
