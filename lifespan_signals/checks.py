"""System checks: settings, the ASGI application, and the state middleware.

Every check id of the package is here, registered once in ``AppConfig.ready()``. The validation
of a setting lives beside the code that uses it (:mod:`.conf`, the clients' backends), and says
what is wrong as a :class:`~lifespan_signals.conf.Problem` of a ``kind``; :data:`PROBLEM_IDS` gives
each kind its id.

=====================  ==========================================================================
``E001``, ``E002``     ``LIFESPAN_SIGNALS_STARTUP_TIMEOUT``, ``..._SHUTDOWN_TIMEOUT``: a bad value.
``E004``, ``E005``     The ASGI application cannot be called, or is a WSGI application.
``W001``, ``W002``     The ASGI application does not speak lifespan, or cannot be imported.
``W005``               Whether the ASGI application speaks lifespan cannot be told.
``W003``, ``W004``     The state middleware is missing from ``MIDDLEWARE``, or repeated.
``E010`` .. ``E015``   ``LIFESPAN_SIGNALS_CLIENTS``: its shape, an entry, a backend, an option.
``W020``               ``manage.py runserver`` runs no lifespan (Daphne's, staticfiles', Django's).
``E030``, ``E031``     ``LIFESPAN_SIGNALS_REQUEST_THREADS``: a bad value, an asgiref too old.
``E032``               ``LIFESPAN_SIGNALS_ONE_HOP``: a bad value, or on without request threads.
``W030``               ``LIFESPAN_SIGNALS_REQUEST_THREADS`` on a release it was not tested with.
``W040``               ``CHANNEL_LAYERS``: a Redis host's ``socket_timeout`` within the 5 s receive.
=====================  ==========================================================================
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.handlers.wsgi import WSGIHandler

from lifespan_signals.conf import (
    CLIENTS_SETTING,
    ONE_HOP_HINT,
    REQUEST_THREADS_HINT,
    Problem,
    clients_shape_problem,
    one_hop_problem,
    redact,
    request_threads_problem,
    timeout_problem,
)

__all__ = [
    "PROBLEM_IDS",
    "check_asgi_application",
    "check_channel_layers",
    "check_clients",
    "check_middleware",
    "check_one_hop",
    "check_request_threads",
    "check_runserver",
    "check_settings",
]

# The id of each kind of Problem that the validation of a setting reports.
PROBLEM_IDS = {
    "clients.shape": "lifespan_signals.E010",
    "clients.entry": "lifespan_signals.E011",
    "clients.import": "lifespan_signals.E012",
    "clients.callable": "lifespan_signals.E013",
    "clients.option": "lifespan_signals.E014",
    "clients.value": "lifespan_signals.E015",
}

_MIDDLEWARE = "lifespan_signals.middleware.LifespanStateMiddleware"
_FIX = (
    "Build it with lifespan_signals.asgi.get_asgi_application() instead of Django's, or wrap it: "
    "application = lifespan_signals.asgi.LifespanWrapper(application)."
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
    if count == 0:
        return [
            Warning(
                f"{_MIDDLEWARE} should be in MIDDLEWARE: without it, views have no "
                "request.state (AttributeError: 'ASGIRequest' object has no attribute 'state').",
                hint=f"Add {_MIDDLEWARE!r} to MIDDLEWARE (near the top).",
                id="lifespan_signals.W003",
            )
        ]
    if count > 1:
        return [
            Warning(
                f"{_MIDDLEWARE} should be listed once in MIDDLEWARE, not {count} times.",
                hint="Remove the extra entries.",
                id="lifespan_signals.W004",
            )
        ]
    return []


def check_asgi_application(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    from lifespan_signals.asgi import find_application, innermost, speaks_lifespan

    try:
        found = find_application()
    except Exception as exc:
        return [
            Warning(
                "The project's ASGI application should be importable to check that it speaks "
                f"lifespan, but importing it raised {type(exc).__name__}: {redact(str(exc))}",
                hint="Fix ASGI_APPLICATION (a dotted path to the application object) or asgi.py.",
                id="lifespan_signals.W002",
            )
        ]
    if found is None:
        return []
    path, app = found
    if (problem := _not_asgi(path, app)) is not None:
        return [problem]
    speaks = speaks_lifespan(app)
    if speaks is True:
        return []
    inner = innermost(app)
    what = _name(inner) if inner is app else f"{_name(inner)} (inside {_name(app)})"
    if speaks is False:
        hint = _FIX
        if hasattr(inner, "application_mapping"):
            hint = (
                "Use lifespan_signals.channels.ProtocolTypeRouter instead of Channels' own, or "
                "wrap the router: application = lifespan_signals.asgi.LifespanWrapper(router)."
            )
        return [
            Warning(
                f"The ASGI application {path!r} should speak the ASGI lifespan protocol, but "
                f"{what} does not: asgi_startup and asgi_shutdown receivers will not run under "
                "uvicorn, hypercorn or granian.",
                hint=hint,
                id="lifespan_signals.W001",
            )
        ]
    return [
        Warning(
            f"The ASGI application {path!r} should speak the ASGI lifespan protocol, but whether "
            f"{what} does cannot be told: it is not lifespan_signals' own, nor Django's, "
            "Channels' or Starlette's, nor a middleware that keeps the application it wraps as "
            "'.app' or '.application'.",
            hint="If it does not, wrap it: application = "
            "lifespan_signals.asgi.LifespanWrapper(application). If it does, silence this "
            "warning: SILENCED_SYSTEM_CHECKS = ['lifespan_signals.W005'].",
            id="lifespan_signals.W005",
        )
    ]


def _name(app: object) -> str:
    """The dotted name of a function, or of an object's class."""
    target = app if inspect.isfunction(app) or inspect.isclass(app) else type(app)
    return f"{target.__module__}.{target.__qualname__}"


def check_clients(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``LIFESPAN_SIGNALS_CLIENTS``: its shape, each backend, each backend's options."""
    from lifespan_signals.clients import ClientConfigError
    from lifespan_signals.lifespan.backends import import_backend, option_problems

    value = getattr(settings, CLIENTS_SETTING, {})
    problems: list[Problem] = []
    if problem := clients_shape_problem(value):
        problems.append(problem)
    else:
        for alias, entry in value.items():
            try:
                backend = import_backend(alias, entry["BACKEND"])
            except ClientConfigError as exc:
                problems.append(exc.problem)
                continue
            problems += option_problems(alias, backend, entry.get("OPTIONS", {}))
    # The messages name shapes, not values; a library's own text they quote is redacted too.
    return [
        Error(redact(problem.message), hint=redact(problem.hint), id=PROBLEM_IDS[problem.kind])
        for problem in problems
    ]


def _not_asgi(path: str, app: object) -> CheckMessage | None:
    """An error when ``app`` (found at ``path``) cannot be an ASGI application at all."""
    where = "ASGI_APPLICATION" if getattr(settings, "ASGI_APPLICATION", None) else "asgi.py"
    hint = (
        "Point ASGI_APPLICATION (or 'application' in asgi.py) at an ASGI application: "
        "application = lifespan_signals.asgi.get_asgi_application()."
    )
    if not callable(app):
        return Error(
            f"The ASGI application {path!r} (from {where}) should be an ASGI application, but it "
            f"is {type(app).__name__} {app!r}, which cannot be called.",
            hint=hint,
            id="lifespan_signals.E004",
        )
    if isinstance(app, WSGIHandler) or _looks_wsgi(app):
        return Error(
            f"The ASGI application {path!r} (from {where}) should be an ASGI application, but "
            f"{app!r} is a WSGI application (it takes environ and start_response).",
            hint=hint + " Keep the WSGI application in wsgi.py, for WSGI_APPLICATION.",
            id="lifespan_signals.E005",
        )
    return None


def _looks_wsgi(app: object) -> bool:
    """A sync function of two arguments (environ, start_response): never an ASGI application."""
    if not inspect.isfunction(app) or inspect.iscoroutinefunction(app):
        return False
    return len(inspect.signature(app).parameters) == 2


def check_request_threads(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``LIFESPAN_SIGNALS_REQUEST_THREADS``: its value, and the asgiref and Django it relies on."""
    from lifespan_signals.threads import TESTED_WITH, supported, untested_versions

    value = getattr(settings, "LIFESPAN_SIGNALS_REQUEST_THREADS", None)
    if problem := request_threads_problem(value):
        return [Error(problem, hint=REQUEST_THREADS_HINT, id="lifespan_signals.E030")]
    if value is None:
        return []
    asgiref_version = importlib.metadata.version("asgiref")
    if not supported():
        return [
            Error(
                "LIFESPAN_SIGNALS_REQUEST_THREADS needs an asgiref whose ThreadSensitiveContext "
                f"takes an executor, but asgiref {asgiref_version} does not.",
                hint="Upgrade asgiref (pip install -U asgiref), or set "
                "LIFESPAN_SIGNALS_REQUEST_THREADS = None.",
                id="lifespan_signals.E031",
            )
        ]
    untested = untested_versions()
    if not untested:
        return []
    tested = "; ".join(f"{name} {', '.join(versions)}" for name, versions in TESTED_WITH.items())
    return [
        Warning(
            f"LIFESPAN_SIGNALS_REQUEST_THREADS should run on an asgiref and Django it was tested "
            f"with ({tested}), but this is {' and '.join(untested)}.",
            hint="Run your tests with the setting on before you deploy, or set "
            "LIFESPAN_SIGNALS_REQUEST_THREADS = None to keep Django's own threads.",
            id="lifespan_signals.W030",
        )
    ]


# The runserver commands that run no lifespan, by the application that has them. Django's own
# (django.core's) never runs while lifespan_signals is installed: an application's wins over it.
_RUNSERVERS = {
    "daphne": "Daphne's runserver",
    "django.contrib.staticfiles": "staticfiles' runserver (Django's WSGI runserver)",
}
_OUR_RUNSERVER = "lifespan_signals.management.commands.runserver"


def check_runserver(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``manage.py runserver`` runs the lifespan, when the project has something that needs it."""
    from django.core.management import get_commands, load_command_class

    from lifespan_signals.resources import registered
    from lifespan_signals.signals import asgi_shutdown, asgi_startup

    needs = (
        bool(getattr(settings, CLIENTS_SETTING, None))
        or asgi_startup.has_listeners()
        or asgi_shutdown.has_listeners()
        or bool(registered())
    )
    app = get_commands().get("runserver")
    if not needs or app == "lifespan_signals" or app is None:
        return []
    whose = _RUNSERVERS.get(app)
    if whose is None:  # another application's runserver, perhaps a wrapper of ours
        try:
            command = type(load_command_class(app, "runserver"))
        except Exception:
            return []
        if any(cls.__module__ == _OUR_RUNSERVER for cls in command.__mro__):
            return []
        whose = f"the runserver of {app!r}"
    first: list[str] = [name for name in _RUNSERVERS if name in settings.INSTALLED_APPS]
    before = " and ".join(repr(name) for name in first or [app])
    return [
        Warning(
            f"manage.py runserver should run the ASGI lifespan, but it is {whose}, "
            "which runs none: declared clients are not opened, asgi_startup receivers do not "
            "run, and views that use them fail.",
            hint=f"List 'lifespan_signals' in INSTALLED_APPS before {before}: runserver is then "
            "lifespan_signals' own, which runs the lifespan (or serve with 'manage.py "
            "runasgi'). For a runserver without the lifespan, add 'lifespan_signals.W020' to "
            "SILENCED_SYSTEM_CHECKS.",
            id="lifespan_signals.W020",
        )
    ]


def check_one_hop(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``LIFESPAN_SIGNALS_ONE_HOP``: a bool, and request threads to run on when True."""
    value = getattr(settings, "LIFESPAN_SIGNALS_ONE_HOP", False)
    threads = getattr(settings, "LIFESPAN_SIGNALS_REQUEST_THREADS", None)
    if problem := one_hop_problem(value, threads):
        return [Error(problem, hint=ONE_HOP_HINT, id="lifespan_signals.E032")]
    return []


def check_channel_layers(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``CHANNEL_LAYERS``: a ``RedisChannelLayer`` host whose ``socket_timeout`` is not longer
    than channels_redis' blocking receive (5 s), so an idle consumer's read times out."""
    from lifespan_signals.lifespan.layers import (
        BLOCKING_RECEIVE,
        SAFE_SOCKET_TIMEOUT,
        explicit_socket_timeouts,
    )

    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    found: list[CheckMessage] = []
    for alias, entry in layers.items() if isinstance(layers, dict) else ():
        if not isinstance(entry, dict) or entry.get("BACKEND") != _REDIS_LAYER:
            continue
        config = entry.get("CONFIG") or {}
        hosts = config.get("hosts") if isinstance(config, dict) else None
        if not isinstance(hosts, (list, tuple)):
            continue
        for index, value in enumerate(explicit_socket_timeouts(hosts)):
            try:
                seconds = None if value is None else float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                continue
            if seconds is None or seconds != seconds or seconds > BLOCKING_RECEIVE:  # nan: unset
                continue
            found.append(
                Warning(
                    f"CHANNEL_LAYERS[{alias!r}]['CONFIG']['hosts'][{index}]'s socket_timeout "
                    f"should be longer than channels_redis' {BLOCKING_RECEIVE:g} s blocking "
                    f"receive, not {value!r}: an idle consumer's read times out (\"Timeout "
                    'reading from ...") and the consumer dies.',
                    hint=f"Remove socket_timeout (the lifespan then gives the host "
                    f"{SAFE_SOCKET_TIMEOUT:g} s), or set it above {BLOCKING_RECEIVE:g}, e.g. "
                    f"{SAFE_SOCKET_TIMEOUT:g}.",
                    id="lifespan_signals.W040",
                )
            )
    return found


_REDIS_LAYER = "channels_redis.core.RedisChannelLayer"
