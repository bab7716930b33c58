"""Channels: a ``ProtocolTypeRouter`` that also speaks lifespan, so consumers share the clients.

::

    from lifespan_signals.channels import ProtocolTypeRouter  # instead of channels.routing's

    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    })

Consumers then find the lifespan state in ``self.scope["state"]``. Wrapping Channels' own router
works too: ``lifespan_signals.asgi.LifespanWrapper(channels.routing.ProtocolTypeRouter({...}))``.

This is the one module of the package that imports ``channels``; nothing else imports it, so the
package works without Channels installed.
"""

from __future__ import annotations

from typing import Any

from channels.routing import ProtocolTypeRouter as _ChannelsProtocolTypeRouter

from lifespan_signals.lifespan.app import LifespanApp, Scope
from lifespan_signals.state import NoLifespanState

__all__ = ["ProtocolTypeRouter"]


class ProtocolTypeRouter(LifespanApp, _ChannelsProtocolTypeRouter):  # type: ignore[misc]
    """Channels' ``ProtocolTypeRouter``, plus the ASGI lifespan protocol.

    ``lifespan`` scopes send ``asgi_startup`` / ``asgi_shutdown`` (sender: this class) with the same
    semantics as :class:`lifespan_signals.asgi.LifespanASGIHandler`, unless the mapping has its own
    ``"lifespan"`` application, which then gets them. Lifespan is never forwarded to the ``"http"``
    application, so it runs once per process even when that one speaks lifespan too. Every other
    scope carries the lifespan state: the server's, or a shallow copy of the router's own when the
    server gives none. When no lifespan ran at all (Daphne's own runserver,
    ``ChannelsLiveServerTestCase``), it carries a :class:`~lifespan_signals.state.NoLifespanState`:
    a consumer reading a key gets a :class:`~lifespan_signals.state.StateKeyError` saying why.
    """

    application_mapping: dict[str, Any]

    def lifespan_handler(self) -> Any:
        return self.application_mapping.get("lifespan")

    def _with_state(self, scope: Scope) -> Scope:
        scope = super()._with_state(scope)
        if "state" in scope:
            return scope
        return {**scope, "state": NoLifespanState()}
