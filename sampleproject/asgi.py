"""ASGI entry point: Django's handler plus the lifespan protocol.

Run with e.g. ``uvicorn sampleproject.asgi:application --lifespan on``.
"""

from __future__ import annotations

import os

from lifespan_signals.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sampleproject.settings")

application = get_asgi_application()
