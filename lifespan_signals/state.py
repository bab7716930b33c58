"""The lifespan state: where startup receivers put shared clients, and how code reaches it."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from lifespan_signals._registry import registry

__all__ = [
    "LifespanNotStarted",
    "LiveState",
    "NoLifespanState",
    "RequestState",
    "StateKeyError",
    "get_state",
]


class LifespanNotStarted(RuntimeError):
    """Raised by :func:`get_state` when no ASGI lifespan is running in this process."""


class StateKeyError(KeyError):
    """A key is missing from the lifespan state. A :class:`KeyError`, with a readable message."""

    def __str__(self) -> str:
        return str(self.args[0])


def _no_lifespan(where: str, key: str, what: str) -> str:
    return (
        f"{where} has no key {key!r}: this {what} carries no lifespan state. The server did not "
        "run the ASGI lifespan (Daphne's own runserver, plain daphne, LiveServerTestCase, "
        "ChannelsLiveServerTestCase and WSGI servers never do). Serve the project with one that "
        "does: 'manage.py runserver' (lifespan_signals listed first in INSTALLED_APPS) or "
        "'manage.py runasgi', lifespan-daphne, uvicorn; in tests, run the lifespan with "
        "lifespan_signals.testing. The application must be lifespan_signals' "
        "(lifespan_signals.asgi.get_asgi_application() or lifespan_signals.channels."
        "ProtocolTypeRouter)."
    )


class NoLifespanState(dict[str, Any]):
    """The ``scope["state"]`` of a connection whose server ran no lifespan.

    Empty; reading a missing key raises :class:`StateKeyError` saying that no lifespan ran, not a
    bare ``KeyError``. lifespan_signals' ``ProtocolTypeRouter`` gives it to consumers.
    """

    def __missing__(self, key: str) -> Any:
        raise StateKeyError(_no_lifespan('scope["state"]', key, "connection"))


def get_state() -> dict[str, Any]:
    """Return the state of the lifespan running in this process (for code outside requests)."""
    running = registry.current()
    if running is None:
        raise LifespanNotStarted(
            "No ASGI lifespan is running in this process, so there is no lifespan state. "
            "get_state() works in a server process once lifespan startup has begun (uvicorn, "
            "hypercorn, granian, gunicorn with uvicorn workers, or 'manage.py runasgi'); in tests, "
            "run the lifespan with lifespan_signals.testing."
        )
    return running.state


class LiveState(dict[str, Any]):
    """The lifespan's own state dict: what receivers and :func:`get_state` see.

    Writes go through to the server's dict too, which the server copies into each request.
    Servers may empty their dict before shutdown (granian does); this one they cannot reach, so
    shutdown receivers still find what is open, including what was put here after startup.
    """

    def __init__(self, server: dict[str, Any]) -> None:
        super().__init__(server)
        self.server = server

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.server[key] = value

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.server.pop(key, None)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key: str, *default: Any) -> Any:
        self.server.pop(key, None)
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        key, value = super().popitem()
        self.server.pop(key, None)
        return key, value

    def clear(self) -> None:
        super().clear()
        self.server.clear()


class RequestState(MutableMapping[str, Any]):
    """``request.state``: the request's shallow copy of the lifespan state.

    Reads and writes go to the scope's ``state`` dict, so ASGI middleware and views see the same
    keys. A missing key raises :class:`StateKeyError` saying who should have set it.
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any] | None) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        if self._data is None or (
            isinstance(self._data, NoLifespanState) and key not in self._data
        ):
            raise StateKeyError(_no_lifespan("request.state", key, "request"))
        try:
            return self._data[key]
        except KeyError:
            pass
        if not self._data and registry.current() is None:
            raise StateKeyError(
                f"request.state has no key {key!r}: no ASGI lifespan ran in this process, so no "
                "asgi_startup receiver could set it. Serve an application that speaks lifespan "
                "(lifespan_signals.asgi.get_asgi_application() in asgi.py, not Django's), and "
                "leave the server's lifespan on (not uvicorn --lifespan off)."
            )
        raise StateKeyError(
            f"request.state has no key {key!r} (keys: {sorted(self._data)!r}). Set it in an "
            f"asgi_startup receiver: state[{key!r}] = ..."
        )

    # Starlette's attribute style, which many try first: request.state.http
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except StateKeyError as exc:
            raise AttributeError(str(exc)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__slots__:
            object.__setattr__(self, name, value)
        else:
            self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except StateKeyError as exc:
            raise AttributeError(str(exc)) from None

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
