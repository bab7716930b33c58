"""The Channels project's ASGI application, written as the README tells users to."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.projects.channelsapp.settings")

from lifespan_signals.asgi import get_asgi_application

# Set Django up before importing anything that touches models (the auth middleware does).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import URLRouter  # noqa: E402

from lifespan_signals.channels import ProtocolTypeRouter  # noqa: E402
from tests.projects.channelsapp.urls import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # get_asgi_application() speaks lifespan too; the router never forwards lifespan to it.
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
