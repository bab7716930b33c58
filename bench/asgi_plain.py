"""Django's own ASGI application, as ``startproject`` makes it: the baseline."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings_plain")

application = get_asgi_application()
