"""ASGI lifespan for Django: ``asgi_startup`` / ``asgi_shutdown`` signals and shared state."""

from __future__ import annotations

from lifespan_signals.state import get_state

__version__ = "0.1.0"

__all__ = ["__version__", "get_state"]
