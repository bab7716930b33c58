"""The servers the tests (and ``bench/``) run, in one place: how each is started on 127.0.0.1
port 0, how it reports the port it got, how it exits, and what no clean run may print.

Every server test, the sampleproject's tests and the benchmarks take their commands from here, so
that a server's exit codes or leak patterns cannot drift apart between files.
"""

from __future__ import annotations

import importlib.metadata
import re
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

PYTHON = sys.executable
APP = "tests.projects.serverapp.asgi:application"

# What no run may print: aiohttp's leak warnings, asyncio's lost tasks and transports, errors in
# finalizers. Tests that expect no error at all add "Traceback" (and "ResourceWarning").
LEAKS = (
    "Unclosed client session",
    "Unclosed connector",
    "unclosed transport",
    "Task was destroyed",
    "Exception ignored",
)
# What a channel layer left open, or a consumer left behind, prints at exit (channels_redis #332,
# channels #1966), and what redis-py prints when a read times out under an idle consumer.
LAYER_LEAKS = (
    "Event loop is closed",
    "Task exception was never retrieved",
    "Unclosed",
    "unclosed",
    "Timeout reading from",
)
# What tests.projects.serverapp's shutdown receiver records when it closed the very clients startup
# opened.
CLOSED = {"aiohttp": {"same": True, "closed": True}, "httpx": {"same": True, "closed": True}}


def assert_clean(output: str, *more: str) -> None:
    """Fail, showing the output, if it holds any of ``LEAKS`` or ``more``."""
    for text in (*LEAKS, *more):
        assert text not in output, f"{text!r} in the output:\n{output}"


@dataclass(frozen=True)
class Server:
    """One way to serve an application, and how it behaves."""

    name: str
    command: Callable[[str, Sequence[str]], list[str]]  # (application, options) -> argv, port 0
    # group 1: the port, in the server's output; None: read from its listening socket instead
    reports_port: re.Pattern[str] | None
    stopped_exit: int = 0  # Popen.returncode after SIGTERM and a clean shutdown
    failed_exits: tuple[int, ...] = (1,)  # Popen.returncode when lifespan startup fails
    processes: int = 1  # how many processes run a lifespan
    echoes_failures: bool = False  # whether it logs the failure message it is sent, too
    # Tracebacks (their last line) and ResourceWarnings the server itself prints when it stops
    # because startup failed: nothing to do with the application.
    failure_tracebacks: tuple[str, ...] = ()
    failure_resource_warnings: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()  # modules it needs

    @property
    def failed_exit(self) -> int:
        return self.failed_exits[0]

    def args(self, app: str = APP, *options: str) -> list[str]:
        return self.command(app, options)

    def missing(self) -> list[str]:
        return [name for name in self.requires if find_spec(name) is None]

    def param(self, **marks: Any) -> Any:
        """A ``pytest.param`` of this server, skipped (saying why) when a module is missing."""
        import pytest

        missing = self.missing()
        skip = pytest.mark.skipif(bool(missing), reason=f"{', '.join(missing)} not installed")
        return pytest.param(self, id=self.name, marks=skip)


def _uvicorn(*fixed: str) -> Callable[[str, Sequence[str]], list[str]]:
    def command(app: str, options: Sequence[str]) -> list[str]:
        where = ["--host", "127.0.0.1", "--port", "0"]
        return [PYTHON, "-m", "uvicorn", *fixed, *options, *where, app]

    return command


def _hypercorn(app: str, options: Sequence[str]) -> list[str]:
    return [PYTHON, "-m", "hypercorn", *options, "--bind", "127.0.0.1:0", app]


def _granian(app: str, options: Sequence[str]) -> list[str]:
    where = ["--interface", "asgi", "--host", "127.0.0.1", "--port", "0"]
    return [PYTHON, "-m", "granian", *where, *options, app]


def _gunicorn(app: str, options: Sequence[str]) -> list[str]:
    fixed = ["-w", "2", "-k", "uvicorn_worker.UvicornWorker", "-b", "127.0.0.1:0"]
    # gunicorn 27 opens a control socket under $HOME by default; the tests have no use for it.
    if find_spec("gunicorn") and int(importlib.metadata.version("gunicorn").split(".")[0]) >= 27:
        fixed.append("--no-control-socket")
    return [PYTHON, "-m", "gunicorn", *fixed, *options, app]


def _runasgi(*fixed: str) -> Callable[[str, Sequence[str]], list[str]]:
    # The application is the settings' (ASGI_APPLICATION or the project's asgi module).
    def command(app: str, options: Sequence[str]) -> list[str]:
        return [PYTHON, "manage.py", "runasgi", *fixed, *options, "127.0.0.1:0"]

    return command


def _runserver(*fixed: str) -> Callable[[str, Sequence[str]], list[str]]:
    # lifespan_signals' runserver (when it is the one INSTALLED_APPS picks): runasgi by that name.
    def command(app: str, options: Sequence[str]) -> list[str]:
        return [PYTHON, "manage.py", "runserver", *fixed, *options, "127.0.0.1:0"]

    return command


def _daphne(module: str) -> Callable[[str, Sequence[str]], list[str]]:
    def command(app: str, options: Sequence[str]) -> list[str]:
        return [PYTHON, "-m", module, *options, "-b", "127.0.0.1", "-p", "0", app]

    return command


_UVICORN_PORT = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
_RUNASGI_PORT = re.compile(r"server with lifespan at http://127\.0\.0\.1:(\d+)/")

# uvicorn re-raises the SIGTERM it handled once it has shut down cleanly, so it "dies" of SIGTERM;
# lifespan.startup.failed makes it exit 3 with --lifespan on and "auto" alike. With --workers its
# supervisor exits 0.
UVICORN = Server(
    "uvicorn",
    _uvicorn("--lifespan", "on"),
    _UVICORN_PORT,
    stopped_exit=-signal.SIGTERM,
    failed_exits=(3,),
    echoes_failures=True,
    requires=("uvicorn",),
)
UVICORN_AUTO = Server(
    "uvicorn-lifespan-auto",
    _uvicorn(),
    _UVICORN_PORT,
    stopped_exit=-signal.SIGTERM,
    failed_exits=(3,),
    echoes_failures=True,
    requires=("uvicorn",),
)
UVICORN_WORKERS = Server(
    "uvicorn-workers-2",
    _uvicorn("--workers", "2"),
    _UVICORN_PORT,
    failed_exits=(3,),
    processes=2,
    echoes_failures=True,
    requires=("uvicorn",),
)
# hypercorn runs one worker process. On lifespan.startup.failed its send() raises
# LifespanFailureError (message: the report), which kills the worker: multiprocessing prints
# "Process SpawnProcess-1:" and that traceback. The main process then stops serving and exits, but
# with 0: hypercorn 0.18's run() joins its (already emptied) worker list a second time and that
# overwrites the worker's exit code 1 (pgjones/hypercorn#269, fix in PR #372).
HYPERCORN = Server(
    "hypercorn",
    _hypercorn,
    re.compile(r"Running on http://127\.0\.0\.1:(\d+)"),
    failed_exits=(0,),
    failure_tracebacks=("hypercorn.utils.LifespanFailureError: Lifespan failure in startup.",),
    requires=("hypercorn",),
)
# granian: the worker logs the report and exits 1; the main process stops and exits 1. Bound to
# port 0 it logs "Listening at: http://127.0.0.1:0": the harness reads its listening socket.
GRANIAN = Server(
    "granian",
    _granian,
    None,
    requires=("granian",),
)
# gunicorn: each uvicorn worker runs its own lifespan. A worker exiting 3 (uvicorn's startup
# failure) makes the arbiter halt, "Reason: Worker failed to boot.", exit 3 -- unless the other
# worker exits 3 too while halt() waits for it: then reap_workers() raises HaltServer again inside
# halt(), uncaught (traceback, exit 1; seen under load, a long-standing arbiter race, e.g.
# benoitc/gunicorn#2393). Its exiting workers leave their listening socket and the arbiter its
# worker temp files unclosed (ResourceWarnings under PYTHONDEVMODE).
GUNICORN = Server(
    "gunicorn-uvicorn-worker",
    _gunicorn,
    re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)"),
    failed_exits=(3, 1),
    processes=2,
    echoes_failures=True,
    failure_tracebacks=("gunicorn.errors.HaltServer: <HaltServer 'Worker failed to boot.' 3>",),
    failure_resource_warnings=("unclosed <socket.socket ", "unclosed file <_io.FileIO "),
    requires=("gunicorn", "uvicorn_worker"),
)
# runasgi exits 0 after SIGTERM, 1 when startup fails. With the reloader each serving child binds
# a port of its own (port 0): the last banner names the one that serves.
RUNASGI = Server("runasgi", _runasgi("--noreload"), _RUNASGI_PORT, requires=("daphne",))
RUNASGI_RELOAD = Server("runasgi-reload", _runasgi(), _RUNASGI_PORT, requires=("daphne",))
# lifespan_signals' runserver: runasgi's banner and exit codes. Daphne's and Django's runserver do
# not report the port they bound (reports_port None: the harness looks at the sockets).
RUNSERVER = Server("runserver", _runserver(), _RUNASGI_PORT, requires=("daphne",))
_DAPHNE_PORT = re.compile(r"Listening on TCP address 127\.0\.0\.1:(\d+)")
# Daphne's own command line (no lifespan): for the benchmarks.
DAPHNE = Server("daphne", _daphne("daphne"), _DAPHNE_PORT, requires=("daphne",))
# lifespan-daphne: Daphne's command line with the lifespan; exits 0 after SIGTERM, 1 on failure.
LIFESPAN_DAPHNE = Server(
    "lifespan-daphne", _daphne("lifespan_signals.daphne"), _DAPHNE_PORT, requires=("daphne",)
)
# bench.upstream, the loopback service the clients' views call.
UPSTREAM = Server(
    "upstream",
    lambda app, options: [PYTHON, "-m", "bench.upstream", "0"],
    re.compile(r"Listening on 127\.0\.0\.1:(\d+)"),
)


# gunicorn's threaded WSGI worker (32 threads, one process): what the benchmarks compare with.
def _gthread(app: str, options: Sequence[str]) -> list[str]:
    return [PYTHON, "-m", "gunicorn", "-k", "gthread", "--threads", "32", "-w", "1",
            "-b", "127.0.0.1:0", "--no-control-socket", *options, app]  # fmt: skip


GUNICORN_GTHREAD = Server(
    "gunicorn-gthread",
    _gthread,
    re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)"),
    requires=("gunicorn",),
)
# The loopback upstream of bench.one_hop's p12: each answer 10 ms after its request.
UPSTREAM_10MS = Server(
    "upstream-10ms",
    lambda app, options: [PYTHON, "-m", "bench.upstream", "0", "0.010"],
    re.compile(r"Listening on 127\.0\.0\.1:(\d+)"),
)

SERVERS = {
    server.name: server
    for server in (
        UVICORN,
        UVICORN_AUTO,
        UVICORN_WORKERS,
        HYPERCORN,
        GRANIAN,
        GUNICORN,
        RUNASGI,
        RUNASGI_RELOAD,
        RUNSERVER,
        DAPHNE,
        LIFESPAN_DAPHNE,
        UPSTREAM,
    )
}
