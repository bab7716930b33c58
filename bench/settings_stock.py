"""p7: the bench project with Django's SecurityMiddleware and CommonMiddleware added.

``BENCH_PLAIN=1``: Django's own ``ASGIHandler`` and no lifespan_signals middleware (the baseline).
"""

from __future__ import annotations

import os

from bench.settings import *  # noqa: F403

_STOCK = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
if os.environ.get("BENCH_PLAIN"):
    MIDDLEWARE = _STOCK
    ASGI_APPLICATION = "bench.asgi_plain.application"
    SILENCED_SYSTEM_CHECKS = ["lifespan_signals.W004"]
else:
    MIDDLEWARE = [_STOCK[0], "lifespan_signals.middleware.LifespanStateMiddleware", _STOCK[1]]
