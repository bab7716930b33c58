"""Opening and closing one lifespan's declared clients, timed, within its time budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from lifespan_signals import clients as _clients
from lifespan_signals._backends import Closer, call_closer, open_backend
from lifespan_signals.budget import Budget, Failure, log_step

__all__ = ["close_clients", "open_clients"]

_CANCEL_GRACE = 1.0  # seconds that clients still opening get to unwind after a timeout


class _Open:
    """One lifespan's clients: what is open and how to close it, in declaration order."""

    def __init__(self, declared: Mapping[str, Mapping[str, Any]]) -> None:
        self.declared = declared
        self.clients: dict[str, Any] = {}
        self.closers: dict[str, Closer] = {}


_by_owner: dict[object, _Open] = {}


def _step(phase: str, alias: str, started: float, ok: bool) -> None:
    log_step(phase, "client", alias, time.perf_counter() - started, ok)


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
    if failures:  # close what opened now, in a budget of its own: startup's may be spent
        return failures + await close_clients(owner, _shutdown_budget())
    _clients._push(_clients._opened, record.clients)
    return []


async def close_clients(owner: object, budget: Budget) -> list[Failure]:
    """Close ``owner``'s open clients in reverse declaration order, every one even if some fail."""
    record = _by_owner.pop(owner, None)
    if record is None:
        return []
    _clients._remove(_clients._opened, record.clients)
    failures = []
    for alias in reversed(list(record.declared)):
        if alias not in record.closers:
            continue
        started = time.perf_counter()
        label = _label(alias, record.declared[alias])
        if budget.remaining() == 0:
            failures.append(budget.timed_out(label, "never closed, no time left"))
            _step("shutdown", alias, started, False)
            continue
        task = asyncio.ensure_future(_close_one(record.closers[alias]))
        done, _ = await asyncio.wait({task}, timeout=budget.remaining())
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=_CANCEL_GRACE)  # let it unwind, as it can
            failures.append(budget.timed_out(label, "still closing"))
        elif (exc := task.result()) is not None:
            failures.append(Failure.from_exception(label, exc))
        _step("shutdown", alias, started, bool(done) and task.result() is None)
    return failures


def _shutdown_budget() -> Budget:
    from lifespan_signals.conf import DEFAULT_SHUTDOWN_TIMEOUT, settings

    try:
        seconds = settings.SHUTDOWN_TIMEOUT
    except ImproperlyConfigured:  # startup reports it; still close what is open
        seconds = DEFAULT_SHUTDOWN_TIMEOUT
    return Budget("LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT", seconds)


async def _close_one(closer: Closer) -> BaseException | None:
    try:
        await call_closer(closer)
    except BaseException as exc:  # a backend's failure to close, whatever it raised
        return exc
    return None
