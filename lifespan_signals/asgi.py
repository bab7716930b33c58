"""The ASGI applications: Django's handler, or any ASGI app, that also speak lifespan."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from typing import TYPE_CHECKING, Any

import django
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler
from django.utils.module_loading import import_string

from lifespan_signals import conf
from lifespan_signals.lifespan import serve_lifespan
from lifespan_signals.threads import RequestThreads, supported

if TYPE_CHECKING:
    from lifespan_signals._one_hop import OneHop

__all__ = [
    "LifespanASGIHandler",
    "LifespanWrapper",
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
        # The request threads of this handler, or of the handlers it wraps (which never see the
        # lifespan): kept from startup, stopped at shutdown.
        pools = _request_thread_pools(self)
        for pool in pools:
            pool.open()

        async def send_after_closing(message: Any) -> None:
            # Stop the kept threads before the server hears that shutdown is over.
            if message["type"].startswith("lifespan.shutdown."):
                for pool in pools:
                    pool.close()
            await send(message)

        lifespan_send = send_after_closing if pools else send
        try:
            handler = self._lifespan_handler()
            if handler is None:
                inner = self._inner_app()
                await serve_lifespan(type(self), scope, receive, lifespan_send, inner)
            else:
                await handler(scope, receive, lifespan_send)
        finally:
            for pool in pools:
                pool.close()
            if own is not None and self._own_state is own:  # not a later scope's
                self._own_state = None

    def _lifespan_handler(self) -> ASGIApp | None:
        """An application of the user's own to serve lifespan instead of the signals, if any."""
        return None

    def _inner_app(self) -> ASGIApp | None:
        """A wrapped application whose own lifespan runs inside ours, if any."""
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
    """Django's ``ASGIHandler``, plus the lifespan protocol; HTTP handling is Django's.

    With ``LIFESPAN_SIGNALS_REQUEST_THREADS = N``, each request runs its sync code in a thread
    kept from an earlier request (up to N kept) instead of a new one.
    """

    # None (Django's new thread per request) also for subclasses that skip __init__.
    request_threads: RequestThreads | None = None
    one_hop: OneHop | None = None  # LIFESPAN_SIGNALS_ONE_HOP: the request path of _one_hop

    def __init__(self) -> None:
        super().__init__()
        self.request_threads = _request_threads()
        if conf.settings.ONE_HOP and self.request_threads is not None:
            from lifespan_signals._one_hop import OneHop

            self.one_hop = OneHop(self, self.request_threads)

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        threads = self.request_threads
        if threads is None or scope["type"] != "http":
            # Lifespan: _LifespanSupport's. Other scopes: Django's way; it refuses websockets.
            await super().__call__(scope, receive, send)
        elif self.one_hop is not None:
            await self.one_hop(scope, receive, send)
        else:
            thread = threads.acquire()
            try:
                await threads.serve(thread, super().__call__(scope, receive, send))
            except BaseException:
                threads.release(thread, reuse=False)
                raise
            threads.release(thread)


class LifespanWrapper(_LifespanSupport, _Wrapper):
    """Wrap any ASGI application: serve ``lifespan`` here, pass every other scope through.

    If the wrapped application has a lifespan of its own (a Starlette app with a ``lifespan``
    context, a Channels router with a ``"lifespan"`` application), both run: ours starts first,
    then the wrapped one; at shutdown the wrapped one stops first, then ours. A wrapped
    application that does not speak lifespan (Django's own handler) is left out, as servers do.
    """

    def _inner_app(self) -> ASGIApp | None:
        # Ours inside ours would send the signals twice.
        return None if isinstance(self.app, _LifespanSupport) else self.app


def _request_thread_pools(app: object) -> list[RequestThreads]:
    """The request threads of ``app`` and of each LifespanASGIHandler it wraps (``.app``,
    ``.application``, a Channels router's applications), however deep."""
    found: list[RequestThreads] = []
    seen: set[int] = set()
    todo = [app]
    while todo:
        inner = todo.pop()
        if id(inner) in seen:
            continue
        seen.add(id(inner))
        if isinstance(inner, LifespanASGIHandler) and inner.request_threads is not None:
            found.append(inner.request_threads)
        todo += [getattr(inner, name, None) for name in ("app", "application")]
        mapping = getattr(inner, "application_mapping", None)
        if isinstance(mapping, dict):
            todo += mapping.values()
        todo = [item for item in todo if item is not None]
    return found


def _request_threads() -> RequestThreads | None:
    size = conf.settings.REQUEST_THREADS
    if size is None:
        return None
    if not supported():
        raise ImproperlyConfigured(
            "LIFESPAN_SIGNALS_REQUEST_THREADS needs an asgiref whose ThreadSensitiveContext takes "
            f"an executor, but asgiref {importlib.metadata.version('asgiref')} does not. "
            "Upgrade asgiref, or set LIFESPAN_SIGNALS_REQUEST_THREADS = None."
        )
    return RequestThreads(size)


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


def speaks_lifespan(app: object) -> bool | None:
    """Whether ``app`` handles lifespan scopes: True, False, or None when it cannot be told."""
    if isinstance(app, _LifespanSupport):
        return True
    mapping = getattr(app, "application_mapping", None)  # a Channels ProtocolTypeRouter
    if isinstance(mapping, dict):
        return "lifespan" in mapping
    # ASGIStaticFilesHandler (an ASGIHandler too) and similar wrappers hand lifespan on.
    inner = getattr(app, "application", None)
    if inner is not None and inner is not app:
        return speaks_lifespan(inner)
    return False if isinstance(app, ASGIHandler) else None
