"""Entering and exiting the registered resources (:mod:`lifespan_signals.resources`), as steps.

Entered one after another in registration order, each in the lifespan's own task (a context manager
is exited by the task that entered it), and exited in reverse order, every one even if some fail.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, AsyncContextManager, cast  # noqa: UP035 - also the protocol on 3.10

from lifespan_signals.lifespan.failures import Failure, dotted_name
from lifespan_signals.lifespan.steps import Runner
from lifespan_signals.resources import ResourceFactory, registered

__all__ = ["Entered", "enter_resources", "exit_resources"]

Entered = list[tuple[str, AsyncContextManager[Any]]]


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


async def enter_resources(state: dict[str, Any], runner: Runner, entered: Entered) -> list[Failure]:
    """Enter the registered resources in order into ``entered``; stop at the first failure."""
    for factory in registered():
        name = dotted_name(factory)
        try:
            manager = _open(factory, state)
        except BaseException as exc:
            return [Failure.from_exception(name, exc)]
        step = runner.step("resource", name)
        if await runner.in_task(step, manager.__aenter__()):  # entered, if late: exited later
            entered.append((name, manager))
        if step.failure is not None:
            return [step.failure]
    return []


async def exit_resources(entered: Entered, runner: Runner) -> list[Failure]:
    """Exit ``entered`` resources in reverse order, every one even if some fail; empty it."""
    failures = []
    while entered:
        name, manager = entered.pop()
        step = runner.step("resource", name)
        await runner.in_task(step, manager.__aexit__(None, None, None))
        if step.failure is not None:
            failures.append(step.failure)
    return failures
