"""The baseline: the same project as plain Django, no lifespan_signals middleware or handler.

``lifespan_signals`` stays installed only so that ``manage.py runasgi`` exists; runasgi wraps the
plain handler in ``LifespanWrapper`` itself.
"""

from __future__ import annotations

from bench.settings import *  # noqa: F403

MIDDLEWARE: list[str] = []

ASGI_APPLICATION = "bench.asgi_plain.application"
# The baseline has no state middleware on purpose.
SILENCED_SYSTEM_CHECKS = ["lifespan_signals.W004"]
