"""Client backends for the declared-clients tests: each records what happens to it in ``EVENTS``."""

from __future__ import annotations

import asyncio
import contextlib

EVENTS: list[str] = []


class Recorder:
    """A client with ``aclose()``: opened by calling the class, like httpx.AsyncClient."""

    def __init__(self, name: str = "recorder", fail_close: bool = False, **options):
        self.name, self.options, self.fail_close, self.closed = name, options, fail_close, False
        EVENTS.append(f"open {name}")

    async def aclose(self):
        await asyncio.sleep(0.01)  # as closing a real client takes a moment
        EVENTS.append(f"close {self.name}")
        self.closed = True
        if self.fail_close:
            raise RuntimeError(f"{self.name} cannot close")


class SyncClosing:
    """A client with a plain ``close()``, no ``aclose()``, no context manager."""

    def __init__(self):
        self.closed = False

    def close(self):
        EVENTS.append("close sync")
        self.closed = True


@contextlib.asynccontextmanager
async def managed(name: str = "managed"):
    """An async context manager factory: the client is what it yields."""
    EVENTS.append(f"enter {name}")
    try:
        yield {"client": name}
    finally:
        EVENTS.append(f"exit {name}")


async def made_by_coroutine(name: str = "coroutine"):
    """An async factory: its result is the client."""
    await asyncio.sleep(0)
    return Recorder(name)


async def failing(exception: str = "RuntimeError", delay: float = 0.2):
    """Fails to open after ``delay`` seconds (others opened concurrently are open by then)."""
    await asyncio.sleep(delay)
    EVENTS.append(f"fail {exception}")
    error = {
        "RuntimeError": RuntimeError("upstream unreachable"),
        "SystemExit": SystemExit(2),
        "KeyboardInterrupt": KeyboardInterrupt(),
        "CancelledError": asyncio.CancelledError(),
    }[exception]
    raise error


async def hanging():
    EVENTS.append("hanging")
    await asyncio.sleep(3600)


class HangingClose:
    """Closing never ends (until cancelled)."""

    async def aclose(self):
        EVENTS.append("closing for ever")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            EVENTS.append("close cancelled")
            raise


class FailingEnter:
    """An async context manager that cannot be entered, but can be closed."""

    async def __aenter__(self):
        EVENTS.append("enter fails")
        raise ConnectionRefusedError("no server")

    async def __aexit__(self, *exc_info):
        raise AssertionError("never entered, never exited")

    async def aclose(self):
        EVENTS.append("closed unentered")


def not_closable():
    return object()


@contextlib.asynccontextmanager
async def yields_none():
    """A factory that forgot to yield the client."""
    EVENTS.append("enter none")
    try:
        yield
    finally:
        EVENTS.append("exit none")


def returns_none():
    """A factory that forgot to return the client."""
