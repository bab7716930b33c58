"""Run real servers as subprocesses for tests: port 0 read back, readiness polling, clean teardown.

What to run (commands, exit codes, leak patterns) is in ``tests.harness.catalogue``; this module
runs it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from http.client import HTTPException
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from tests.harness.catalogue import APP
from tests.harness.probes import (
    REPO_ROOT,
    alive,
    events_by_pid,
    free_port,
    get_json,
    group_members,
    http_get,
    listening_ports,
    manage_py_check,
    open_connections,
    read_events,
    traceback_exceptions,
    wait_until,
)

if TYPE_CHECKING:
    from tests.harness.catalogue import Server

# Re-exported: the tests import these from here.
__all__ = [
    "REPO_ROOT",
    "ServerProcess",
    "alive",
    "events_by_pid",
    "free_port",
    "get_json",
    "group_members",
    "http_get",
    "listening_ports",
    "manage_py_check",
    "open_connections",
    "read_events",
    "traceback_exceptions",
    "wait_until",
]


class ServerProcess:
    """A server command run in its own process group, output captured to files.

    Use as a context manager: leaving it always kills the whole process group (workers
    included), also when the test failed. ``stop()`` is the graceful way out.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        settings: str,
        env: Mapping[str, str | None] | None = None,
        reports_port: re.Pattern[str] | None = None,
        stdin: int | None = None,
    ) -> None:
        self.args = list(args)
        self.reports_port = reports_port  # group 1: the port, in the server's output
        self.stdin = stdin  # a file descriptor (a listening socket, as supervisord passes)
        merged: dict[str, str | None] = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
            ),
            "DJANGO_SETTINGS_MODULE": settings,
            "PYTHONDEVMODE": "1",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        # None in ``env`` removes the variable (the benchmarks run without PYTHONDEVMODE).
        self.env = {name: value for name, value in merged.items() if value is not None}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._captured: dict[str, str] = {}  # the output, once the temporary files are gone

    @classmethod
    def of(
        cls,
        server: Server,
        *options: str,
        settings: str,
        app: str = APP,
        events: Path | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> ServerProcess:
        """``server`` from the catalogue on port 0, recording events to ``events`` if given."""
        recording = {"LIFESPAN_TEST_EVENTS": str(events)} if events else {}
        return cls(
            server.args(app, *options),
            settings=settings,
            env={**recording, **(env or {})},
            reports_port=server.reports_port,
        )

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> ServerProcess:
        assert self._proc is None, "already started"
        self._tmp = tempfile.TemporaryDirectory(prefix="server-")
        try:
            with open(self._path("stdout"), "wb") as out, open(self._path("stderr"), "wb") as err:
                self._proc = subprocess.Popen(
                    self.args,
                    cwd=REPO_ROOT,
                    env=self.env,
                    stdin=subprocess.DEVNULL if self.stdin is None else self.stdin,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,  # own process group: kill() reaches the workers too
                    # `make test &` and some CI runners start with SIGINT ignored, which every
                    # child would inherit: a server that ignores Ctrl+C cannot be tested on it.
                    preexec_fn=_default_sigint,
                )
        except BaseException:
            self.kill()
            raise
        return self

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def ports(self) -> list[int]:
        """Every port the server reported so far, in order (a reloader's children each bind one).

        A server that does not report the port it bound (``reports_port`` None: granian logs
        "Listening at: http://127.0.0.1:0") is looked at instead: the loopback TCP ports its
        process group listens on (Linux's /proc).
        """
        if self.reports_port is None:
            return listening_ports(self.pid)
        return [int(port) for port in self.reports_port.findall(self.output())]

    def wait_port(self, timeout: float = 20.0, count: int = 1) -> int:
        """The port of the ``count``-th report, once the server printed it."""
        return self._wait_ports(timeout, count)[count - 1]

    @property
    def base(self) -> str:
        """``http://127.0.0.1:<port>`` of the last port the server reported (waits for one)."""
        return f"http://127.0.0.1:{self._wait_ports(20.0, 1)[-1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def wait_ready(self, url: str, timeout: float = 20.0) -> None:
        """Poll ``url`` until it answers 200; fail at once, with the output, if the server exits.

        ``url`` may be a path: then it is on the last port the server reported, looked up at each
        poll (after a reloader's restart the next child reports a new one).
        """
        deadline = time.monotonic() + timeout
        while True:
            if (code := self._popen.poll()) is not None:
                raise self._error(f"exited with code {code} before {url} answered")
            try:
                full = url if "://" in url else self._last_url(url)
                # A probe the server accepted is waited for, never abandoned: hanging up on a slow
                # first answer makes Django cancel that request, and a cancelled sync middleware
                # prints "Future exception was never retrieved" (Django 6.0+ under load).
                left = max(deadline - time.monotonic(), 0.1)
                status = None if full is None else http_get(full, timeout=left)[0]
            except (OSError, HTTPException):
                status = None
            if status == 200:
                return
            if time.monotonic() > deadline:
                problem = f"did not answer {url} with 200 within {timeout} s (last: {status})"
                raise self._error(problem)
            time.sleep(0.05)

    def wait_exit(self, timeout: float = 20.0) -> int:
        """Wait for the server to exit on its own; return its exit code."""
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise self._error(f"still running after {timeout} s") from None

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the main process (not the group), if it still runs."""
        if self._popen.poll() is None:
            self._popen.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` to the main process (not the group) and wait for it to exit.

        Returns the exit code as ``Popen.returncode`` gives it: negative for death by signal.
        """
        self.send_signal(sig)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        """Kill the whole process group and clean up; safe to call more than once."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):  # the group is gone already
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        if self._tmp is not None:
            self._captured = {name: self._read(name) for name in ("stdout", "stderr")}
            self._tmp.cleanup()
            self._tmp = None

    # -- output --------------------------------------------------------------------------

    def stdout(self) -> str:
        return self._read("stdout")

    def stderr(self) -> str:
        return self._read("stderr")

    def output(self) -> str:
        """Everything the server wrote so far: stdout, then stderr."""
        return self.stdout() + self.stderr()

    # -- internals -----------------------------------------------------------------------

    def _wait_ports(self, timeout: float, count: int) -> list[int]:
        """The ports reported, once there are ``count``: the reading that had them, not another."""
        seen: list[int] = []

        def reported() -> bool:
            seen[:] = self.ports()
            return len(seen) >= count

        self._wait(reported, timeout, f"report {count} of its port")
        return seen

    def _last_url(self, path: str) -> str | None:
        ports = self.ports()
        return f"http://127.0.0.1:{ports[-1]}{path}" if ports else None

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if (code := self._popen.poll()) is not None and not predicate():
                raise self._error(f"exited with code {code} before the {what}")
            if time.monotonic() > deadline:
                raise self._error(f"did not {what} within {timeout} s")
            time.sleep(0.05)

    @property
    def _popen(self) -> subprocess.Popen[bytes]:
        assert self._proc is not None, "not started"
        return self._proc

    def _path(self, name: str) -> Path:
        assert self._tmp is not None
        return Path(self._tmp.name) / f"{name}.log"

    def _read(self, name: str) -> str:
        if self._tmp is None:
            return self._captured.get(name, "")
        return self._path(name).read_bytes().decode(errors="replace")

    def _error(self, problem: str) -> AssertionError:
        # The end of stderr first: that is where a traceback is, and reports may be cut short.
        return AssertionError(
            f"Server {' '.join(self.args)!r} {problem}.\n"
            f"{_tail('stderr', self.stderr(), 60)}\n{_tail('stdout', self.stdout(), 20)}"
        )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _tail(name: str, text: str, count: int) -> str:
    lines = text.splitlines()
    cut = f", the last {count} of {len(lines)} lines" if len(lines) > count else ""
    return "\n".join([f"--- {name}{cut} ---", *lines[-count:]])
