"""Settings, read lazily so that ``override_settings`` works."""

from __future__ import annotations

import builtins
import contextlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "CLIENTS_SETTING",
    "SETTINGS_CHECKS",
    "Problem",
    "clients_shape_problem",
    "redact",
    "refused_settings",
    "settings",
    "shape",
]

DEFAULT_STARTUP_TIMEOUT = 30.0
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
REQUEST_THREADS_HINT = (
    "Set LIFESPAN_SIGNALS_REQUEST_THREADS to e.g. 8 (about the number of requests served at "
    "once), or None."
)


CLIENTS_SETTING = "LIFESPAN_SIGNALS_CLIENTS"
# The tag of the settings' system checks (apps.py registers them with it): lifespan startup runs
# them, so that it refuses what ``manage.py check`` refuses, with the same id and message.
SETTINGS_CHECKS = "lifespan_signals_settings"
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
    """What is wrong with the shape of ``LIFESPAN_SIGNALS_CLIENTS``, or None.

    The message names the key path and the shape of what is there ("a list of 1 dict"), never
    a value: an entry may hold credentials.
    """
    if not isinstance(value, Mapping):
        return Problem(
            "clients.shape",
            f"{CLIENTS_SETTING} should be a dict of aliases to dicts, not {shape(value)}.",
            f"Write e.g. {_EXAMPLE}",
        )
    for alias, entry in value.items():
        if not isinstance(alias, str) or not alias:
            what = "an empty str" if alias == "" else shape(alias)
            message = f"{CLIENTS_SETTING}'s aliases should be non-empty strings, not {what}."
            return Problem("clients.entry", message, f"Write e.g. {_EXAMPLE}")
        where = f"{CLIENTS_SETTING}[{alias!r}]"
        if not isinstance(entry, Mapping):
            message = f"{where} should be a dict with 'BACKEND' and 'OPTIONS', not {shape(entry)}."
        elif unknown := sorted(map(str, set(entry) - _KEYS)):
            message = f"{where} should have only the keys 'BACKEND' and 'OPTIONS', not {unknown!r}."
        elif not isinstance(backend := entry.get("BACKEND"), str) or "." not in backend:
            what = "a str with no dot" if isinstance(backend, str) else shape(backend)
            message = f"{where}['BACKEND'] should be a dotted path (module.attribute), not {what}."
        elif not isinstance(options := entry.get("OPTIONS", {}), Mapping) or not all(
            isinstance(key, str) for key in options
        ):
            what = (
                "a dict with keys that are not all str"
                if isinstance(options, Mapping)
                else shape(options)
            )
            message = f"{where}['OPTIONS'] should be a dict of keyword arguments, not {what}."
        else:
            continue
        return Problem("clients.entry", message, f"Write e.g. {_EXAMPLE}")
    return None


def shape(value: object) -> str:
    """The type and shape of ``value``, never its content: "a str", "a list of 1 dict"."""
    if value is None:
        return "None"
    name = _type_name(value)
    if isinstance(value, (str, bytes, int, float, complex)) or not isinstance(
        value, (Mapping, list, tuple, set, frozenset)
    ):
        return f"{_article(name)} {name}"
    items = list(value.values() if isinstance(value, Mapping) else value)
    if not items:
        return f"an empty {name}"
    kinds = sorted({_type_name(item) for item in items})
    noun = kinds[0] if len(kinds) == 1 else "item"  # a dict's: the shape of its values
    return f"{_article(name)} {name} of {len(items)} {_plural(noun, len(items))}"


def _type_name(value: object) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def _plural(noun: str, count: int) -> str:
    return noun if count == 1 else f"{noun}s"


# Shorter strings are not treated as secrets: redacting "10" would garble line numbers.
_SHORTEST_SECRET = 4


def redact(text: str) -> str:
    """``text`` with every value of ``LIFESPAN_SIGNALS_CLIENTS`` (each client's ``OPTIONS``, or
    anything in a malformed entry) replaced by ``'***'``: for messages that quote a library's
    own error, which may hold a credential."""
    secrets = _secrets(getattr(django_settings, CLIENTS_SETTING, {}))
    # An exception's type is named, even when an option has its name ("exception": "SystemExit").
    secrets -= _EXCEPTION_NAMES | set(re.findall(r"raised ([\w.]+)", text))
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


_EXCEPTION_NAMES = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def _secrets(value: object, *, in_options: bool = False) -> set[str]:
    """The strings in the setting that may be credentials, in the forms a message shows them."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, item in value.items():
            # A well-formed BACKEND (a dotted path) is named in messages; anything else is not.
            if not in_options and key == "BACKEND" and isinstance(item, str) and "." in item:
                continue
            if not in_options and key == "OPTIONS":
                found |= _secrets(item, in_options=True)
            else:
                found |= _secrets(item, in_options=in_options)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            found |= _secrets(item, in_options=in_options)
    elif isinstance(value, (str, bytes)):
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        forms = {text, repr(text)[1:-1], repr(value)}
        with contextlib.suppress(ValueError):
            password = urlsplit(text).password
            if password:
                forms.add(password)
        found |= {form for form in forms if len(form) >= _SHORTEST_SECRET}
    elif value is not None and not isinstance(value, (bool, int, float)):
        found |= {form for form in (repr(value), str(value)) if len(form) >= _SHORTEST_SECRET}
    return found


def refusal(message: str, fallback: str) -> str:
    """The refusal of a bad setting whose check gives ``message``, as startup words it
    ("lifespan_signals.E001: message HINT: hint"); ``fallback`` when no check does (the app is
    not in ``INSTALLED_APPS``, so its checks are not registered)."""
    for check_id, text in refused_settings():
        if text.startswith(message):
            return f"{check_id}: {text}"
    return fallback


def refused_settings() -> list[tuple[str, str]]:
    """The errors of the settings' system checks (:data:`SETTINGS_CHECKS`), as
    ``(id, "message HINT: hint")``: what lifespan startup refuses. Silenced checks are left out,
    as ``manage.py check`` leaves them out."""
    from django.core.checks import ERROR, run_checks

    return [
        (str(error.id), f"{error.msg} HINT: {error.hint}" if error.hint else str(error.msg))
        for error in run_checks(tags=[SETTINGS_CHECKS])
        if error.level >= ERROR and not error.is_silenced()
    ]


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
        raise ImproperlyConfigured(refusal(problem, problem))
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
            raise ImproperlyConfigured(refusal(problem, f"{problem} {REQUEST_THREADS_HINT}"))
        return value

    @property
    def ONE_HOP(self) -> bool:  # noqa: N802
        """Whether HTTP requests take the one-hop path (docs/howto/request-threads.md)."""
        value = getattr(django_settings, "LIFESPAN_SIGNALS_ONE_HOP", False)
        threads = getattr(django_settings, "LIFESPAN_SIGNALS_REQUEST_THREADS", None)
        problem = one_hop_problem(value, threads)
        if problem:
            raise ImproperlyConfigured(refusal(problem, f"{problem} {ONE_HOP_HINT}"))
        return bool(value)

    @property
    def CLIENTS(self) -> dict[str, dict[str, Any]]:  # noqa: N802
        """Declared clients: alias -> ``{"BACKEND": dotted path, "OPTIONS": {keyword: value}}``."""
        # No local holds the value while this raises: Django's DEBUG page shows the locals of
        # every frame of the traceback, and the value may hold credentials.
        problem = clients_shape_problem(getattr(django_settings, CLIENTS_SETTING, {}))
        if problem:
            message = refusal(problem.message, f"{problem.message} {problem.hint}")
            raise ImproperlyConfigured(message)
        declared = getattr(django_settings, CLIENTS_SETTING, {})
        return {alias: dict(entry) for alias, entry in declared.items()}


settings = _Settings()
