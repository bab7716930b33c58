"""lifespan_signals' ASGI application: Django's handler plus the lifespan protocol."""

from __future__ import annotations

import os

from lifespan_signals.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

application = get_asgi_application()
