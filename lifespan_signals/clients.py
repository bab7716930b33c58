"""Declared clients: ``LIFESPAN_SIGNALS_CLIENTS``, opened by the lifespan, reached by alias.

::

    LIFESPAN_SIGNALS_CLIENTS = {
        "default": {"BACKEND": "httpx.AsyncClient", "OPTIONS": {"timeout": 10}},
    }

    from lifespan_signals.clients import clients

    async def view(request):
        response = await clients["default"].get("https://example.com/")

Lifespan startup opens every declared client concurrently on the server's event loop, before
resources and ``asgi_startup`` receivers; shutdown closes them after resources, all at once
(started in reverse order).
"""

from __future__ import annotations

from asyncio import _get_running_loop
from collections.abc import Iterator
from threading import get_ident
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured

from lifespan_signals._registry import registry
from lifespan_signals.conf import Problem, settings, shape
from lifespan_signals.state import LifespanNotStarted

__all__ = ["ClientConfigError", "Clients", "UnknownClient", "WrongEventLoop", "clients"]

T = TypeVar("T")


class UnknownClient(KeyError):
    """No client has this alias in ``LIFESPAN_SIGNALS_CLIENTS``. A :class:`KeyError`."""

    def __str__(self) -> str:
        return str(self.args[0])


class WrongEventLoop(RuntimeError):
    """A declared client was looked up from a running event loop that is not the lifespan's,
    where it cannot work."""


class ClientConfigError(ImproperlyConfigured, ValueError):
    """A declared client's configuration is wrong: raised when lifespan startup opens it."""

    def __init__(self, problem: Problem) -> None:
        message = (
            problem.message if problem.message.endswith((".", "?", "!")) else f"{problem.message}."
        )
        super().__init__(f"{message} {problem.hint}")
        self.problem = problem


class Clients:
    """The declared clients of the running lifespan, by alias: ``clients["default"]``."""

    __slots__ = ()

    def __getitem__(self, alias: str) -> Any:
        try:
            client, thread = registry.bound[alias]
        except KeyError:
            raise _missing(alias) from None
        # In the lifespan loop's thread, the code runs on that loop (the fast path: one thread
        # runs one loop at a time). In another thread, sync code (no running loop) may look the
        # client up; code on another loop may not: the client cannot work there.
        if thread is not None and thread != get_ident() and _get_running_loop() is not None:
            raise _wrong_loop(alias)
        return client

    def get(self, alias: str, cls: type[T]) -> T:
        """``clients[alias]``, checked to be a ``cls`` (and typed so for mypy)."""
        client = self[alias]
        if not isinstance(client, cls):
            raise TypeError(
                f"clients[{alias!r}] is {shape(client)}, not an instance of {cls.__module__}."
                f"{cls.__qualname__}. Ask for the type its BACKEND makes, or fix "
                f"LIFESPAN_SIGNALS_CLIENTS[{alias!r}]."
            )
        return client

    def __contains__(self, alias: object) -> bool:
        return alias in registry.clients

    def __iter__(self) -> Iterator[str]:
        return iter(list(registry.clients))

    def __len__(self) -> int:
        return len(registry.clients)

    def __repr__(self) -> str:
        return f"<Clients {sorted(registry.clients)!r}>"


clients = Clients()


def _wrong_loop(alias: str) -> WrongEventLoop:
    return WrongEventLoop(
        f"clients[{alias!r}] was looked up on an event loop that is not the lifespan's. A "
        "declared client belongs to the loop the lifespan opened it on, and fails on another "
        "(httpx: 'Event loop is closed'; aiohttp: 'Timeout context manager should be used inside "
        "a task'). Run this code on the lifespan's loop: in a view, a consumer or an async "
        "LifespanCommand.handle() it is; from sync code, call it with asgiref's async_to_sync() "
        "instead of asyncio.run() or a new loop of your own. In tests, replace it with "
        "lifespan_signals.testing.override_clients()."
    )


def _missing(alias: str) -> Exception:
    declared = list(settings.CLIENTS)
    if alias not in declared:
        return UnknownClient(
            f"No client {alias!r} in LIFESPAN_SIGNALS_CLIENTS (declared: {declared!r}). Declare "
            f'it: LIFESPAN_SIGNALS_CLIENTS = {{{alias!r}: {{"BACKEND": "httpx.AsyncClient"}}}}.'
        )
    if not registry.clients_opened:
        return LifespanNotStarted(
            f"clients[{alias!r}]: no ASGI lifespan is running in this process, so no declared "
            "client is open. Clients work in a server process once lifespan startup has opened "
            "them (uvicorn, hypercorn, granian, gunicorn with uvicorn workers, 'manage.py "
            "runasgi'); in tests, run the lifespan with lifespan_signals.testing."
        )
    return LifespanNotStarted(
        f"clients[{alias!r}] is declared but not open in the running lifespan: its startup "
        "began before LIFESPAN_SIGNALS_CLIENTS declared it. Start the lifespan after changing "
        "the setting."
    )
