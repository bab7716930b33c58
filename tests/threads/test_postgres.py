"""Persistent database connections under ASGI: with request threads, CONN_MAX_AGE works again.

A real PostgreSQL server (a private cluster from ``tests.harness.postgres``) and a real uvicorn.
Django keeps a connection per thread: with a new thread per request, every request opens a new
connection; with request threads kept, the connections are kept with them.
"""

from __future__ import annotations

import re
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.harness.catalogue import UVICORN
from tests.harness.in_process import needs_request_threads
from tests.harness.postgres import cluster
from tests.harness.servers import get_json

pytestmark = [
    pytest.mark.servers,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups"),
]

KEPT = 4
# Clients at once: a request may still be finishing (response.close() in its thread) when its
# client's next one arrives, so each client can hold two threads for a moment.
CLIENTS = KEPT // 2
REQUESTS = 100
TIMEOUT = 30.0
APP = "tests.projects.threadapp.asgi:application"


def _serve(serve, socket_dir: str, threads: int | None) -> list[int]:
    """100 requests, from CLIENTS at once; each answers the PostgreSQL backend pid it used."""
    env = {"LIFESPAN_TEST_DATABASE": socket_dir}
    if threads is not None:
        env["LIFESPAN_TEST_REQUEST_THREADS"] = str(threads)
    server = serve(
        UVICORN, settings="tests.projects.threadapp.settings", app=APP, env=env, record=False
    )
    server.wait_ready("/health/", TIMEOUT)
    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(lambda _: get_json(server.url("/db/"), TIMEOUT), range(REQUESTS)))
    server.stop(timeout=TIMEOUT)
    assert "Traceback" not in server.output(), server.output()
    return [answer["backend"] for answer in answers]


def _connections(log: str) -> int:
    return len(re.findall(r"connection authorized: user=postgres database=postgres", log))


@needs_request_threads
def test_conn_max_age_keeps_one_connection_per_kept_thread(serve) -> None:
    with cluster() as (socket_dir, log):
        kept = _serve(serve, socket_dir, KEPT)
        opened_kept = _connections(log.read_text())
        new = _serve(serve, socket_dir, None)
        opened_new = _connections(log.read_text()) - opened_kept
    assert len(set(kept)) <= KEPT, sorted(set(kept))
    assert opened_kept <= KEPT
    # Django's own behaviour: a new thread, so a new connection, for every request.
    assert len(set(new)) == REQUESTS
    assert opened_new == REQUESTS
