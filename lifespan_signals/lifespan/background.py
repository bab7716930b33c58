"""Background tasks: what lifespan startup's code started with ``asyncio.create_task`` and left
running, cancelled at shutdown the same way under every server."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Coroutine, Iterator
from typing import Any

from lifespan_signals.lifespan.budget import Budget
from lifespan_signals.lifespan.failures import Failure
from lifespan_signals.lifespan.steps import CANCEL_GRACE

__all__ = ["BackgroundTasks"]

logger = logging.getLogger(__name__)

# The background tasks of the lifespan whose startup is running in this context, if any.
_starting: contextvars.ContextVar[BackgroundTasks | None] = contextvars.ContextVar(
    "lifespan_signals_starting", default=None
)


class BackgroundTasks:
    """The tasks that lifespan startup's code created (``asyncio.create_task`` in a receiver, a
    resource or a client factory) and left running: cancelled at shutdown, after the
    ``asgi_shutdown`` receivers and before resources and clients close, and awaited within the
    shutdown budget (at least :data:`~lifespan_signals.lifespan.steps.CANCEL_GRACE`). One that
    does not finish, or raises, is a shutdown failure that names it. The same under every server,
    whatever the server does with the tasks left over when its loop ends.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    @contextlib.contextmanager
    def tracking(self) -> Iterator[None]:
        """In the block (lifespan startup), keep each task created from this context.

        A task factory on the running loop (the one there before is kept in the chain) sees each
        new task; a task belongs to this lifespan when its creator runs in this context, or in a
        task or thread (``sync_to_async``) started from it, which copy the context.
        """
        loop = asyncio.get_running_loop()
        previous = loop.get_task_factory()

        def factory(
            loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
        ) -> asyncio.Future[Any]:
            if previous is None:
                task: asyncio.Future[Any] = asyncio.Task(coro, loop=loop, **kwargs)
            else:
                task = previous(loop, coro, **kwargs)
            owner = _starting.get()
            if owner is not None and isinstance(task, asyncio.Task):
                owner._keep(task)
            return task

        token = _starting.set(self)
        loop.set_task_factory(factory)  # type: ignore[arg-type]
        try:
            yield
        finally:
            _starting.reset(token)
            if loop.get_task_factory() is factory:  # else another lifespan put its own over it
                loop.set_task_factory(previous)

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel(self, budget: Budget) -> list[Failure]:
        """Cancel the tasks still running, wait for them; a failure for each that did not end
        within the budget, or raised something else than ``CancelledError``."""
        tasks = [task for task in self._tasks if not task.done()]
        if not tasks:
            return []
        for task in tasks:
            task.cancel()
        remaining = budget.remaining()
        timeout = None if remaining is None else max(remaining, CANCEL_GRACE)
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        failures = []
        for task in tasks:
            name = _task_name(task)
            if task in pending:
                failures.append(
                    Failure(
                        name,
                        f"did not finish within {timeout:g} s after it was cancelled at shutdown "
                        "(it started during lifespan startup and was still running)",
                    )
                )
            elif not task.cancelled() and (error := task.exception()) is not None:
                failures.append(Failure.from_exception(name, error))
        if pending:
            logger.warning("Abandoning %d background task(s) still running.", len(pending))
        return failures


def _task_name(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    frame = getattr(coro, "cr_frame", None)
    module = frame.f_globals.get("__name__") if frame is not None else None
    qualname = getattr(coro, "__qualname__", type(coro).__qualname__)
    where = f"{module}.{qualname}" if module else qualname
    return f"background task {task.get_name()!r} ({where})"
