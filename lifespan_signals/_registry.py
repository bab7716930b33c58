"""The one registry of what runs in this process: lifespans, their clients, tests' overrides.

The engine (:mod:`lifespan_signals.lifespan`) registers a lifespan for as long as it runs, and
publishes its declared clients once they are all open. Code outside
requests reads it through :func:`lifespan_signals.get_state` and ``lifespan_signals.clients``;
:class:`lifespan_signals.testing.override_clients` adds overrides on top.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["Registry", "Running", "registry"]


class Running:
    """One running lifespan: its state (what get_state() returns: the engine's live view over the
    ``server``'s dict, or that dict itself), and its declared clients once they are all open."""

    __slots__ = ("clients", "server", "state", "thread")

    def __init__(self, state: dict[str, Any], *, server: dict[str, Any] | None = None) -> None:
        self.state = state
        self.server = state if server is None else server
        self.clients: dict[str, Any] | None = None  # None: this lifespan has opened none (yet)
        # The thread whose event loop opened its clients (a loop runs in one thread only).
        self.thread: int | None = None

    def __repr__(self) -> str:
        return f"<Running state={sorted(self.state)!r} clients={self.clients!r}>"


class Registry:
    """The lifespans running in this process, innermost last (one in production; tests may nest
    or repeat cycles), and the client overrides of tests, in the order they were entered."""

    def __init__(self) -> None:
        self._running: list[Running] = []
        self._overrides: list[dict[str, Any]] = []
        # What clients[alias] reads: rebuilt, never mutated, on every change (one dict lookup).
        self.clients: dict[str, Any] = {}
        # What clients[alias] looks up: each client, with the thread of the event loop it belongs
        # to (it refuses other running loops) or None (a test's override belongs to none).
        self.bound: dict[str, tuple[Any, int | None]] = {}

    def current(self) -> Running | None:
        """The innermost running lifespan, or None."""
        return self._running[-1] if self._running else None

    def find(self, state: dict[str, Any]) -> Running | None:
        """The running lifespan whose state, or the server's dict under it, is ``state``."""
        for entry in reversed(self._running):
            if state is entry.state or state is entry.server:
                return entry
        return None

    @property
    def clients_opened(self) -> bool:
        """Whether a running lifespan has opened its declared clients."""
        return any(entry.clients is not None for entry in self._running)

    @contextlib.contextmanager
    def running(self, entry: Running) -> Iterator[Running]:
        """Register ``entry`` for the block: the only way a lifespan becomes visible."""
        self._running.append(entry)
        try:
            yield entry
        finally:
            _remove(self._running, entry)
            self._rebuild()

    def publish_clients(self, entry: Running, clients: dict[str, Any] | None) -> None:
        """Make ``entry``'s open clients what lookups see (None: hide them again). Called on the
        event loop that opened them, in its thread: lookups from another running loop (which
        runs in another thread) are refused."""
        entry.clients = clients
        entry.thread = None if clients is None else threading.get_ident()
        self._rebuild()

    def add_override(self, replacements: dict[str, Any]) -> None:
        self._overrides.append(replacements)
        self._rebuild()

    def remove_override(self, replacements: dict[str, Any]) -> None:
        _remove(self._overrides, replacements)
        self._rebuild()

    def _rebuild(self) -> None:
        opened = [entry for entry in self._running if entry.clients is not None]
        view = dict(opened[-1].clients or {}) if opened else {}
        thread = opened[-1].thread if opened else None
        bound = {alias: (client, thread) for alias, client in view.items()}
        for overrides in self._overrides:
            view.update(overrides)
            bound.update({alias: (client, None) for alias, client in overrides.items()})
        self.clients, self.bound = view, bound


def _remove(stack: list[Any], item: object) -> None:
    """Remove the innermost occurrence of ``item``, by identity."""
    for index in range(len(stack) - 1, -1, -1):
        if stack[index] is item:
            del stack[index]
            return


registry = Registry()
