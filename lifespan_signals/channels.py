"""Channels: a ``ProtocolTypeRouter`` that also speaks lifespan, so consumers share the clients.

::

    from lifespan_signals.channels import ProtocolTypeRouter  # instead of channels.routing's

    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    })

Consumers then find the lifespan state in ``self.scope["state"]``. Wrapping Channels' own router
works too: ``lifespan_signals.asgi.LifespanMiddleware(channels.routing.ProtocolTypeRouter({...}))``.

This is the one module of the package that imports ``channels``; nothing else imports it, so the
package works without Channels installed.
"""

from __future__ import annotations

from typing import Any

from channels.routing import ProtocolTypeRouter as _ChannelsProtocolTypeRouter

from lifespan_signals.asgi import (
    ASGIReceiveCallable,
    ASGISendCallable,
    Scope,
    _LifespanSupport,
)

__all__ = ["ProtocolTypeRouter"]


class ProtocolTypeRouter(_LifespanSupport, _ChannelsProtocolTypeRouter):  # type: ignore[misc]
    """Channels' ``ProtocolTypeRouter``, plus the ASGI lifespan protocol.

    ``lifespan`` scopes send ``asgi_startup`` / ``asgi_shutdown`` (sender: this class) with the same
    semantics as :class:`lifespan_signals.asgi.LifespanASGIHandler`, unless the mapping has its own
    ``"lifespan"`` application, which then gets them. Lifespan is never forwarded to the ``"http"``
    application, so it runs once per process even when that one speaks lifespan too. Every other
    scope carries the lifespan state: the server's, or a shallow copy of the router's own when the
    server gives none.
    """

    application_mapping: dict[str, Any]

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "lifespan":
            await super().__call__(self._with_state(scope), receive, send)
        elif "lifespan" in self.application_mapping:
            await self._delegate_lifespan(scope, receive, send)
        else:
            await self._serve_lifespan(scope, receive, send)

    async def _delegate_lifespan(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        # The mapping's own lifespan app fills the state; when the server gives none, hand it one
        # that this router then copies into the other scopes, as it does for its own lifespan.
        if scope.get("state") is None:
            scope = {**scope, "state": {}}
            self._own_state = scope["state"]
        try:
            await self.application_mapping["lifespan"](scope, receive, send)
        finally:
            self._own_state = None
