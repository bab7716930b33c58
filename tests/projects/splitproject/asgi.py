"""The split-settings project's application (``tests/projects/splitproject/asgi.py``)."""

from __future__ import annotations

from lifespan_signals.asgi import get_asgi_application

application = get_asgi_application()
