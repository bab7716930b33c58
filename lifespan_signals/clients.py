"""Declared clients: ``LIFESPAN_SIGNALS_CLIENTS``, opened by the lifespan, reached by alias.

::

    LIFESPAN_SIGNALS_CLIENTS = {
        "default": {"BACKEND": "httpx.AsyncClient", "OPTIONS": {"timeout": 10}},
    }

    from lifespan_signals.clients import clients

    async def view(request):
        response = await clients["default"].get("https://example.com/")

Lifespan startup opens every declared client concurrently on the server's event loop, before
resources and ``asgi_startup`` receivers; shutdown closes them in reverse order after resources.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from lifespan_signals._backends import Closer, call_closer, open_backend
from lifespan_signals.dispatch import Budget, Failure
from lifespan_signals.state import LifespanNotStarted

__all__ = ["Clients", "UnknownClient", "clients"]

logger = logging.getLogger("lifespan_signals.steps")
T = TypeVar("T")
_CANCEL_GRACE = 1.0  # seconds that clients still opening get to unwind after a timeout

# The open clients of each running lifespan, innermost last, and the overrides of tests, in order.
_opened: list[dict[str, Any]] = []
_overrides: list[dict[str, Any]] = []
_view: dict[str, Any] = {}  # what clients[alias] sees: rebuilt (never mutated) on every change


class UnknownClient(KeyError):
    """No client has this alias in ``LIFESPAN_SIGNALS_CLIENTS``. A :class:`KeyError`."""

    def __str__(self) -> str:
        return str(self.args[0])


class Clients:
    """The declared clients of the running lifespan, by alias: ``clients["default"]``."""

    __slots__ = ()

    def __getitem__(self, alias: str) -> Any:
        try:
            return _view[alias]
        except KeyError:
            raise _missing(alias) from None

    def get(self, alias: str, cls: type[T]) -> T:
        """``clients[alias]``, checked to be a ``cls`` (and typed so for mypy)."""
        client = self[alias]
        if not isinstance(client, cls):
            raise TypeError(
                f"clients[{alias!r}] is {client!r}, not an instance of {cls.__module__}."
                f"{cls.__qualname__}. Ask for the type its BACKEND makes, or fix "
                f"LIFESPAN_SIGNALS_CLIENTS[{alias!r}]."
            )
        return client

    def __contains__(self, alias: object) -> bool:
        return alias in _view

    def __iter__(self) -> Iterator[str]:
        return iter(list(_view))

    def __len__(self) -> int:
        return len(_view)

    def __repr__(self) -> str:
        return f"<Clients {sorted(_view)!r}>"


clients = Clients()


def _missing(alias: str) -> Exception:
    from lifespan_signals.conf import settings

    declared = list(settings.CLIENTS)
    if alias not in declared:
        return UnknownClient(
            f"No client {alias!r} in LIFESPAN_SIGNALS_CLIENTS (declared: {declared!r}). Declare "
            f'it: LIFESPAN_SIGNALS_CLIENTS = {{{alias!r}: {{"BACKEND": "httpx.AsyncClient"}}}}.'
        )
    if not _opened:
        return LifespanNotStarted(
            f"clients[{alias!r}]: no ASGI lifespan is running in this process, so no declared "
            "client is open. Clients work in a server process once lifespan startup has opened "
            "them (uvicorn, hypercorn, granian, gunicorn with uvicorn workers, 'manage.py "
            "runasgi'); in tests, run the lifespan with lifespan_signals.testing."
        )
    return LifespanNotStarted(
        f"clients[{alias!r}] is declared but not open: the running lifespan started before "
        "LIFESPAN_SIGNALS_CLIENTS declared it. Start the lifespan after changing the setting."
    )


def _rebuild() -> None:
    global _view
    view = dict(_opened[-1]) if _opened else {}
    for overrides in _overrides:
        view.update(overrides)
    _view = view


def push_overrides(replacements: dict[str, Any]) -> None:
    _overrides.append(replacements)
    _rebuild()


def pop_overrides(replacements: dict[str, Any]) -> None:
    _remove(_overrides, replacements)


def _remove(stack: list[dict[str, Any]], item: dict[str, Any]) -> None:
    for index in range(len(stack) - 1, -1, -1):
        if stack[index] is item:
            del stack[index]
            break
    _rebuild()


class _Open:
    """One lifespan's clients: what is open and how to close it, in declaration order."""

    def __init__(self, declared: Mapping[str, Mapping[str, Any]]) -> None:
        self.declared = declared
        self.clients: dict[str, Any] = {}
        self.closers: dict[str, Closer] = {}


_by_owner: dict[object, _Open] = {}


def _step(phase: str, alias: str, started: float, ok: bool) -> None:
    seconds = time.perf_counter() - started
    step = {"phase": phase, "kind": "client", "name": alias, "seconds": seconds, "ok": ok}
    logger.debug(
        "%s %s %s: %.1f ms", phase, "client", alias, seconds * 1000, extra={"lifespan_step": step}
    )


def _label(alias: str, entry: Mapping[str, Any]) -> str:
    return f"LIFESPAN_SIGNALS_CLIENTS[{alias!r}] ({entry['BACKEND']})"


async def _open_one(record: _Open, alias: str) -> Failure | None:
    started = time.perf_counter()
    try:
        client, closer = await open_backend(alias, record.declared[alias])
    except BaseException as exc:  # whatever a backend raises is its failure, never the server's
        _step("startup", alias, started, False)
        return Failure.from_exception(_label(alias, record.declared[alias]), exc)
    record.clients[alias], record.closers[alias] = client, closer
    _step("startup", alias, started, True)
    return None


async def open_clients(owner: object, budget: Budget) -> list[Failure]:
    """Open the declared clients concurrently for ``owner``; on a failure close those open."""
    from lifespan_signals.conf import settings

    try:
        declared = settings.CLIENTS
    except Exception as exc:
        return [Failure.from_exception("LIFESPAN_SIGNALS_CLIENTS", exc)]
    record = _by_owner[owner] = _Open(declared)
    tasks: dict[asyncio.Future[Failure | None], str] = {
        asyncio.ensure_future(_open_one(record, alias)): alias for alias in declared
    }
    pending: set[asyncio.Future[Failure | None]] = set()
    try:
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=budget.remaining())
    except BaseException:  # cancelled: let the openings unwind; shutdown closes what opened
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=_CANCEL_GRACE)
        raise
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=_CANCEL_GRACE)
    failures = []
    for task, alias in tasks.items():
        if task in pending:
            failures.append(budget.timed_out(_label(alias, declared[alias]), "still opening"))
        elif failure := task.result():
            failures.append(failure)
    if failures:
        return failures + await close_clients(owner, budget)
    _opened.append(record.clients)
    _rebuild()
    return []


async def close_clients(owner: object, budget: Budget) -> list[Failure]:
    """Close ``owner``'s open clients in reverse declaration order, every one even if some fail."""
    record = _by_owner.pop(owner, None)
    if record is None:
        return []
    _remove(_opened, record.clients)
    failures = []
    for alias in reversed(list(record.declared)):
        if alias not in record.closers:
            continue
        started = time.perf_counter()
        label = _label(alias, record.declared[alias])
        task = asyncio.ensure_future(_close_one(record.closers[alias]))
        done, _ = await asyncio.wait({task}, timeout=budget.remaining())
        if not done:
            task.cancel()
            failures.append(budget.timed_out(label, "still closing"))
        elif (exc := task.result()) is not None:
            failures.append(Failure.from_exception(label, exc))
        _step("shutdown", alias, started, bool(done) and task.result() is None)
    return failures


async def _close_one(closer: Closer) -> BaseException | None:
    try:
        await call_closer(closer)
    except BaseException as exc:  # a backend's failure to close, whatever it raised
        return exc
    return None
