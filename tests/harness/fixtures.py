"""The harness's pytest fixtures (``serve``, ``events``, ``watched``, ``redis``) and the ``servers``
marker.

``tests/conftest.py`` loads this module as a plugin, so every test has them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.redis import Redis, redis_server
from tests.harness.servers import ServerProcess

# Fixtures that start servers: a test using one is marked ``servers`` (tests that start servers
# otherwise, with ``ServerProcess`` directly, say so with ``pytest.mark.servers`` themselves).
SERVER_FIXTURES = {"serve"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)


@pytest.fixture
def events(tmp_path: Path) -> Path:
    """The JSON-lines file the servers' receivers record to (``LIFESPAN_TEST_EVENTS``)."""
    return tmp_path / "events.jsonl"


@pytest.fixture
def watched(tmp_path: Path) -> Path:
    """A file of this test's own that the reloader watches (``LIFESPAN_TEST_WATCH``): touching
    it restarts this test's server only, also when tests run in parallel."""
    path = tmp_path / "watched.txt"
    path.write_text("")
    return path


@pytest.fixture
def serve(events: Path) -> Iterator[ServerProcess]:
    """Start a server of the catalogue: ``serve(server, *options, settings=..., app=..., env=...)``.

    It records events to the ``events`` fixture's file; its whole process group is killed at the
    end of the test, whatever happened.
    """
    started: list[ServerProcess] = []

    def start(server, *options, settings, app=None, env=None, record=True):
        kwargs = {"app": app} if app else {}
        recording = events if record else None
        proc = ServerProcess.of(
            server, *options, settings=settings, events=recording, env=env, **kwargs
        )
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.kill()


@pytest.fixture
def redis() -> Iterator[Redis]:
    """A private ``redis-server`` of this test's own, on a unix socket (``tests.harness.redis``)."""
    with redis_server() as server:
        yield server
