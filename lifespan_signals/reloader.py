"""Autoreload glue for ``runasgi``: let the old process shut down before the new one starts.

Django's reloader runs the server in a child process through ``subprocess.run``, which kills the
child 0.25 s after Ctrl+C and at once on SIGTERM, and in the child the server thread is a daemon
that dies with the main thread. So the parent here passes signals on and waits, and the child's
first signal stops the reloader's loop (after which ``runasgi`` stops the server and runs lifespan
shutdown) while later signals are ignored.

The child's reloader also survives a module leaving ``sys.modules`` while it scans them: Django
lists the keys, then looks each up, and a module that fails to import in another thread meanwhile
(the server thread's lazy imports, such as httpx/httpcore trying an optional dependency while a
startup receiver creates a client) made it raise ``KeyError`` and end the process with status 1.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.utils import autoreload

__all__ = ["exit_once_on_signals", "supervise", "survive_module_churn"]

# How many times a scan of the watched files is tried when modules keep leaving sys.modules.
_SCAN_ATTEMPTS = 10


def exit_once_on_signals() -> None:
    """In the reloader's child: once Django's reloader starts, take over SIGTERM and SIGINT, and
    let the reloader survive modules leaving ``sys.modules``."""
    # autoreload_started is sent in the main thread after Django installed its SIGTERM handler,
    # before the reloader first looks at the files.
    autoreload.autoreload_started.connect(_take_over, dispatch_uid=__name__)


def survive_module_churn(reloader: autoreload.BaseReloader) -> None:
    """Make ``reloader`` scan again when a module leaves ``sys.modules`` during its scan."""
    scan = reloader.watched_files

    def watched_files(include_globs: bool = True) -> Iterator[Path]:
        for attempt in range(1, _SCAN_ATTEMPTS + 1):
            try:
                files = list(scan(include_globs))
            except KeyError:  # a module that was listed is gone: see the module docstring
                if attempt == _SCAN_ATTEMPTS:
                    raise
            else:
                break
        yield from files

    reloader.watched_files = watched_files  # type: ignore[method-assign]  # this instance's


def _take_over(sender: autoreload.BaseReloader, **kwargs: Any) -> None:
    """In the reloader's child: make the reloader survive module churn, and replace Django's
    SIGTERM handler (and Python's SIGINT one)."""
    survive_module_churn(sender)

    def stop(signum: int, frame: object) -> None:
        # Ctrl+C reaches the child twice (from the terminal and from the supervising parent): a
        # second signal must not cut the shutdown short. And raising here (as Django's handler
        # does) is lost when the main thread happens to be in a garbage-collector callback: stop
        # the reloader's loop instead; runasgi's run() then stops the server.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sender.stop()

    signal.signal(signal.SIGTERM, stop)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a background job stays immune
        signal.signal(signal.SIGINT, stop)


def supervise() -> int:
    """Django's ``restart_with_reloader``, except that SIGTERM and SIGINT are passed to the child
    and waited for (``subprocess.run`` kills it after 0.25 s), so its lifespan shutdown runs."""
    env = {**os.environ, autoreload.DJANGO_AUTORELOAD_ENV: "true"}
    args = autoreload.get_child_arguments()
    while True:
        child = subprocess.Popen(args, env=env, close_fds=False)

        def forward(signum: int, frame: object, child: subprocess.Popen[bytes] = child) -> None:
            child.send_signal(signum)

        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            code = child.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if code != 3:
            return code
