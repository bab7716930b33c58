"""Settings, read lazily so that ``override_settings`` works."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["CLIENTS_SETTING", "Problem", "clients_shape_problem", "settings"]

DEFAULT_STARTUP_TIMEOUT = 30.0
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
REQUEST_THREADS_HINT = (
    "Set LIFESPAN_SIGNALS_REQUEST_THREADS to e.g. 8 (about the number of requests served at "
    "once), or None."
)


CLIENTS_SETTING = "LIFESPAN_SIGNALS_CLIENTS"
_KEYS = {"BACKEND", "OPTIONS"}
_EXAMPLE = f'{CLIENTS_SETTING} = {{"default": {{"BACKEND": "httpx.AsyncClient", "OPTIONS": {{}}}}}}'


@dataclass(frozen=True)
class Problem:
    """What is wrong with a setting. ``kind`` names the check; :mod:`lifespan_signals.checks`
    gives each kind its check id."""

    kind: str
    message: str
    hint: str


def clients_shape_problem(value: object) -> Problem | None:
    """What is wrong with the shape of ``LIFESPAN_SIGNALS_CLIENTS``, or None."""
    if not isinstance(value, Mapping):
        return Problem(
            "clients.shape",
            f"{CLIENTS_SETTING} should be a dict of aliases to dicts, not {value!r}.",
            f"Write e.g. {_EXAMPLE}",
        )
    for alias, entry in value.items():
        where = f"{CLIENTS_SETTING}[{alias!r}]"
        if not isinstance(alias, str) or not alias:
            message = f"{CLIENTS_SETTING}'s aliases should be non-empty strings, not {alias!r}."
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
        return Problem("clients.entry", message, f"Write e.g. {_EXAMPLE}")
    return None


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float (10**400)
        return False


def timeout_value_problem(name: str, value: object) -> str | None:
    """Say what is wrong with ``value`` as the timeout ``name``, or None when it is valid."""
    if value is None or (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and value > 0
        and _finite(value)
    ):
        return None
    return f"{name} should be a positive number of seconds or None, not {value!r}."


def timeout_problem(name: str) -> str | None:
    """Say what is wrong with the timeout setting ``name``, or None when it is valid."""
    return timeout_value_problem(name, getattr(django_settings, name, None))


def request_threads_problem(value: object) -> str | None:
    """Say what is wrong with ``value`` as ``LIFESPAN_SIGNALS_REQUEST_THREADS``, or None."""
    if value is None or (type(value) is int and value >= 1):
        return None
    return (
        "LIFESPAN_SIGNALS_REQUEST_THREADS should be a whole number of threads (at least 1), "
        f"or None for Django's own new thread per request, not {value!r}."
    )


ONE_HOP_HINT = (
    "Set LIFESPAN_SIGNALS_ONE_HOP = True together with LIFESPAN_SIGNALS_REQUEST_THREADS (e.g. 32), "
    "or set LIFESPAN_SIGNALS_ONE_HOP = False."
)


def one_hop_problem(value: object, threads: object) -> str | None:
    """Say what is wrong with ``value`` as ``LIFESPAN_SIGNALS_ONE_HOP``, or None."""
    if type(value) is not bool:
        return f"LIFESPAN_SIGNALS_ONE_HOP should be True or False, not {value!r}."
    if value and threads is None:
        return (
            "LIFESPAN_SIGNALS_ONE_HOP = True should come with LIFESPAN_SIGNALS_REQUEST_THREADS "
            "set: the one-hop path serves each request in a kept request thread."
        )
    return None


def _timeout(name: str, default: float) -> float | None:
    if not hasattr(django_settings, name):
        return default
    problem = timeout_problem(name)
    if problem:
        raise ImproperlyConfigured(problem)
    value: float | None = getattr(django_settings, name)
    return value


class _Settings:
    @property
    def STARTUP_TIMEOUT(self) -> float | None:  # noqa: N802 - settings are upper case
        """Seconds that lifespan startup (resources and receivers) may take; None: no limit."""
        return _timeout("LIFESPAN_SIGNALS_STARTUP_TIMEOUT", DEFAULT_STARTUP_TIMEOUT)

    @property
    def SHUTDOWN_TIMEOUT(self) -> float | None:  # noqa: N802
        """Seconds that lifespan shutdown (receivers and resources) may take; None: no limit."""
        return _timeout("LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT", DEFAULT_SHUTDOWN_TIMEOUT)

    @property
    def REQUEST_THREADS(self) -> int | None:  # noqa: N802
        """How many idle request threads to keep for reuse; None: a new thread per request."""
        value = getattr(django_settings, "LIFESPAN_SIGNALS_REQUEST_THREADS", None)
        problem = request_threads_problem(value)
        if problem:
            raise ImproperlyConfigured(f"{problem} {REQUEST_THREADS_HINT}")
        return value

    @property
    def ONE_HOP(self) -> bool:  # noqa: N802
        """Whether HTTP requests take the one-hop path (docs/howto/request-threads.md)."""
        value = getattr(django_settings, "LIFESPAN_SIGNALS_ONE_HOP", False)
        threads = getattr(django_settings, "LIFESPAN_SIGNALS_REQUEST_THREADS", None)
        problem = one_hop_problem(value, threads)
        if problem:
            raise ImproperlyConfigured(f"{problem} {ONE_HOP_HINT}")
        return bool(value)

    @property
    def CLIENTS(self) -> dict[str, dict[str, Any]]:  # noqa: N802
        """Declared clients: alias -> ``{"BACKEND": dotted path, "OPTIONS": {keyword: value}}``."""
        value = getattr(django_settings, CLIENTS_SETTING, {})
        problem = clients_shape_problem(value)
        if problem:
            raise ImproperlyConfigured(f"{problem.message} {problem.hint}")
        return {alias: dict(entry) for alias, entry in value.items()}


settings = _Settings()
