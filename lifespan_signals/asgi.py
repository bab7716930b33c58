"""The ASGI applications: Django's handler, or any ASGI app, that also speak lifespan."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import django
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.utils.module_loading import import_string

from lifespan_signals.lifespan import serve_lifespan

__all__ = [
    "LifespanASGIHandler",
    "LifespanMiddleware",
    "find_application",
    "get_asgi_application",
    "speaks_lifespan",
]

# Django's handler and asgiref's typing disagree on these types; callers pass ASGI 3 callables.
Scope = dict[str, Any]
ASGIApp = Any
ASGIReceiveCallable = Any
ASGISendCallable = Any


class _LifespanSupport:
    """Serve ``lifespan`` scopes; give other scopes the state and hand them on (``super()``)."""

    # The state this app created because the server gave none (Daphne); copied into each scope.
    _own_state: dict[str, Any] | None = None

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "lifespan":
            await super().__call__(self._with_state(scope), receive, send)  # type: ignore[misc]
            return
        own = None
        if scope.get("state") is None:
            own = self._own_state = {}
            scope = {**scope, "state": own}
        try:
            handler = self._lifespan_handler()
            if handler is None:
                await serve_lifespan(type(self), scope, receive, send)
            else:
                await handler(scope, receive, send)
        finally:
            if own is not None and self._own_state is own:  # not a later scope's
                self._own_state = None

    def _lifespan_handler(self) -> ASGIApp | None:
        """An application of the user's own to serve lifespan instead of the signals, if any."""
        return None

    def _with_state(self, scope: Scope) -> Scope:
        own = self._own_state
        if own is None or "state" in scope:
            return scope
        # A shallow copy per connection, as servers that support state do.
        return {**scope, "state": own.copy()}


class _Wrapper:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        await self.app(scope, receive, send)


class LifespanASGIHandler(_LifespanSupport, ASGIHandler):
    """Django's ``ASGIHandler``, plus the lifespan protocol; HTTP handling is Django's."""


class LifespanMiddleware(_LifespanSupport, _Wrapper):
    """Wrap any ASGI application: serve ``lifespan`` here, pass every other scope through."""


def get_asgi_application() -> LifespanASGIHandler:
    """Drop-in for ``django.core.asgi.get_asgi_application()`` that also speaks lifespan."""
    django.setup(set_prefix=False)
    return LifespanASGIHandler()


def find_application() -> tuple[str, Any] | None:
    """The project's ASGI application, as ``(dotted path, application)``, or None.

    ``ASGI_APPLICATION`` when set; else ``application`` in the ``asgi`` module next to the settings
    module (``mysite.settings`` → ``mysite.asgi.application``), as ``startproject`` lays it out.
    """
    path = getattr(settings, "ASGI_APPLICATION", None)
    if not path:
        # SETTINGS_MODULE is None under override_settings() and settings.configure().
        settings_module = settings.SETTINGS_MODULE or os.environ.get("DJANGO_SETTINGS_MODULE")
        if not settings_module:
            return None
        package = settings_module.rpartition(".")[0]
        module = f"{package}.asgi" if package else "asgi"
        if importlib.util.find_spec(module) is None:
            return None
        path = f"{module}.application"
    return path, import_string(path)


def speaks_lifespan(app: object) -> bool | None:
    """Whether ``app`` handles lifespan scopes: True, False, or None when it cannot be told."""
    if isinstance(app, _LifespanSupport):
        return True
    if isinstance(app, ASGIHandler):
        return False
    mapping = getattr(app, "application_mapping", None)  # a Channels ProtocolTypeRouter
    if isinstance(mapping, dict):
        return "lifespan" in mapping
    inner = getattr(app, "application", None)  # ASGIStaticFilesHandler and similar wrappers
    return None if inner is None else speaks_lifespan(inner)
