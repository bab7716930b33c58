"""The lifespan state: where startup receivers put shared clients, and how code reaches it."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

__all__ = ["LifespanNotStarted", "RequestState", "StateKeyError", "get_state"]

# The states of the lifespans running in this process, innermost last. One per process in
# production; tests may nest or repeat cycles.
_running: list[dict[str, Any]] = []


class LifespanNotStarted(RuntimeError):
    """Raised by :func:`get_state` when no ASGI lifespan is running in this process."""


class StateKeyError(KeyError):
    """A key is missing from the lifespan state. A :class:`KeyError`, with a readable message."""

    def __str__(self) -> str:
        return str(self.args[0])


def get_state() -> dict[str, Any]:
    """Return the state of the lifespan running in this process (for code outside requests)."""
    if not _running:
        raise LifespanNotStarted(
            "No ASGI lifespan is running in this process, so there is no lifespan state. "
            "get_state() works in a server process once lifespan startup has begun (uvicorn, "
            "hypercorn, granian, gunicorn with uvicorn workers, or 'manage.py runasgi'); in tests, "
            "run the lifespan with lifespan_signals.testing."
        )
    return _running[-1]


def _enter(state: dict[str, Any]) -> None:
    _running.append(state)


def _exit(state: dict[str, Any]) -> None:
    for index in range(len(_running) - 1, -1, -1):
        if _running[index] is state:
            del _running[index]
            return


class RequestState(MutableMapping[str, Any]):
    """``request.state``: the request's shallow copy of the lifespan state.

    Reads and writes go to the scope's ``state`` dict, so ASGI middleware and views see the same
    keys. A missing key raises :class:`StateKeyError` saying who should have set it.
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any] | None) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        if self._data is None:
            raise StateKeyError(
                f"request.state has no key {key!r}: this request carries no lifespan state. "
                "The server did not run the ASGI lifespan (Daphne and WSGI servers never do). "
                "Serve the project with an ASGI server that does, or with 'manage.py runasgi', "
                "and use lifespan_signals.asgi.get_asgi_application()."
            )
        try:
            return self._data[key]
        except KeyError:
            raise StateKeyError(
                f"request.state has no key {key!r} (keys: {sorted(self._data)!r}). Set it in an "
                f"asgi_startup receiver: state[{key!r}] = ..."
            ) from None

    def __setitem__(self, key: str, value: Any) -> None:
        if self._data is None:
            self._data = {}
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        if self._data is None or key not in self._data:
            raise StateKeyError(f"request.state has no key {key!r} to delete.")
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data or ())

    def __len__(self) -> int:
        return len(self._data or ())

    def __repr__(self) -> str:
        return f"<RequestState {self._data!r}>"
