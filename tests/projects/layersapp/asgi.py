"""The channel-layer project's ASGI application, with the lifespan (``application``), and the
same project as stock Channels serves it (``stock``: Channels' router, Django's handler, no
lifespan), for the comparison."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.projects.layersapp.settings")

import django

django.setup(set_prefix=False)

from channels.routing import ProtocolTypeRouter as StockProtocolTypeRouter  # noqa: E402
from channels.routing import URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application as stock_asgi_application  # noqa: E402

from lifespan_signals.asgi import get_asgi_application  # noqa: E402
from lifespan_signals.channels import ProtocolTypeRouter  # noqa: E402
from tests.projects.layersapp.urls import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {"http": get_asgi_application(), "websocket": URLRouter(websocket_urlpatterns)}
)
stock = StockProtocolTypeRouter(
    {"http": stock_asgi_application(), "websocket": URLRouter(websocket_urlpatterns)}
)
