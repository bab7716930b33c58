"""ASGI lifespan for Django: ``asgi_startup`` / ``asgi_shutdown`` signals and shared state.

The names a project types are here, imported on first use (PEP 562), so that
``import lifespan_signals`` stays cheap and imports no optional dependency::

    from lifespan_signals import asgi_startup, get_state

The declared clients are ``lifespan_signals.clients.clients`` (the module ``clients`` holds them:
a package attribute of that name is the module, so it is not re-exported here).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it
_PUBLIC = {
    "asgi_startup": "lifespan_signals.signals",
    "asgi_shutdown": "lifespan_signals.signals",
    "get_state": "lifespan_signals.state",
    "LifespanNotStarted": "lifespan_signals.state",
    "StateKeyError": "lifespan_signals.state",
    "UnknownClient": "lifespan_signals.clients",
    "ClientConfigError": "lifespan_signals.clients",
    "register_resource": "lifespan_signals.resources",
    "get_asgi_application": "lifespan_signals.asgi",
    "LifespanASGIHandler": "lifespan_signals.asgi",
    "LifespanWrapper": "lifespan_signals.asgi",
    "LifespanCommand": "lifespan_signals.commands",
    "LifespanFailed": "lifespan_signals.lifespan.driver",
}

__all__ = [
    "ClientConfigError",
    "LifespanASGIHandler",
    "LifespanCommand",
    "LifespanFailed",
    "LifespanNotStarted",
    "LifespanWrapper",
    "StateKeyError",
    "UnknownClient",
    "__version__",
    "asgi_shutdown",
    "asgi_startup",
    "get_asgi_application",
    "get_state",
    "register_resource",
]

if TYPE_CHECKING:
    from lifespan_signals.asgi import LifespanASGIHandler, LifespanWrapper, get_asgi_application
    from lifespan_signals.clients import ClientConfigError, UnknownClient
    from lifespan_signals.commands import LifespanCommand
    from lifespan_signals.lifespan.driver import LifespanFailed
    from lifespan_signals.resources import register_resource
    from lifespan_signals.signals import asgi_shutdown, asgi_startup
    from lifespan_signals.state import LifespanNotStarted, StateKeyError, get_state


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
