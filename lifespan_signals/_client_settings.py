"""The ``LIFESPAN_SIGNALS_CLIENTS`` setting: its shape, its backends, the options they accept."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

from django.utils.module_loading import import_string

__all__: list[str] = []


SETTING = "LIFESPAN_SIGNALS_CLIENTS"
_KEYS = {"BACKEND", "OPTIONS"}
_EXAMPLE = f'{SETTING} = {{"default": {{"BACKEND": "httpx.AsyncClient", "OPTIONS": {{}}}}}}'


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
    except Exception as exc:  # ImportError; ValueError for ".x"; whatever the module raises
        top = path.split(".")[0]
        hint = (
            f"Install it: pip install 'lifespan-signals[{top}]'."
            if top in ("httpx", "aiohttp") and find_spec(top) is None
            else "Check the dotted path (module.attribute), and that its package is installed."
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
                    "lifespan_signals.E014",
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
    from lifespan_signals._backends import convert  # it raises our errors: import it late

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
