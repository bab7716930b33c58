"""The ASGI applications: Django's handler, or any ASGI app, that also speak lifespan."""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any, NamedTuple, overload

import django
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.utils.module_loading import import_string

from lifespan_signals import conf
from lifespan_signals.lifespan.app import ASGIApp, LifespanApp, Receive, Scope, Send
from lifespan_signals.threads import RequestThreads, supported

if TYPE_CHECKING:
    from lifespan_signals._one_hop import OneHop

__all__ = [
    "LifespanASGIHandler",
    "LifespanWrapper",
    "ProjectApplication",
    "find_application",
    "get_asgi_application",
    "innermost",
    "project_application",
    "speaks_lifespan",
    "with_lifespan",
]


class _Wrapper:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        return await self.app(scope, receive, send)


class LifespanASGIHandler(LifespanApp, ASGIHandler):
    """Django's ``ASGIHandler``, plus the lifespan protocol; HTTP handling is Django's.

    With ``LIFESPAN_SIGNALS_REQUEST_THREADS = N``, each request runs its sync code in a thread
    kept from an earlier request (up to N kept) instead of a new one; with
    ``LIFESPAN_SIGNALS_ONE_HOP`` too, in one hop to that thread.
    """

    # None (Django's new thread per request) also for subclasses that skip __init__.
    request_threads: RequestThreads | None = None
    one_hop: OneHop | None = None  # LIFESPAN_SIGNALS_ONE_HOP: the request path of _one_hop

    def __init__(self) -> None:
        super().__init__()
        self.request_threads = _request_threads()
        if self.request_threads is not None and _one_hop():
            from lifespan_signals._one_hop import OneHop

            self.one_hop = OneHop(self, self.request_threads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        threads = self.request_threads
        if threads is None or scope["type"] != "http":
            # Lifespan: LifespanApp's. Other scopes: Django's way; it refuses websockets.
            await super().__call__(scope, receive, send)
        elif self.one_hop is not None:
            await self.one_hop(scope, receive, send)
        else:
            thread = threads.acquire(scope)
            try:
                await threads.serve(thread, super().__call__(scope, receive, send))
            except BaseException:
                threads.release(thread, reuse=False)
                raise
            threads.release(thread)


class LifespanWrapper(LifespanApp, _Wrapper):
    """Wrap any ASGI application: serve ``lifespan`` here, pass every other scope through.

    If the wrapped application has a lifespan of its own (a Starlette app with a ``lifespan``
    context, a Channels router with a ``"lifespan"`` application), both run: ours starts first,
    then the wrapped one; at shutdown the wrapped one stops first, then ours. A wrapped
    application that does not speak lifespan (Django's own handler) is left out, as servers do.
    """

    def inner_app(self) -> ASGIApp | None:
        # Ours inside ours would send the signals twice.
        return None if isinstance(self.app, LifespanApp) else self.app


def _one_hop() -> bool:
    """Whether ``LIFESPAN_SIGNALS_ONE_HOP`` is on; a bad value is not refused here, at import,
    but by lifespan startup, which runs its system check (E032)."""
    value = getattr(settings, "LIFESPAN_SIGNALS_ONE_HOP", False)
    threads = getattr(settings, "LIFESPAN_SIGNALS_REQUEST_THREADS", None)
    return conf.one_hop_problem(value, threads) is None and bool(value)


def _request_threads() -> RequestThreads | None:
    """The kept request threads, or None. A bad ``LIFESPAN_SIGNALS_REQUEST_THREADS`` (or an
    asgiref too old for it) is not refused here, at import, but by lifespan startup, which runs
    its system check (E030, E031) and says what to fix."""
    value = getattr(settings, "LIFESPAN_SIGNALS_REQUEST_THREADS", None)
    if value is None or conf.request_threads_problem(value) or not supported():
        return None
    return RequestThreads(value)


def get_asgi_application() -> LifespanASGIHandler:
    """Drop-in for ``django.core.asgi.get_asgi_application()`` that also speaks lifespan."""
    django.setup(set_prefix=False)
    return LifespanASGIHandler()


def find_application() -> tuple[str, Any] | None:
    """The project's ASGI application, as ``(dotted path, application)``, or None.

    ``ASGI_APPLICATION`` when set; else ``application`` in the nearest ``asgi`` module at or above
    the settings module's package: ``mysite.settings`` → ``mysite.asgi`` (``startproject``'s
    layout); ``config.settings.production`` → ``config.settings.asgi``, then ``config.asgi``
    (split settings, as cookiecutter-django lays them out).
    """
    path = getattr(settings, "ASGI_APPLICATION", None)
    if not path:
        module = _asgi_module()
        if module is None:
            return None
        path = f"{module}.application"
    return path, import_string(path)


def _asgi_module() -> str | None:
    # SETTINGS_MODULE is None under override_settings() and settings.configure().
    settings_module = settings.SETTINGS_MODULE or os.environ.get("DJANGO_SETTINGS_MODULE")
    if not settings_module:
        return None
    packages = settings_module.split(".")[:-1]
    candidates = [".".join([*packages[:end], "asgi"]) for end in range(len(packages), 0, -1)]
    for module in candidates or ["asgi"]:
        if importlib.util.find_spec(module) is not None:
            return module
    return None


# Where common ASGI middleware keeps the application it wraps: ``app`` (sentry-sdk's
# SentryAsgiMiddleware, OpenTelemetry's OpenTelemetryMiddleware, Starlette's middleware, asgiref's
# guarantee_single_callable), ``application`` (Django's static files handler, WhiteNoise's).
WRAPPED_ATTRIBUTES = ("app", "application", "asgi_app", "wrapped", "inner", "__wrapped__")
_DEPTH = 20  # wrappers deeper than this are not looked through (a cycle, say)


def speaks_lifespan(app: object) -> bool | None:
    """Whether ``app`` handles lifespan scopes: True, False, or None when it cannot be told.

    Wrappers are looked through: a middleware that keeps the application it wraps under one of
    :data:`WRAPPED_ATTRIBUTES` speaks lifespan when what it wraps does (they pass lifespan on).
    """
    return _speaks_lifespan(app, _DEPTH)


def innermost(app: object) -> object:
    """The application ``app`` wraps, through every wrapper :func:`speaks_lifespan` sees through."""
    for _ in range(_DEPTH):
        if _tells(app) is not None or (inner := _wrapped(app)) is None:
            return app
        app = inner
    return app


def _speaks_lifespan(app: object, depth: int) -> bool | None:
    told = _tells(app)
    if told is not None:
        return told
    inner = _wrapped(app)
    if inner is not None and depth > 0:
        return _speaks_lifespan(inner, depth - 1)
    return False if isinstance(app, ASGIHandler) else None


def _tells(app: object) -> bool | None:
    """What ``app`` itself says, without looking at what it wraps: None when it does not say."""
    if isinstance(app, LifespanApp):
        return True
    mapping = getattr(app, "application_mapping", None)  # a Channels ProtocolTypeRouter
    if isinstance(mapping, dict):
        return "lifespan" in mapping
    if hasattr(getattr(app, "router", None), "lifespan_context"):  # Starlette, FastAPI
        return True
    return None


def _wrapped(app: object) -> object | None:
    """The application that ``app`` (a middleware) wraps, or None."""
    for name in WRAPPED_ATTRIBUTES:
        try:
            inner: object = getattr(app, name, None)
        except Exception:  # a property that raises: not a wrapper we can see through
            continue
        if inner is not None and inner is not app and callable(inner):
            return inner
    return None


def with_lifespan(app: ASGIApp) -> tuple[ASGIApp, bool]:
    """``app``, wrapped in :class:`LifespanWrapper` unless it speaks lifespan; whether it is."""
    if speaks_lifespan(app) is False:
        return LifespanWrapper(app), True
    return app, False


class ProjectApplication(NamedTuple):
    """The project's ASGI application, able to speak lifespan: see :func:`project_application`."""

    application: ASGIApp
    path: str | None  # where it was found; None: none was, this is get_asgi_application()'s
    wrapped: bool  # it did not speak lifespan, so it is wrapped in LifespanWrapper

    def describe(self, host: str) -> str | None:
        """What ``host`` (a command's name) says about it, or None when there is nothing to say."""
        if self.wrapped:
            return (
                f"{self.path} does not speak the ASGI lifespan protocol; {host} wraps it in "
                "lifespan_signals.asgi.LifespanWrapper so asgi_startup/asgi_shutdown still run."
            )
        return None


@overload
def project_application() -> ProjectApplication: ...
@overload
def project_application(*, fallback: bool) -> ProjectApplication | None: ...
def project_application(*, fallback: bool = True) -> ProjectApplication | None:
    """The project's ASGI application (:func:`find_application`), able to speak lifespan.

    With ``fallback``, :func:`get_asgi_application` when the project has none; else None then.
    Used by every host of the lifespan: ``runasgi``, ``LifespanCommand``, the test helpers.
    """
    found = find_application()
    if found is None:
        return ProjectApplication(get_asgi_application(), None, False) if fallback else None
    path, app = found
    app, wrapped = with_lifespan(app)
    return ProjectApplication(app, path, wrapped)
