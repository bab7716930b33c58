"""Settings, read lazily so that ``override_settings`` works."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["settings"]

DEFAULT_STARTUP_TIMEOUT = 30.0
DEFAULT_SHUTDOWN_TIMEOUT = 10.0


def timeout_value_problem(name: str, value: object) -> str | None:
    """Say what is wrong with ``value`` as the timeout ``name``, or None when it is valid."""
    if value is None or (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    ):
        return None
    return f"{name} should be a positive number of seconds or None, not {value!r}."


def timeout_problem(name: str) -> str | None:
    """Say what is wrong with the timeout setting ``name``, or None when it is valid."""
    return timeout_value_problem(name, getattr(django_settings, name, None))


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
    def CLIENTS(self) -> dict[str, dict[str, Any]]:  # noqa: N802
        """Declared clients: alias -> ``{"BACKEND": dotted path, "OPTIONS": {keyword: value}}``."""
        from lifespan_signals._client_settings import shape_problem

        value = getattr(django_settings, "LIFESPAN_SIGNALS_CLIENTS", {})
        problem = shape_problem(value)
        if problem:
            raise ImproperlyConfigured(f"{problem.message} {problem.hint}")
        return {alias: dict(entry) for alias, entry in value.items()}


settings = _Settings()
