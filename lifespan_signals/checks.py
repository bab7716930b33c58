"""System checks: settings, the ASGI application, and the state middleware."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from lifespan_signals.conf import timeout_problem

__all__ = ["check_asgi_application", "check_clients", "check_middleware", "check_settings"]

_MIDDLEWARE = "lifespan_signals.middleware.LifespanStateMiddleware"
_FIX = (
    "Build it with lifespan_signals.asgi.get_asgi_application() instead of Django's, or wrap it: "
    "application = lifespan_signals.asgi.LifespanMiddleware(application)."
)


def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for check_id, name in (
        ("lifespan_signals.E001", "LIFESPAN_SIGNALS_STARTUP_TIMEOUT"),
        ("lifespan_signals.E002", "LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT"),
    ):
        problem = timeout_problem(name)
        if problem:
            errors.append(
                Error(
                    problem,
                    hint=f"Set {name} to e.g. 30 (seconds), or None for no limit.",
                    id=check_id,
                )
            )
    return errors


def check_middleware(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    count = list(getattr(settings, "MIDDLEWARE", None) or []).count(_MIDDLEWARE)
    if count > 1:
        return [
            Warning(
                f"{_MIDDLEWARE} should be listed once in MIDDLEWARE, not {count} times.",
                hint="Remove the extra entries.",
                id="lifespan_signals.W003",
            )
        ]
    return []


def check_asgi_application(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    from lifespan_signals.asgi import find_application, speaks_lifespan
    from lifespan_signals.middleware import LifespanStateMiddleware

    try:
        found = find_application()
    except Exception as exc:
        return [
            Warning(
                "The project's ASGI application should be importable to check that it speaks "
                f"lifespan, but importing it raised {type(exc).__name__}: {exc}",
                hint="Fix ASGI_APPLICATION (a dotted path to the application object) or asgi.py.",
                id="lifespan_signals.W002",
            )
        ]
    if found is None:
        return []
    path, app = found
    if isinstance(app, LifespanStateMiddleware):
        return [
            Error(
                f"{path!r} should be an ASGI application, not LifespanStateMiddleware: that one is "
                "Django middleware and goes in MIDDLEWARE.",
                hint=f"List {_MIDDLEWARE!r} in MIDDLEWARE and, in asgi.py, use "
                "lifespan_signals.asgi.get_asgi_application() (or LifespanMiddleware around "
                "any ASGI app).",
                id="lifespan_signals.E003",
            )
        ]
    if speaks_lifespan(app) is False:
        hint = _FIX
        if hasattr(app, "application_mapping"):
            hint = (
                "Use lifespan_signals.channels.ProtocolTypeRouter instead of Channels' own, or "
                "wrap the router: application = lifespan_signals.asgi.LifespanMiddleware(router)."
            )
        return [
            Warning(
                f"The ASGI application {path!r} should speak the ASGI lifespan protocol, but "
                f"{type(app).__module__}.{type(app).__qualname__} does not: asgi_startup and "
                "asgi_shutdown receivers will not run under uvicorn, hypercorn or granian.",
                hint=hint,
                id="lifespan_signals.W001",
            )
        ]
    return []


def check_clients(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``LIFESPAN_SIGNALS_CLIENTS``: its shape, each backend, each backend's options."""
    from lifespan_signals._client_settings import (
        ClientConfigError,
        import_backend,
        option_problems,
        shape_problem,
    )

    value = getattr(settings, "LIFESPAN_SIGNALS_CLIENTS", {})
    problems = []
    if problem := shape_problem(value):
        problems.append(problem)
    else:
        for alias, entry in value.items():
            try:
                backend = import_backend(alias, entry["BACKEND"])
            except ClientConfigError as exc:
                problems.append(exc.problem)
                continue
            problems += option_problems(alias, backend, entry.get("OPTIONS", {}))
    return [Error(problem.message, hint=problem.hint, id=problem.check_id) for problem in problems]
