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

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, AsyncContextManager, TypeVar, cast  # noqa: UP035 - also the protocol on 3.10

from lifespan_signals.budget import Budget, Failure, TimedOut, Watched, dotted_name, log_step

__all__ = ["register_resource", "unregister_resource"]

ResourceFactory = Callable[[dict[str, Any]], AsyncIterator[Any] | AsyncContextManager[Any]]
F = TypeVar("F", bound=ResourceFactory)

_registry: list[ResourceFactory] = []

Entered = list[tuple[str, AsyncContextManager[Any]]]


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


def _open(factory: ResourceFactory, state: dict[str, Any]) -> AsyncContextManager[Any]:
    if inspect.isasyncgenfunction(factory):
        return contextlib.asynccontextmanager(factory)(state)
    manager = cast(AsyncContextManager[Any], factory(state))
    if not (hasattr(manager, "__aenter__") and hasattr(manager, "__aexit__")):
        raise TypeError(
            f"Lifespan resource {dotted_name(factory)} returned {manager!r}, which is not an async "
            "context manager. Make it an async generator function (setup, yield, teardown) or "
            "return an object with __aenter__ and __aexit__."
        )
    return manager


async def _step(
    phase: str, name: str, budget: Budget, awaitable: Awaitable[Any]
) -> tuple[bool, Failure | None]:
    """Await one resource's enter or exit within ``budget``: whether it returned, and its failure.

    Any exception is a failure, and so is returning past the budget's end (it blocked the event
    loop, so no timer could fire). Only a cancellation of the lifespan itself propagates.
    """
    watched = Watched(awaitable)
    started = time.monotonic()
    failure, returned = None, False
    try:
        with budget.deadline():
            await watched
        returned = True
    except TimedOut:
        failure = budget.timed_out(name)
    except asyncio.CancelledError as exc:
        if watched.cancelled:
            raise  # the lifespan itself was cancelled: the caller cleans up
        failure = Failure.from_exception(name, exc)
    except BaseException as exc:  # SystemExit too: a failure of this resource
        failure = Failure.from_exception(name, exc)
    ended = time.monotonic()
    if returned and budget.ended_late(ended):
        failure = budget.overran(name, watched, ended - started)
    log_step(phase, "resource", name, ended - started, failure is None)
    return returned, failure


async def enter_resources(state: dict[str, Any], budget: Budget, entered: Entered) -> list[Failure]:
    """Enter the registered resources in order into ``entered``; stop at the first failure."""
    for factory in list(_registry):
        name = dotted_name(factory)
        try:
            manager = _open(factory, state)
        except BaseException as exc:
            return [Failure.from_exception(name, exc)]
        returned, failure = await _step("startup", name, budget, manager.__aenter__())
        if returned:  # entered, if late: exited with the others
            entered.append((name, manager))
        if failure is not None:
            return [failure]
    return []


async def exit_resources(entered: Entered, budget: Budget) -> list[Failure]:
    """Exit ``entered`` resources in reverse order, every one even if some fail; empty it."""
    failures = []
    while entered:
        name, manager = entered.pop()
        _, failure = await _step("shutdown", name, budget, manager.__aexit__(None, None, None))
        if failure is not None:
            failures.append(failure)
    return failures
