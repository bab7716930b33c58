"""Drive an application's lifespan as an ASGI server does: for ``runasgi``, ``lifespan-daphne``,
commands and tests, and for an application that ours wraps (:class:`InnerLifespan`).

The driver hands the application a :class:`~lifespan_signals.lifespan.steps.Record` in the scope's
``extensions``; lifespan_signals' own applications fill it with their steps and failures, so a
failure reaches the driver's caller as structured data, not only as the message text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from lifespan_signals._registry import Running, registry
from lifespan_signals.lifespan.budget import Budget
from lifespan_signals.lifespan.failures import Failure, dotted_name
from lifespan_signals.lifespan.steps import EXTENSION, Record

__all__ = ["InnerLifespan", "LifespanDriver", "LifespanFailed", "LifespanUnsupported"]

logger = logging.getLogger(__name__)


class LifespanFailed(RuntimeError):
    """The application's lifespan startup or shutdown failed; ``message`` says why.

    ``reported`` is True when the message is the application's own ``lifespan.*.failed`` reply,
    False when the driver found the failure (the application raised, returned, timed out, or
    sent something else). ``failures``: each failing receiver, resource or client, when the
    application is lifespan_signals'. ``logged``: it has logged the report, and a handler took it
    (so a command need not print it again).
    """

    # Tracebacks (a server's log, a test's failure) name it where users import it, not here.
    __module__ = "lifespan_signals"

    def __init__(
        self,
        message: str,
        *,
        reported: bool = False,
        failures: tuple[Failure, ...] = (),
        logged: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reported = reported
        self.failures = failures
        self.logged = logged

    def explain(self, headline: str) -> str:
        """``headline``, then the report unless it was logged already (a command's last words)."""
        if self.logged:
            return f"{headline} The report is above."
        return f"{headline}\n\n{self.message}"


class LifespanUnsupported(LifespanFailed):
    """The application does not speak lifespan: during startup it ended (or raised) without
    replying, or it answered with another scope's message (``http.response.start``, say)."""


class LifespanDriver:
    """Send ``lifespan.startup`` / ``lifespan.shutdown`` to ``app`` and wait for its replies.

    ``state`` is the lifespan state handed to the application (a new dict by default); give each
    connection a shallow copy of it, as servers that support state do. Timeouts are in seconds
    (None: wait for ever) and are a backstop: lifespan_signals applications time out their own
    receivers.
    """

    def __init__(
        self,
        app: Any,
        state: dict[str, Any] | None = None,
        *,
        startup_timeout: float | None = None,
        shutdown_timeout: float | None = None,
    ) -> None:
        self.app = app
        self.state: dict[str, Any] = {} if state is None else state
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.record = Record()
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def registered(self) -> Iterator[dict[str, Any]]:
        """Make :func:`~lifespan_signals.get_state` return this lifespan's state in the block,
        which gets it.

        lifespan_signals' own applications have registered their live view of it at startup; the
        state of an application of another kind is registered here.
        """
        entry = registry.find(self.state)
        if entry is not None:
            yield entry.state
            return
        with registry.running(Running(self.state)) as entry:
            yield entry.state

    async def startup(self) -> dict[str, Any]:
        """Start the lifespan; return the state, or raise :class:`LifespanFailed`."""
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "state": self.state,
            "extensions": {EXTENSION: self.record},
        }
        self._task = asyncio.ensure_future(self.app(scope, self._inbox.get, self._outbox.put))
        # An application raises after it sent *.failed (ours do, as Starlette's): the reply is
        # the report, the exception only repeats it.
        self._task.add_done_callback(_retrieve)
        await self._exchange("startup", self.startup_timeout)
        return self.state

    async def shutdown(self) -> None:
        """Shut the lifespan down; raise :class:`LifespanFailed` if it reports a failure."""
        if self._task is None or self._task.done():
            return
        try:
            await self._exchange("shutdown", self.shutdown_timeout)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), 1.0)
        finally:
            self._task.cancel()

    async def _exchange(self, phase: str, timeout: float | None) -> None:
        assert self._task is not None
        await self._inbox.put({"type": f"lifespan.{phase}"})
        reply = asyncio.ensure_future(self._outbox.get())
        done, _ = await asyncio.wait(
            {reply, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if reply in done:
            message = reply.result()
            if message["type"] == f"lifespan.{phase}.complete":
                return
            if message["type"] == f"lifespan.{phase}.failed":
                raise LifespanFailed(
                    message.get("message", ""),
                    reported=True,
                    failures=tuple(self.record.failures.get(phase, ())),
                    logged=phase in self.record.logged,
                )
            unexpected = f"Unexpected lifespan message {message!r} during {phase}."
            kind = message.get("type")
            if phase == "startup" and not (isinstance(kind, str) and kind.startswith("lifespan.")):
                self._task.cancel()  # it serves another protocol: nothing to shut down
                raise LifespanUnsupported(f"{unexpected} {_HINT}")
            raise LifespanFailed(unexpected)
        reply.cancel()
        if self._task in done:
            error = self._task.exception()
            raise (LifespanUnsupported if phase == "startup" else LifespanFailed)(
                f"The application {self.app!r} ended during lifespan {phase} without replying"
                + (f": it raised {type(error).__name__}: {error}" if error else ".")
                + f" {_HINT}"
            ) from error
        self._task.cancel()
        raise LifespanFailed(f"Lifespan {phase} did not finish within {timeout:g} s.")


_HINT = "Does it speak the lifespan protocol? Wrap it in lifespan_signals.asgi.LifespanWrapper."


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class InnerLifespan:
    """The lifespan of an application wrapped by ours, run inside ours with the same state.

    An application that does not speak lifespan (it raises on the scope, as Django's handler
    does) is simply not started, as servers do; one that does is started after our receivers and
    shut down before them, within the same time budgets.
    """

    def __init__(self, app: Any, state: dict[str, Any]) -> None:
        self.name = f"{dotted_name(app)} (the wrapped application's lifespan)"
        self._driver: LifespanDriver | None = LifespanDriver(app, state)

    async def startup(self, budget: Budget) -> list[Failure]:
        return await self._exchange("startup", budget)

    async def shutdown(self, budget: Budget) -> list[Failure]:
        return await self._exchange("shutdown", budget)

    async def _exchange(self, phase: str, budget: Budget) -> list[Failure]:
        driver = self._driver
        if driver is None:
            return []
        driver.startup_timeout = driver.shutdown_timeout = budget.remaining()
        try:
            await (driver.startup() if phase == "startup" else driver.shutdown())
        except LifespanUnsupported as exc:
            logger.debug("%s: not started: %s", self.name, exc.message)
            self._driver = None
        except LifespanFailed as exc:
            return [Failure(self.name, f"failed: {exc.message}")]
        return []
