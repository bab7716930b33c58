"""p7, p10, p11, p12: the one-hop request path against WSGI and against Django's ASGI path.

The project (``bench.settings_one_hop``) has ``startproject``'s seven middleware; this module is
its URLconf and its applications. ``bench.run`` calls ``rows(prefix, logs)``; each comparison
starts its servers side by side and drives them in turn, ``ROUNDS`` times, the order rotating;
the figure is the median of the per-round ratios of req/s, and "by CPU" the median ratio of
the servers' CPU time per request (all processes of a server: gunicorn's work is in its worker).

- p10: in-process handler CPU per request, sync view: the one-hop path, 32 requests at once on
  a uvloop loop (as the served rows' uvicorn), vs Django's ``WSGIHandler``, one request after
  another (a ratio of CPU, lower is better).
- p11: req/s, sync view, 32 connections: uvicorn + the one-hop path vs gunicorn
  ``-k gthread --threads 32``, one process each.
- p12: an async view calling an upstream that answers in 10 ms through the shared aiohttp
  session (uvicorn, one-hop) vs a sync view with a ``requests.Session`` (gthread, 32 threads),
  64 connections.
- p7: uvicorn + the one-hop path vs uvicorn + Django's ``ASGIHandler``, sync view.

uvicorn runs with ``--loop uvloop --http httptools`` (``uvicorn[standard]``).
The 10 ms upstream is ``python -m bench.upstream 0 0.010``; ``python -m bench.one_hop p10``
prints the in-process figures as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

from tests.harness import catalogue

PYTHON = sys.executable
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "6"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "3"))
SETTINGS = {"DJANGO_SETTINGS_MODULE": "bench.settings_one_hop"}

# -- the project --------------------------------------------------------------------------


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"Hello, world!", content_type="text/plain")


async def upstream_aiohttp(request: HttpRequest) -> HttpResponse:
    from django.conf import settings

    from lifespan_signals.clients import clients

    async with clients["aiohttp"].get(settings.BENCH_UPSTREAM_URL) as response:
        body = await response.read()
    return HttpResponse(body, status=response.status, content_type="application/json")


_sessions = threading.local()


def upstream_requests(request: HttpRequest) -> HttpResponse:
    """A ``requests.Session`` per gthread worker thread (a Session is not thread-safe)."""
    import requests
    from django.conf import settings

    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
    response = session.get(settings.BENCH_UPSTREAM_URL, timeout=10)
    return HttpResponse(
        response.content, status=response.status_code, content_type="application/json"
    )


urlpatterns = [
    path("hello/", hello),
    path("upstream/aiohttp/", upstream_aiohttp),
    path("upstream/requests/", upstream_requests),
]


def __getattr__(name: str) -> Any:
    # Built on first use: this module is also the project's URLconf, imported by Django itself.
    if name == "application":
        from lifespan_signals.asgi import get_asgi_application

        return get_asgi_application()
    if name == "django_application":
        from django.core.asgi import get_asgi_application as djangos

        return djangos()
    if name == "wsgi_application":
        from django.core.wsgi import get_wsgi_application

        return get_wsgi_application()
    raise AttributeError(name)


# -- the servers --------------------------------------------------------------------------

UVICORN = ("--loop", "uvloop", "--http", "httptools", "--no-access-log")
GTHREAD = catalogue.GUNICORN_GTHREAD
UPSTREAM = catalogue.UPSTREAM_10MS
Server = tuple[catalogue.Server, str, tuple[str, ...], dict[str, str], str]  # + env, path

ONE_HOP_SYNC: Server = (
    catalogue.UVICORN_AUTO, "bench.one_hop:application", ("--lifespan", "on", *UVICORN),
    SETTINGS, "/hello/",
)  # fmt: skip
DJANGO_SYNC: Server = (
    catalogue.UVICORN_AUTO, "bench.one_hop:django_application", ("--lifespan", "off", *UVICORN),
    SETTINGS | {"BENCH_ONE_HOP": "0"}, "/hello/",
)  # fmt: skip
GTHREAD_SYNC: Server = (GTHREAD, "bench.one_hop:wsgi_application", (), SETTINGS, "/hello/")
ONE_HOP_UPSTREAM: Server = (*ONE_HOP_SYNC[:4], "/upstream/aiohttp/")
GTHREAD_UPSTREAM: Server = (*GTHREAD_SYNC[:4], "/upstream/requests/")

# key, A, B, the servers measured together, connections
COMPARISONS: list[tuple[list[tuple[str, str, str]], dict[str, Server], int]] = [
    (
        [
            ("p11_one_hop_vs_gthread", "uvicorn one-hop, sync", "gunicorn gthread, sync"),
            ("p7_one_hop_vs_django", "uvicorn one-hop, sync", "uvicorn Django's ASGIHandler"),
        ],
        {
            "uvicorn one-hop, sync": ONE_HOP_SYNC,
            "gunicorn gthread, sync": GTHREAD_SYNC,
            "uvicorn Django's ASGIHandler": DJANGO_SYNC,
        },
        32,
    ),
    (
        [("p12_async_upstream_vs_gthread", "uvicorn one-hop, aiohttp", "gthread, requests")],
        {"uvicorn one-hop, aiohttp": ONE_HOP_UPSTREAM, "gthread, requests": GTHREAD_UPSTREAM},
        64,
    ),
]


def measure(
    servers: dict[str, Server], logs: Path, env: dict[str, str], connections: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Req/s and CPU ms per request (whole process group) of each server, round by round."""
    from bench.servers import group_cpu_seconds, serve, settle, wrk

    names = list(servers)
    rps: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    with contextlib.ExitStack() as stack:
        running = {}
        for name, (server, app, options, server_env, url_path) in servers.items():
            log = logs / f"{re.sub(r'[^a-z]+', '-', name.lower())}.log"
            running[name] = stack.enter_context(
                serve(server, app, options, server_env | env, url_path, log)
            )
        for name in names:
            wrk(running[name].url, 2, connections)  # warm-up
            settle(running[name].process.pid, clock=group_cpu_seconds)
        for round_ in range(ROUNDS):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                pgid = running[name].process.pid  # each server leads its own process group
                before = group_cpu_seconds(pgid)
                per_second, completed = wrk(running[name].url, SECONDS, connections)
                rps[name].append(per_second)
                cpu[name].append((group_cpu_seconds(pgid) - before) / max(completed, 1) * 1000)
                settle(pgid, clock=group_cpu_seconds)
            figures = ", ".join(f"{rps[n][-1]:.0f}/s {cpu[n][-1]:.2f} ms" for n in names)
            print(f"  round {round_ + 1}/{ROUNDS}: {figures}", flush=True)
    return rps, cpu


def rows(prefix: str, logs: Path) -> tuple[list[Any], dict[str, Any]]:
    """The rows whose keys start with ``prefix`` ("" for all), and their figures for the meta."""
    from bench.report import Row, load_average, median_ratio
    from bench.servers import serve

    found: list[Row] = []
    meta: dict[str, Any] = {"uvicorn": "uvloop + httptools", "load_average": {}}
    if "p10_cpu_one_hop_vs_wsgi".startswith(prefix):
        print("p10: in-process CPU per request, sync view, startproject middleware")
        before = load_average("before p10")
        out = subprocess.run(
            [PYTHON, "-m", "bench.one_hop", "p10"],
            env={**os.environ, **SETTINGS},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        figures = json.loads(out.splitlines()[-1])
        ratio = median_ratio(figures["one_hop"], figures["wsgi"])
        one_hop, wsgi = (statistics.median(figures[key]) for key in ("one_hop", "wsgi"))
        django_asgi = statistics.median(figures["django_asgi"])
        print(f"  CPU ms per request: one-hop {one_hop:.3f}, WSGIHandler {wsgi:.3f}, "
              f"Django's ASGIHandler {django_asgi:.3f}")  # fmt: skip
        found.append(Row("p10_cpu_one_hop_vs_wsgi", ratio, f"{one_hop:.3f}", f"{wsgi:.3f}"))
        meta["p10_cpu_ms_per_request"] = {"one_hop": one_hop, "wsgi": wsgi, "asgi": django_asgi}
        meta["load_average"]["p10"] = [before, load_average("after p10")]
    selected = [c for c in COMPARISONS if any(key.startswith(prefix) for key, _, _ in c[0])]
    if not selected:
        return found, meta
    with serve(UPSTREAM, "", (), {}, "/", logs / "upstream-10ms.log") as upstream:
        env = {"BENCH_UPSTREAM_URL": upstream.url}
        for ratios, servers, connections in selected:
            print(f"{', '.join(key for key, _, _ in ratios)}: {' | '.join(servers)}")
            before = load_average("before")
            rps, cpu = measure(servers, logs, env, connections)
            after = load_average("after")
            for key, a, b in ratios:
                ra = f"{statistics.median(rps[a]):.0f}"
                rb = f"{statistics.median(rps[b]):.0f}"
                by_cpu = median_ratio(cpu[b], cpu[a])
                found.append(Row(key, median_ratio(rps[a], rps[b]), ra, rb, by_cpu))
                meta["load_average"][key] = [before, after]
            meta |= {f"{name}: req/s": statistics.median(values) for name, values in rps.items()}
            meta |= {
                f"{name}: CPU ms per request": round(statistics.median(values), 3)
                for name, values in cpu.items()
            }
    return found, meta


# -- p10, in process ----------------------------------------------------------------------


def _p10(requests: int = 6400, concurrent: int = 32) -> dict[str, list[float]]:
    """CPU ms per request of each handler, round by round (this process's CPU, all threads)."""
    import django
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    django.setup()
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler

    from lifespan_signals.asgi import LifespanASGIHandler

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/hello/", "raw_path": b"/hello/", "query_string": b"",
        "root_path": "", "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }  # fmt: skip

    def asgi(handler: Any) -> float:
        async def one() -> None:
            asked = False

            async def receive() -> dict[str, Any]:
                nonlocal asked
                if asked:  # Django's handler listens for a disconnect: none comes
                    await asyncio.Future()
                asked = True
                return {"type": "http.request", "body": b""}

            async def send(message: dict[str, Any]) -> None:
                pass

            await handler(dict(scope), receive, send)

        async def client(count: int) -> None:
            for _ in range(count):
                await one()

        async def run() -> None:
            await asyncio.gather(*(client(requests // concurrent) for _ in range(concurrent)))

        started = time.process_time()
        asyncio.run(run())  # on uvloop, as the served rows' uvicorn
        return (time.process_time() - started) / requests * 1000

    def wsgi(handler: WSGIHandler) -> float:
        environ = {
            "REQUEST_METHOD": "GET", "PATH_INFO": "/hello/", "SCRIPT_NAME": "",
            "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http", "SERVER_PROTOCOL": "HTTP/1.1",
        }  # fmt: skip

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            pass

        started = time.process_time()
        for _ in range(requests):
            result = handler({**environ, "wsgi.input": io.BytesIO(b"")}, start_response)
            b"".join(result)
            result.close()
        return (time.process_time() - started) / requests * 1000

    one_hop, wsgi_handler = LifespanASGIHandler(), WSGIHandler()
    assert one_hop.one_hop is not None
    django_asgi = ASGIHandler()
    asgi(one_hop), wsgi(wsgi_handler)  # warm-up
    figures: dict[str, list[float]] = {"one_hop": [], "wsgi": [], "django_asgi": []}
    for round_ in range(ROUNDS):
        runs = [("one_hop", lambda: asgi(one_hop)), ("wsgi", lambda: wsgi(wsgi_handler))]
        for name, run in runs if round_ % 2 == 0 else runs[::-1]:
            figures[name].append(run())
    figures["django_asgi"].append(asgi(django_asgi))  # for reference: slow in wall time
    one_hop.request_threads.close()  # type: ignore[union-attr]
    return figures


if __name__ == "__main__":
    if sys.argv[1:] == ["p10"]:
        print(json.dumps(_p10()))
    else:
        sys.exit("usage: python -m bench.one_hop p10")
