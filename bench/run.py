"""``make bench``: what lifespan_signals costs and what it saves, measured as ratios.

Each comparison starts its servers side by side (subprocesses on loopback port 0) and drives
them in turn with wrk, ROUNDS times, the order rotating every round; the figure is the median of
the per-round ratios of requests/s. On a busy machine absolute req/s drift from minute to minute,
but two servers measured seconds apart drift together. Startup and SIGTERM-to-exit are in ms.
The "by CPU" column gives the same ratios from the servers' CPU time per request (CPU time over
the requests wrk completed), which the time other processes (or the hypervisor) take from the
server does not disturb: an independent cross-check.

Writes bench/results.json (numbers only), bench/results-meta.json (machine, req/s of every server)
and bench/results.png. ``BENCH_ROUNDS`` and ``BENCH_SECONDS`` shorten a trial run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import layers, one_hop
from bench.report import (
    Row,
    cpu_ticks,
    draw_chart,
    load_average,
    machine,
    median_ratio,
    print_table,
)
from bench.servers import ROOT, WRK, cpu_seconds, serve, settle, tail, wrk
from tests.harness import catalogue

HERE = ROOT / "bench"
PYTHON = sys.executable
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "6"))  # even: A and B go first equally often
SECONDS = int(os.environ.get("BENCH_SECONDS", "3"))
# Run only the comparisons whose keys start with this (e.g. "p6"), print them, write no files.
ONLY = os.environ.get("BENCH_ONLY", "")


@dataclass
class Server:
    """How to start one server (from the tests' catalogue), and the path that wrk loads on it."""

    command: Command
    path: str
    env: dict[str, str]


Command = tuple[catalogue.Server, str, tuple[str, ...]]  # server, application, options


def uvicorn(app: str, lifespan: str = "on") -> Command:
    # Its INFO log stays on: it is where uvicorn reports the port it bound.
    return catalogue.UVICORN_AUTO, app, ("--lifespan", lifespan, "--no-access-log")


RUNASGI: Command = (catalogue.RUNASGI, "", ())
UPSTREAM: Command = (catalogue.UPSTREAM, "", ())


def daphne(app: str, server: catalogue.Server = catalogue.DAPHNE) -> Command:
    return server, app, ()


LIFESPAN_DAPHNE = catalogue.LIFESPAN_DAPHNE  # lifespan-daphne, Daphne's CLI with the lifespan


BENCH = {"DJANGO_SETTINGS_MODULE": "bench.settings"}
PLAIN = {"DJANGO_SETTINGS_MODULE": "bench.settings_plain"}
SAMPLE = {"DJANGO_SETTINGS_MODULE": "sampleproject.settings", "DJANGO_DEBUG": "false"}
THREADS = {"BENCH_REQUEST_THREADS": "32"}  # LIFESPAN_SIGNALS_REQUEST_THREADS: one per connection
STOCK = {"DJANGO_SETTINGS_MODULE": "bench.settings_stock"}
STOCK_PLAIN = STOCK | {"BENCH_PLAIN": "1"}
LIFESPAN = uvicorn("bench.asgi:application")
LIFESPAN_DAPHNE_IDLE = Server(daphne("bench.asgi:application", LIFESPAN_DAPHNE), "/hello/", BENCH)

# Servers measured in the same rounds, and the ratios (key, A, B) taken between them.
COMPARISONS: list[tuple[dict[str, Server], list[tuple[str, str, str]]]] = [
    (
        {
            "uvicorn, lifespan_signals": Server(LIFESPAN, "/hello/", BENCH),
            "uvicorn, plain Django": Server(
                uvicorn("bench.asgi_plain:application", "off"), "/hello/", PLAIN
            ),
        },
        [("p1_overhead_uvicorn", "uvicorn, lifespan_signals", "uvicorn, plain Django")],
    ),
    (
        {
            "runasgi, plain Django": Server(RUNASGI, "/hello/", PLAIN),
            "daphne, plain Django": Server(
                daphne("bench.asgi_plain:application"), "/hello/", PLAIN
            ),
        },
        [("p2_runasgi_vs_daphne", "runasgi, plain Django", "daphne, plain Django")],
    ),
    (
        {
            "lifespan-daphne, plain Django": Server(
                daphne("bench.asgi_plain:application", LIFESPAN_DAPHNE), "/hello/", PLAIN
            ),
            "daphne, plain Django": Server(
                daphne("bench.asgi_plain:application"), "/hello/", PLAIN
            ),
        },
        [("p9_lifespan_daphne_vs_daphne", "lifespan-daphne, plain Django", "daphne, plain Django")],
    ),
    (
        {
            "aiohttp shared": Server(LIFESPAN, "/aiohttp/shared/", BENCH),
            "aiohttp per request": Server(LIFESPAN, "/aiohttp/per-request/", BENCH),
            "aiohttp global": Server(LIFESPAN, "/aiohttp/global/", BENCH),
            "httpx shared": Server(LIFESPAN, "/httpx/shared/", BENCH),
            "httpx per request": Server(LIFESPAN, "/httpx/per-request/", BENCH),
        },
        [
            ("p3_aiohttp_shared_vs_per_request", "aiohttp shared", "aiohttp per request"),
            ("p3_httpx_shared_vs_per_request", "httpx shared", "httpx per request"),
            ("p3_lifespan_vs_global", "aiohttp shared", "aiohttp global"),
        ],
    ),
    (
        {
            "aiohttp clients['x']": Server(LIFESPAN, "/aiohttp/declared/", BENCH),
            "aiohttp state key": Server(LIFESPAN, "/aiohttp/shared/", BENCH),
            "aiohttp module global": Server(LIFESPAN, "/aiohttp/global/", BENCH),
        },
        [
            ("p6_clients_vs_state_key", "aiohttp clients['x']", "aiohttp state key"),
            ("p6_clients_vs_global", "aiohttp clients['x']", "aiohttp module global"),
        ],
    ),
    (
        {
            "request threads, stock middleware": Server(LIFESPAN, "/hello/", STOCK | THREADS),
            "Django's ASGIHandler, stock middleware": Server(
                uvicorn("bench.asgi_plain:application", "off"), "/hello/", STOCK_PLAIN
            ),
            "lifespan_signals, stock middleware": Server(LIFESPAN, "/hello/", STOCK),
        },
        [
            (
                "p7_request_threads_vs_django",
                "request threads, stock middleware",
                "Django's ASGIHandler, stock middleware",
            ),
            (
                "p7_request_threads_on_vs_off",
                "request threads, stock middleware",
                "lifespan_signals, stock middleware",
            ),
        ],
    ),
    (
        {
            "aiohttp shared, threads": Server(LIFESPAN, "/aiohttp/shared/", BENCH | THREADS),
            "aiohttp per request, threads": Server(
                LIFESPAN, "/aiohttp/per-request/", BENCH | THREADS
            ),
            "httpx shared, threads": Server(LIFESPAN, "/httpx/shared/", BENCH | THREADS),
            "httpx per request, threads": Server(LIFESPAN, "/httpx/per-request/", BENCH | THREADS),
        },
        [
            (
                "p8_aiohttp_shared_vs_per_request_threads",
                "aiohttp shared, threads",
                "aiohttp per request, threads",
            ),
            (
                "p8_httpx_shared_vs_per_request_threads",
                "httpx shared, threads",
                "httpx per request, threads",
            ),
        ],
    ),
    (
        {
            "sample home, runasgi": Server(RUNASGI, "/", SAMPLE),
            "sample home, uvicorn": Server(uvicorn("sampleproject.asgi:application"), "/", SAMPLE),
        },
        [("sample_home_runasgi_vs_uvicorn", "sample home, runasgi", "sample home, uvicorn")],
    ),
]


Runs = dict[str, list[float]]


def measure(servers: dict[str, Server], logs: Path, env: dict[str, str]) -> tuple[Runs, Runs]:
    """Requests/s, and the server's CPU ms per request, of each server in each round.

    All servers run throughout. CPU time per request does not count the time other processes
    (or the hypervisor) take from the server, so it shows a cost hidden by noise in req/s.
    """
    names = list(servers)
    with contextlib.ExitStack() as stack:
        running = {}
        for name, server in servers.items():
            log = logs / f"{re.sub(r'[^a-z]+', '-', name)}.log"
            running[name] = stack.enter_context(
                serve(*server.command, server.env | env, server.path, log)
            )
        for name in names:
            wrk(running[name].url, 2)  # warm-up (slow servers may complete none)
            settle(running[name].process.pid)
        rps: Runs = {name: [] for name in names}
        cpu: Runs = {name: [] for name in names}
        for round_ in range(ROUNDS):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                pid = running[name].process.pid
                per_second, cpu_ms = load(running[name].url, pid)
                rps[name].append(per_second)
                cpu[name].append(cpu_ms)
                settle(pid)
            print(
                f"  round {round_ + 1}/{ROUNDS}: " + ", ".join(f"{rps[n][-1]:.0f}" for n in names)
            )
        return rps, cpu


def load(url: str, pid: int) -> tuple[float, float]:
    """One wrk run: req/s, and the server's CPU ms per request wrk completed.

    A server that answers in slow waves (an httpx client per request, on a loaded machine) may
    complete none in SECONDS: then the run is repeated, twice as long, up to twice.
    """
    for seconds in (SECONDS, 2 * SECONDS, 4 * SECONDS):
        cpu_before = cpu_seconds(pid)
        per_second, completed = wrk(url, seconds)
        if completed:
            # Over the requests wrk completed: independent of the req/s estimate.
            return per_second, (cpu_seconds(pid) - cpu_before) / completed * 1000
        settle(pid)
    raise RuntimeError(f"No request to {url} completed in {7 * SECONDS} s.")


def startup_ms(receivers: int = 100, delay: float = 0.05, runs: int = 5) -> float:
    """p4: lifespan startup with ``receivers`` async receivers each awaiting ``delay`` s."""
    import django
    from django.conf import settings

    settings.configure(INSTALLED_APPS=["lifespan_signals"])
    django.setup()
    from lifespan_signals.asgi import LifespanASGIHandler
    from lifespan_signals.lifespan.driver import LifespanDriver
    from lifespan_signals.signals import asgi_startup

    async def receiver(**kwargs: Any) -> None:
        await asyncio.sleep(delay)

    async def once() -> float:
        driver = LifespanDriver(LifespanASGIHandler())
        started = time.perf_counter()
        await driver.startup()
        elapsed = (time.perf_counter() - started) * 1000
        await driver.shutdown()
        return elapsed

    uids = [f"bench.receiver.{index}" for index in range(receivers)]
    for uid in uids:
        asgi_startup.connect(receiver, weak=False, dispatch_uid=uid)
    try:
        return statistics.median(asyncio.run(once()) for _ in range(runs))
    finally:
        for uid in uids:
            asgi_startup.disconnect(dispatch_uid=uid)


def lookup_us(number: int = 1_000_000) -> dict[str, float]:
    """p6: what finding a shared client costs a view, in µs (best of 5 timeit runs)."""
    import timeit

    from lifespan_signals._registry import Running, registry
    from lifespan_signals.clients import clients

    session = object()
    entry = Running({})
    with registry.running(entry):
        registry.publish_clients(entry, {"x": session})  # as a running lifespan does
        state = {"x": session}
        candidates = {
            "clients[x]": ("clients['x']", {"clients": clients}),
            "state[x]": ("state['x']", {"state": state}),
            "module global": ("session", {"session": session}),
        }
        return {
            name: min(timeit.repeat(stmt, globals=names, number=number, repeat=5)) / number * 1e6
            for name, (stmt, names) in candidates.items()
        }


def sigterm_exit_ms(server: Server, logs: Path, name: str, runs: int = 3) -> float:
    """p5: SIGTERM to exit of an idle server, checking that lifespan shutdown ran."""
    times = []
    for run in range(runs):
        log = logs / f"sigterm-{name}-{run}.log"
        with serve(*server.command, server.env, server.path, log) as running:
            time.sleep(0.5)
            started = time.perf_counter()
            running.process.send_signal(signal.SIGTERM)
            code = running.process.wait_exit(30)
            times.append((time.perf_counter() - started) * 1000)
        # uvicorn re-raises the SIGTERM it handled once shut down: -15 is a clean exit there.
        if code not in (0, -signal.SIGTERM) or "Lifespan shutdown complete" not in log.read_text():
            raise RuntimeError(f"{name}: exit {code}, or no lifespan shutdown:\n{tail(log)}")
    return statistics.median(times)


def compare(servers: dict[str, Server], ratios: list[tuple[str, str, str]], logs: Path,
            env: dict[str, str], rps_medians: dict[str, float], cpu_medians: dict[str, float],
            ) -> list[Row]:  # fmt: skip
    """Measure ``servers`` together; one row per ratio (req/s, and by CPU per request)."""
    print(f"{', '.join(key for key, _, _ in ratios)}: {' | '.join(servers)}")
    rps, cpu = measure(servers, logs, env)
    rps_medians |= {name: statistics.median(runs) for name, runs in rps.items()}
    cpu_medians |= {name: statistics.median(runs) for name, runs in cpu.items()}
    rows = []
    for key, a, b in ratios:
        by_cpu = median_ratio(cpu[b], cpu[a])  # cheaper per request: more req/s
        ra, rb = f"{rps_medians[a]:.0f}", f"{rps_medians[b]:.0f}"
        rows.append(Row(key, median_ratio(rps[a], rps[b]), ra, rb, by_cpu))
    return rows


def lookup_row() -> Row:
    costs = lookup_us()
    print("p6: lookup cost, µs: " + ", ".join(f"{name} {us:.3f}" for name, us in costs.items()))
    a, b = f"{costs['state[x]']:.3f}", f"{costs['module global']:.3f}"
    return Row("p6_clients_lookup_us", costs["clients[x]"], a, b)


def main_only(prefix: str) -> None:
    """``BENCH_ONLY``: the comparisons with a key starting with ``prefix``, printed only."""
    rows: list[Row] = [lookup_row()] if prefix.startswith("p6") else []
    rows += layers.rows({}) if "p13".startswith(prefix) else []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        logs = Path(tmp)
        with serve(*UPSTREAM, {}, "/", logs / "upstream.log") as up:
            env = {"BENCH_UPSTREAM_URL": up.url, "SAMPLE_DB_PATH": str(logs / "sample.sqlite3")}
            for servers, ratios in COMPARISONS:
                if any(key.startswith(prefix) for key, _, _ in ratios):
                    rows += compare(servers, ratios, logs, env, {}, {})
        rows += one_hop.rows(prefix, logs)[0]
    print_table(rows)


def main() -> None:
    if ONLY:
        main_only(ONLY)
        return
    began, ticks = time.monotonic(), cpu_ticks()
    load_before = load_average("before the run")
    results: dict[str, float] = {}
    rows: list[Row] = []
    rps_medians: dict[str, float] = {}
    cpu_medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        logs = Path(tmp)
        print("p4: startup with 100 async receivers awaiting 50 ms each")
        results["p4_startup_ms_100_receivers"] = startup_ms()
        rows.append(Row("p4_startup_ms_100_receivers", results["p4_startup_ms_100_receivers"]))

        rows.append(lookup_row())
        results["p6_clients_lookup_us"] = rows[-1].value

        print("p5: SIGTERM to exit, idle server (uvicorn | runasgi)")
        exits = {
            "uvicorn": sigterm_exit_ms(Server(LIFESPAN, "/hello/", BENCH), logs, "uvicorn"),
            "runasgi": sigterm_exit_ms(Server(RUNASGI, "/hello/", BENCH), logs, "runasgi"),
        }
        results["p5_sigterm_exit_ms"] = max(exits.values())
        results |= {f"p5_sigterm_exit_ms_{name}": ms for name, ms in exits.items()}
        a, b = (f"{ms:.0f} ms" for ms in exits.values())
        rows.append(Row("p5_sigterm_exit_ms", results["p5_sigterm_exit_ms"], a, b))
        print("p5: SIGTERM to exit, idle server (lifespan-daphne)")
        daphne_exit = sigterm_exit_ms(LIFESPAN_DAPHNE_IDLE, logs, "lifespan-daphne")
        results["p5_sigterm_exit_ms_lifespan_daphne"] = daphne_exit
        rows.append(Row("p5_sigterm_exit_ms_lifespan_daphne", daphne_exit, f"{daphne_exit:.0f} ms"))

        rows += layers.rows(results)

        with serve(*UPSTREAM, {}, "/", logs / "upstream.log") as up:
            env = {"BENCH_UPSTREAM_URL": up.url, "SAMPLE_DB_PATH": str(logs / "sample.sqlite3")}
            for servers, ratios in COMPARISONS:
                new = compare(servers, ratios, logs, env, rps_medians, cpu_medians)
                results |= {row.key: row.value for row in new}
                rows += new
        new, one_hop_meta = one_hop.rows("", logs)
        results |= {row.key: row.value for row in new}
        rows += new
    results["sample_home_runasgi_rps"] = rps_medians["sample home, runasgi"]
    results["sample_home_uvicorn_rps"] = rps_medians["sample home, uvicorn"]
    results = {key: round(value, 3) for key, value in results.items()}

    print_table(rows)
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (stolen, total), (stolen_before, total_before) = cpu_ticks(), ticks
    meta = machine() | {
        "cpu_stolen_by_hypervisor": round((stolen - stolen_before) / (total - total_before), 3),
        "rounds": ROUNDS,
        "seconds_per_run": SECONDS,
        "wrk_args": " ".join(WRK),
        "req_per_s": rps_medians,
        "server_cpu_ms_per_request": {name: round(ms, 3) for name, ms in cpu_medians.items()},
        "ratios_by_server_cpu": {row.key: round(row.by_cpu, 3) for row in rows if row.by_cpu},
        "one_hop": one_hop_meta,
        "load_average_before_and_after": [load_before, load_average("after the run")],
    }
    (HERE / "results-meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    draw_chart(results, HERE / "results.png")
    took = time.monotonic() - began
    print(f"\nWrote bench/results.json, results-meta.json and results.png in {took:.0f} s.")


if __name__ == "__main__":
    main()
