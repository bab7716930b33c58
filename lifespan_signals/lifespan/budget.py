"""The time budget of a lifespan phase, and :class:`Watched`, which times each step an awaitable
takes on the event loop (so a coroutine that blocked the loop is named even when no timer could
fire)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Generator, Iterator
from typing import Any, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured

from lifespan_signals.conf import DEFAULT_SHUTDOWN_TIMEOUT, settings
from lifespan_signals.lifespan.failures import Failure

__all__ = ["Budget", "TimedOut", "Watched"]

# A step shorter than this is not worth calling "blocked the event loop".
_BLOCKING = 0.1

_T = TypeVar("_T")


class TimedOut(Exception):
    """Raised by :meth:`Budget.deadline` when the budget ran out."""


class Budget:
    """The time one lifespan phase may take, shared by its clients, resources and receivers."""

    def __init__(self, setting: str, seconds: float | None) -> None:
        self.setting = setting
        self.seconds = seconds
        self.end = None if seconds is None else time.monotonic() + seconds

    @classmethod
    def startup(cls) -> Budget:
        """Startup's budget; a bad setting raises ``ImproperlyConfigured`` (startup fails)."""
        return cls("LIFESPAN_SIGNALS_STARTUP_TIMEOUT", settings.STARTUP_TIMEOUT)

    @classmethod
    def shutdown(cls) -> Budget:
        """Shutdown's budget. A bad setting, which startup refused already, gets the default:
        what is open still gets closed."""
        try:
            seconds = settings.SHUTDOWN_TIMEOUT
        except ImproperlyConfigured:
            seconds = DEFAULT_SHUTDOWN_TIMEOUT
        return cls("LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT", seconds)

    def remaining(self) -> float | None:
        if self.end is None:
            return None
        return max(0.0, self.end - time.monotonic())

    def timed_out(self, name: str, what: str = "still running") -> Failure:
        return Failure(name, f"timed out: {what} after {self.seconds:g} s ({self.setting})")

    def overran(self, name: str, watched: Watched[Any] | None, ran: float) -> Failure:
        """The failure of a step that finished, but past the budget's end."""
        blocked = ""
        if watched is not None and watched.blocked:
            blocked = (
                f"; it blocked the event loop for {watched.longest:.1f} s at once (time.sleep() "
                "or CPU work in async code? Use await asyncio.sleep(), or sync_to_async)"
            )
        return Failure(
            name,
            f"timed out: ran {ran:.1f} s, past the {self.seconds:g} s budget ({self.setting})"
            + blocked,
        )

    def ended_late(self, finished: float) -> bool:
        """Whether a step that finished at ``finished`` (``time.monotonic()``) did so too late."""
        return self.end is not None and finished > self.end

    @contextlib.contextmanager
    def deadline(self) -> Iterator[None]:
        """Cancel the awaits in the body when the budget runs out; raise :class:`TimedOut` then.

        Runs in the current task (unlike ``asyncio.wait_for`` on 3.10), so a context manager
        entered here may be exited later by the same task. A cancellation from outside still
        propagates, also when it arrives after the timer fired (Python 3.11+ can tell).
        """
        remaining = self.remaining()
        task = asyncio.current_task()
        if remaining is None or task is None:
            yield
            return
        fired = False

        def fire() -> None:
            nonlocal fired
            fired = True
            task.cancel()

        handle = asyncio.get_running_loop().call_later(remaining, fire)
        try:
            yield
        except asyncio.CancelledError:
            if not fired:
                raise
            if sys.version_info >= (3, 11) and task.uncancel() > 0:
                raise  # someone else cancelled the task too: theirs wins
            raise TimedOut from None
        finally:
            handle.cancel()


class Watched(Generic[_T]):
    """Await ``awaitable``, timing each step it takes on the event loop.

    ``longest`` is the longest step (how long it blocked the loop at once); ``cancelled`` whether a
    cancellation was thrown into it, which tells a cancellation from outside from a
    ``CancelledError`` the code raised itself.
    """

    def __init__(self, awaitable: Awaitable[_T]) -> None:
        self._inner = awaitable.__await__()
        self.longest = 0.0
        self.cancelled = False

    @property
    def blocked(self) -> bool:
        """Whether one step took long enough to call it blocking the event loop."""
        return self.longest >= _BLOCKING

    def __await__(self) -> Generator[Any, Any, _T]:
        inner = self._inner
        value: Any = None
        thrown: BaseException | None = None
        while True:
            started = time.monotonic()
            try:
                yielded = inner.send(value) if thrown is None else inner.throw(thrown)
            except StopIteration as stop:
                result: _T = stop.value
                return result
            finally:
                self.longest = max(self.longest, time.monotonic() - started)
            try:
                value, thrown = (yield yielded), None
            except GeneratorExit:
                inner.close()
                raise
            except BaseException as exc:
                self.cancelled = self.cancelled or isinstance(exc, asyncio.CancelledError)
                value, thrown = None, exc
