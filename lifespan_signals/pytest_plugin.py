"""pytest fixtures that run the ASGI lifespan around a test; plugin ``lifespan_signals``.

- ``lifespan_app``: the application whose lifespan runs; the project's by default (see
  :func:`lifespan_signals.testing.lifespan`). Override it in ``conftest.py`` for another one.
- ``lifespan_state``: the lifespan state. Requesting it, directly or through another fixture,
  runs the lifespan around the test.
- ``lifespan_client``: a :class:`lifespan_signals.testing.AsyncClient` carrying that state.

The lifespan runs inside the test function, on the event loop that runs the test, not in a
fixture: fixtures are set up before that loop exists, and what startup receivers open there (an
``aiohttp.ClientSession``) works only on the loop it was made on. So any async plugin (anyio,
pytest-asyncio) can run ``async def`` tests, and a sync test gets an event loop of its own
around it (``async_to_sync`` calls from it run there). ``lifespan_state`` is a live view of
:func:`lifespan_signals.get_state`, usable while the test runs, also from other fixtures' objects.

The plugin touches Django only when a test requests these fixtures.
"""

from __future__ import annotations

import unittest
from collections.abc import Generator, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import pytest

from lifespan_signals.state import LifespanNotStarted, get_state

if TYPE_CHECKING:
    from lifespan_signals.testing import AsyncClient

__all__ = ["CurrentState", "lifespan_app", "lifespan_client", "lifespan_state"]


class CurrentState(MutableMapping[str, Any]):
    """The state of the lifespan running now (:func:`lifespan_signals.get_state`), as a mapping."""

    def __getitem__(self, key: str) -> Any:
        return get_state()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        get_state()[key] = value

    def __delitem__(self, key: str) -> None:
        del get_state()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(get_state())

    def __len__(self) -> int:
        return len(get_state())

    def __repr__(self) -> str:
        try:
            return f"<CurrentState {get_state()!r}>"
        except LifespanNotStarted:
            return "<CurrentState (no lifespan running)>"


@pytest.fixture
def lifespan_app() -> Any:
    """The ASGI application whose lifespan ``lifespan_state`` runs: the project's by default."""
    from lifespan_signals.testing import project_app

    return project_app()


@pytest.fixture
def lifespan_state(request: pytest.FixtureRequest, lifespan_app: Any) -> MutableMapping[str, Any]:
    """The lifespan state; requesting this runs ``lifespan_app``'s lifespan around the test."""
    if isinstance(request.instance, unittest.TestCase):
        raise pytest.UsageError(
            "The lifespan_state fixture cannot run the lifespan around a unittest-style test "
            f"({request.node.nodeid}). Use lifespan_signals.testing.LifespanTestMixin in the "
            "test case's bases instead."
        )
    return CurrentState()


@pytest.fixture
def lifespan_client(lifespan_state: MutableMapping[str, Any]) -> AsyncClient:
    """A Django ``AsyncClient`` whose requests carry the lifespan state; runs the lifespan."""
    from lifespan_signals.testing import AsyncClient

    return AsyncClient()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Wrap a test that uses ``lifespan_state`` in the lifespan, before any plugin runs it."""
    if not isinstance(item, pytest.Function) or "lifespan_state" not in item.fixturenames:
        yield
        return
    from lifespan_signals.testing import in_lifespan

    original = item.obj
    item.obj = in_lifespan(item.funcargs["lifespan_app"])(original)
    try:
        yield
    finally:
        item.obj = original
