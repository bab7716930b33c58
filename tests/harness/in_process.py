"""Helpers for the package's in-process tests."""

from __future__ import annotations

import contextlib
import sys
import types
import unittest
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, TypeVar
from unittest import mock

import pytest
from asgiref.testing import ApplicationCommunicator
from django.dispatch import Signal

from lifespan_signals.lifespan.driver import LifespanFailed
from lifespan_signals.resources import register_resource, unregister_resource
from lifespan_signals.threads import supported as threads_supported

T = TypeVar("T")

LIFESPAN_SCOPE = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.3"}}


@contextlib.contextmanager
def connected(signal: Signal, *receivers: Any) -> Iterator[None]:
    """Connect receivers for the duration of a block; always disconnect them."""
    for receiver in receivers:
        signal.connect(receiver, weak=False)
    try:
        yield
    finally:
        for receiver in receivers:
            signal.disconnect(receiver)


async def open_client(sender: Any, *, state: dict[str, Any], **kwargs: Any) -> None:
    """An ``asgi_startup`` receiver that puts a new object, the "client", in the state."""
    state["client"] = object()


def enter(test: unittest.TestCase, manager: AbstractContextManager[T]) -> T:
    """Enter ``manager`` for the rest of ``test`` (``TestCase.enterContext``, Python 3.11+)."""
    result = manager.__enter__()
    test.addCleanup(manager.__exit__, None, None, None)
    return result


def without_db_connection_cleanup() -> AbstractContextManager[Any]:
    """Consumers close old database connections as they finish (Channels' communicators stub that
    out only while they send or receive); tests without a database stub it out throughout."""
    return mock.patch("channels.db.close_old_connections", return_value=None)


@contextlib.contextmanager
def registered(*factories: Any) -> Iterator[None]:
    for factory in factories:
        register_resource(factory)
    try:
        yield
    finally:
        for factory in factories:
            unregister_resource(factory)


class Lifespan:
    """Drive one lifespan scope of ``app`` message by message."""

    def __init__(self, app: Any, state: dict[str, Any] | None = None, **scope: Any) -> None:
        scope = {**LIFESPAN_SCOPE, **scope}
        if state is not None:
            scope["state"] = state
        self.communicator = ApplicationCommunicator(app, scope)

    async def send(self, message_type: str) -> dict[str, Any]:
        await self.communicator.send_input({"type": message_type})
        message: dict[str, Any] = await self.communicator.receive_output(5)
        if message["type"].endswith(".failed"):
            # The application then raises the report, as Starlette's lifespan does.
            with contextlib.suppress(LifespanFailed):
                await self.communicator.wait(5)
        return message

    async def startup(self) -> dict[str, Any]:
        return await self.send("lifespan.startup")

    async def shutdown(self) -> dict[str, Any]:
        message = await self.send("lifespan.shutdown")
        if message["type"] == "lifespan.shutdown.complete":
            await self.communicator.wait(5)  # the app returns after shutdown
        return message


def fake_module(name: str, **attrs: Any) -> types.ModuleType:
    """A module ``name`` holding ``attrs``, importable from now on (put in ``sys.modules``)."""
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def http_scope(path="/", state=None, query=b""):
    """An HTTP scope for ``path``, as a server makes it; with ``state`` when given."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    if state is not None:
        scope["state"] = state
    return scope


# asgiref 3.13, the first whose ThreadSensitiveContext takes an executor, needs Python 3.11: on
# 3.10 the request-threads mode is refused (E031; tested with an old-style context there too).
needs_request_threads = pytest.mark.skipif(
    not threads_supported(),
    reason="asgiref < 3.13 (Python 3.10): request threads are refused there with E031",
)
