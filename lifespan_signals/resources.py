"""Paired resources: setup and teardown in one function, entered in order, exited in reverse.

::

    from lifespan_signals.resources import register_resource

    @register_resource
    async def http_client(state):
        async with httpx.AsyncClient() as client:
            state["httpx"] = client
            yield

Register in ``AppConfig.ready()``. Resources are entered one after another in registration order
before the ``asgi_startup`` receivers run (so a later resource, and every receiver, may use what an
earlier one put in ``state``) and exited in reverse order after the ``asgi_shutdown`` receivers.
If entering one fails, those already entered are exited and startup fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, AsyncContextManager, TypeVar  # noqa: UP035 - also the protocol on 3.10

__all__ = ["register_resource", "registered", "unregister_resource"]

ResourceFactory = Callable[[dict[str, Any]], AsyncIterator[Any] | AsyncContextManager[Any]]
F = TypeVar("F", bound=ResourceFactory)

_registry: list[ResourceFactory] = []


def register_resource(factory: F) -> F:
    """Register ``factory(state)`` as a lifespan resource; usable as a decorator.

    ``factory`` is an async generator function (setup, ``yield`` once, teardown) or any callable
    returning an async context manager. Registering the same factory again does nothing.
    """
    if not callable(factory):
        raise TypeError(
            f"register_resource() takes an async generator function or a callable returning an "
            f"async context manager, not {factory!r}."
        )
    if factory not in _registry:
        _registry.append(factory)
    return factory


def unregister_resource(factory: ResourceFactory) -> None:
    """Forget ``factory``; does nothing if it was not registered."""
    with contextlib.suppress(ValueError):
        _registry.remove(factory)


def registered() -> list[ResourceFactory]:
    """The registered factories, in registration order (a copy)."""
    return list(_registry)
