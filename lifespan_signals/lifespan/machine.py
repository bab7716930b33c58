"""The lifespan state machine: the ASGI lifespan protocol driving clients, resources and signals."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Coroutine, Iterator
from typing import Any

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, LifespanScope
from django.dispatch import Signal

from lifespan_signals._registry import Running, registry
from lifespan_signals.conf import settings
from lifespan_signals.lifespan.budget import Budget
from lifespan_signals.lifespan.clients import OpenClients
from lifespan_signals.lifespan.driver import InnerLifespan, LifespanFailed
from lifespan_signals.lifespan.failures import Failure, report
from lifespan_signals.lifespan.receivers import send_signal
from lifespan_signals.lifespan.resources import Entered, enter_resources, exit_resources
from lifespan_signals.lifespan.steps import CANCEL_GRACE, EXTENSION, Record, Runner
from lifespan_signals.signals import asgi_shutdown, asgi_startup
from lifespan_signals.state import LiveState

__all__ = ["BackgroundTasks", "Lifespan", "LifespanProtocolError", "serve_lifespan"]

logger = logging.getLogger(__name__)


class LifespanProtocolError(RuntimeError):
    """The server sent lifespan messages that break the ASGI lifespan protocol."""


class Lifespan:
    """One lifespan: declared clients, resources and signals around one state dict.

    ``state`` is the server's dict; receivers get a :class:`~lifespan_signals.state.LiveState`
    over it. ``inner``: an application wrapped by ours whose own lifespan runs after our startup,
    before our shutdown. The lifespan owns its clients, and its :class:`Record` of steps and
    failures (the driver's, when a driver handed one over in the scope's extensions).
    """

    def __init__(
        self, sender: type[Any], scope: LifespanScope, state: dict[str, Any], inner: Any = None
    ) -> None:
        self.sender = sender
        self.scope = scope
        self.state = LiveState(state)
        extensions = scope.get("extensions") or {}
        record = extensions.get(EXTENSION) if isinstance(extensions, dict) else None
        self.record = record if isinstance(record, Record) else Record()
        self.clients = OpenClients()
        self._inner = None if inner is None else InnerLifespan(inner, self.state)
        self._entered: Entered = []
        self._entry = Running(self.state, self)
        self._registered = contextlib.ExitStack()
        self._shut_down = False
        self.background = BackgroundTasks()

    async def startup(self) -> str | None:
        """Open clients, enter resources, send ``asgi_startup``; on failure shut down and report."""
        started = time.perf_counter()
        self._registered.enter_context(registry.running(self._entry))
        try:
            budget = Budget.startup()
            settings.SHUTDOWN_TIMEOUT  # noqa: B018 - a bad value must stop startup, not shutdown
            failures = await self.clients.open(self._runner("startup", budget))
            if not failures:
                registry.publish_clients(self._entry, self.clients.clients)
            failures = failures or await enter_resources(
                self.state, self._runner("startup", budget), self._entered
            )
            failures = failures or await self._send(asgi_startup, self._runner("startup", budget))
            if self._inner is not None:
                failures = failures or await self._inner.startup(budget)
        except Exception as exc:  # a bad setting, say: fail startup rather than serve without it
            failures = [Failure.from_exception("lifespan startup", exc)]
        if failures:
            text = self._failed("startup", failures)
            shutdown_report = await self.shutdown()
            return text if shutdown_report is None else f"{text}\n\n{shutdown_report}"
        logger.info(
            "Lifespan startup complete in %.1f ms (asgi_startup receivers: %d, resources: %d)",
            (time.perf_counter() - started) * 1000,
            self._count("startup", "receiver"),
            len(self._entered),
        )
        return None

    async def shutdown(self) -> str | None:
        """Send ``asgi_shutdown``, exit resources, close clients; return the failure report, if any.

        Every step runs even when one before it failed or was cancelled. Runs once: a second call
        (a cancellation during a failed startup's shutdown) returns None.
        """
        if self._shut_down:
            return None
        self._shut_down = True
        started = time.perf_counter()
        resources = len(self._entered)
        failures: list[Failure] = []
        with self._registered:
            budget = Budget.shutdown()
            try:
                if self._inner is not None:
                    failures += await _guarded(self._inner.shutdown(budget))
                failures += await _guarded(
                    self._send(asgi_shutdown, self._runner("shutdown", budget))
                )
            finally:  # resources and clients always close, also when the lifespan is cancelled
                # Before them: the tasks startup left running may still use them.
                failures += await _guarded(self.background.cancel(budget))
                runner = self._runner("shutdown", budget)
                failures += await _guarded(exit_resources(self._entered, runner))
                registry.publish_clients(self._entry, None)
                failures += await _guarded(self.clients.close(self._runner("shutdown", budget)))
        if failures:
            return self._failed("shutdown", failures)
        logger.info(
            "Lifespan shutdown complete in %.1f ms (asgi_shutdown receivers: %d, resources: %d)",
            (time.perf_counter() - started) * 1000,
            self._count("shutdown", "receiver"),
            resources,
        )
        return None

    def _failed(self, phase: str, failures: list[Failure]) -> str:
        self.record.failures[phase] = failures
        text = report(phase, failures)
        logger.error("%s", text)
        return text

    def _runner(self, phase: str, budget: Budget) -> Runner:
        """A runner for one group of steps (each group gives up on its own steps only)."""
        return Runner(phase, budget, self.record.steps)

    def _count(self, phase: str, kind: str) -> int:
        return sum(step.phase == phase and step.kind == kind for step in self.record.steps)

    async def _send(self, signal: Signal, runner: Runner) -> list[Failure]:
        return await send_signal(signal, self.sender, runner, scope=self.scope, state=self.state)


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


async def _guarded(step: Awaitable[list[Failure]]) -> list[Failure]:
    """A shutdown step's failures; an error of the step itself (not a receiver's) is one too."""
    try:
        return await step
    except Exception as exc:
        return [Failure.from_exception("lifespan shutdown", exc)]


async def serve_lifespan(
    sender: type[Any],
    scope: Any,
    receive: ASGIReceiveCallable,
    send: ASGISendCallable,
    inner: Any = None,
) -> None:
    """Speak the ASGI lifespan protocol for ``sender`` until shutdown (``scope["state"]`` set).

    ``inner``: an application ours wraps; its own lifespan, if it has one, runs inside ours.

    A failure is sent to the server as ``*.failed``, and then raised as
    :class:`~lifespan_signals.lifespan.driver.LifespanFailed` (its message: the report), as
    Starlette's lifespan does: lifespan clients that watch only the application's exception
    (asgi-lifespan's ``LifespanManager``, Starlette's ``TestClient``) see the failure at once, and
    servers, having had the ``*.failed`` message, do not report it again (granian would, at
    startup: it gets no exception). If the server's
    ``send()`` raises on that message (hypercorn does, to stop itself), its exception propagates
    untouched.
    """
    lifespan = Lifespan(sender, scope, scope["state"], inner)
    running = False
    try:
        while True:
            message = await receive()
            kind = message.get("type")
            if kind == "lifespan.startup" and not running:
                try:
                    with lifespan.background.tracking():
                        report = await lifespan.startup()
                except BaseException:  # cancelled half way: close what was opened
                    await lifespan.shutdown()
                    raise
                if report is not None:
                    await send({"type": "lifespan.startup.failed", "message": report})
                    if _logs_exception_after_startup_failed(send):
                        return
                    raise _raised(lifespan, "startup", report)
                running = True
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown" and running:
                running = False
                report = await lifespan.shutdown()
                if report is not None:
                    await send({"type": "lifespan.shutdown.failed", "message": report})
                    raise _raised(lifespan, "shutdown", report)
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                return
            else:
                raise LifespanProtocolError(_unexpected(kind, running))
    finally:
        if running:  # the server left (an error, a cancellation) without shutdown: close anyway
            await lifespan.shutdown()


def _logs_exception_after_startup_failed(send: Any) -> bool:
    """Whether the server logs the application's exception, traceback and all, after
    ``lifespan.startup.failed``: granian does (its worker's "ASGI lifespan startup failed"), and
    it has the report already, so the report would be printed twice more."""
    server = getattr(send, "__self__", None)
    return type(server).__module__ == "granian.asgi"


def _raised(lifespan: Lifespan, phase: str, report: str) -> LifespanFailed:
    failures = tuple(lifespan.record.failures.get(phase, ()))
    return LifespanFailed(report, reported=True, failures=failures)


def _unexpected(kind: object, running: bool) -> str:
    if kind == "lifespan.startup":
        return (
            "Received 'lifespan.startup' twice in one lifespan scope. A lifespan scope starts up "
            "once; start a new scope for a new cycle."
        )
    if kind == "lifespan.shutdown":
        return "Received 'lifespan.shutdown' before 'lifespan.startup' completed."
    expected = "'lifespan.shutdown'" if running else "'lifespan.startup'"
    return f"Unknown lifespan message type {kind!r}; expected {expected}."
