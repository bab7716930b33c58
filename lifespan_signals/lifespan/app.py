"""The ASGI face every lifespan_signals application shares: the handler, the wrapper, the router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lifespan_signals.lifespan.layers import bounded_websocket
from lifespan_signals.lifespan.machine import serve_lifespan
from lifespan_signals.lifespan.steps import CANCEL_GRACE
from lifespan_signals.threads import RequestThreads

__all__ = ["ASGIApp", "LifespanApp", "Receive", "Scope", "Send", "wrapped"]

# Django's handler and asgiref's typing disagree on these types; callers pass ASGI 3 callables.
Scope = dict[str, Any]
ASGIApp = Any
Receive = Any
Send = Any


class LifespanApp:
    """Serve ``lifespan`` scopes; give other scopes the state and hand them on (``super()``).

    A mixin before the application's own class. Subclasses may override :meth:`lifespan_handler`
    (an application of the user's own serves lifespan instead of the signals) and
    :meth:`inner_app` (a wrapped application whose own lifespan runs inside ours).
    """

    # The state this app created because the server gave none (Daphne); copied into each scope.
    _own_state: dict[str, Any] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if scope["type"] == "websocket":  # bounded after its socket closed: see bounded_websocket
            call = super().__call__  # type: ignore[misc]
            return await bounded_websocket(call, self._with_state(scope), receive, send)
        if scope["type"] != "lifespan":
            return await super().__call__(self._with_state(scope), receive, send)  # type: ignore[misc]
        own = None
        if scope.get("state") is None:
            own = self._own_state = {}
            scope = {**scope, "state": own}
        # The request threads of this application and of those it wraps (which never see the
        # lifespan scope): kept from startup, stopped at shutdown.
        pools = [
            pool
            for app in wrapped(self)
            if isinstance(pool := getattr(app, "request_threads", None), RequestThreads)
        ]
        for pool in pools:
            pool.open()

        async def send_after_closing(message: Any) -> None:
            # Stop the kept threads, and let them close their database connections, before
            # the server hears that shutdown is over (it may end the process at once).
            if message["type"].startswith("lifespan.shutdown."):
                for pool in pools:
                    pool.close()
                for pool in pools:
                    await pool.ended(CANCEL_GRACE)
            await send(message)

        lifespan_send = send_after_closing if pools else send
        try:
            handler = self.lifespan_handler()
            if handler is None:
                inner = self.inner_app()
                return await serve_lifespan(type(self), scope, receive, lifespan_send, inner)
            return await handler(scope, receive, lifespan_send)
        finally:
            for pool in pools:
                pool.close()
            if own is not None and self._own_state is own:  # not a later scope's
                self._own_state = None

    @property
    def sends_signals(self) -> bool:
        """Whether this application's lifespan is lifespan_signals' own (not a user's handler)."""
        return self.lifespan_handler() is None

    def lifespan_handler(self) -> ASGIApp | None:
        """An application of the user's own to serve lifespan instead of the signals, if any."""
        return None

    def inner_app(self) -> ASGIApp | None:
        """A wrapped application whose own lifespan runs inside ours, if any."""
        return None

    def _with_state(self, scope: Scope) -> Scope:
        own = self._own_state
        if own is None or "state" in scope:
            return scope
        # A shallow copy per connection, as servers that support state do.
        return {**scope, "state": own.copy()}


def wrapped(app: object) -> Iterator[object]:
    """``app`` and every application it wraps, however deep: through the attributes that ASGI
    middleware keep the inner application in (``.app``, ``.application``) and a Channels
    router's mapping."""
    seen: set[int] = set()
    todo = [app]
    while todo:
        inner = todo.pop()
        if inner is None or id(inner) in seen:
            continue
        seen.add(id(inner))
        yield inner
        todo += [getattr(inner, name, None) for name in ("app", "application")]
        mapping = getattr(inner, "application_mapping", None)
        if isinstance(mapping, dict):
            todo += mapping.values()
