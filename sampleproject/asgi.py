"""ASGI entry point: Channels' routing, plus the lifespan protocol.

Run with e.g. ``uvicorn sampleproject.asgi:application --lifespan on``, or ``manage.py runserver``
(or ``runasgi``).
HTTP goes to Django; WebSockets to the shop's consumers, which use the declared clients
(``clients["aiohttp"]``) as views do, and find the traffic counters in ``self.scope["state"]``.
"""

from __future__ import annotations

import os

from lifespan_signals.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sampleproject.settings")

# Set Django up before importing consumers or the auth middleware (they import models).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from lifespan_signals.channels import ProtocolTypeRouter  # noqa: E402
from sampleproject.shop.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
