"""Drive an application's lifespan as an ASGI server does: for ``runasgi``, for tests, and for an
application that :class:`~lifespan_signals.asgi.LifespanWrapper` wraps (:class:`InnerLifespan`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from lifespan_signals.budget import Budget, Failure, dotted_name

__all__ = [
    "InnerLifespan",
    "LifespanDriver",
    "LifespanFailed",
    "LifespanUnsupported",
    "backstop_timeouts",
]

logger = logging.getLogger("lifespan_signals.lifespan")


# How much longer than the application's own time budgets a driver waits for its replies: a
# lifespan_signals application reports a hanging receiver by name before this runs out.
GRACE = 5.0


def backstop_timeouts(
    startup: float | None, shutdown: float | None
) -> tuple[float | None, float | None]:
    """Driver timeouts for an application whose own budgets are ``startup`` and ``shutdown``.

    A failed startup runs shutdown before it replies, so the startup backstop covers both.
    """
    shutdown_backstop = None if shutdown is None else shutdown + GRACE
    if startup is None or shutdown_backstop is None:
        return None, shutdown_backstop
    return startup + shutdown_backstop, shutdown_backstop


class LifespanFailed(RuntimeError):
    """The application's lifespan startup or shutdown failed; ``message`` says why.

    ``reported`` is True when the message is the application's own ``lifespan.*.failed`` reply,
    False when the driver found the failure (the application raised, returned, timed out, or
    sent something else).
    """

    def __init__(self, message: str, *, reported: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.reported = reported


class LifespanUnsupported(LifespanFailed):
    """The application ended (or raised) during startup without replying: no lifespan support."""


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
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> dict[str, Any]:
        """Start the lifespan; return the state, or raise :class:`LifespanFailed`."""
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "state": self.state,
        }
        self._task = asyncio.ensure_future(self.app(scope, self._inbox.get, self._outbox.put))
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
                raise LifespanFailed(message.get("message", ""), reported=True)
            raise LifespanFailed(f"Unexpected lifespan message {message!r} during {phase}.")
        reply.cancel()
        if self._task in done:
            error = self._task.exception()
            raise (LifespanUnsupported if phase == "startup" else LifespanFailed)(
                f"The application {self.app!r} ended during lifespan {phase} without replying"
                + (f": it raised {type(error).__name__}: {error}" if error else ".")
                + " Does it speak the lifespan protocol? Wrap it in "
                "lifespan_signals.asgi.LifespanWrapper."
            ) from error
        self._task.cancel()
        raise LifespanFailed(f"Lifespan {phase} did not finish within {timeout:g} s.")


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
