"""The reloader's child process for ``runasgi`` (the parent: :mod:`.parent`; the protocol between
them: :mod:`lifespan_signals.daphne.reloader`).

The child serves in Django's daemon ``django-main-thread`` while its main thread watches the
files. A stop (a message from the parent, the end of the parent's pipe when the parent died, or
SIGTERM sent to the child itself) stops the reloader's loop; ``runasgi`` then stops the server and
lifespan shutdown runs before the process exits. A second Ctrl+C or SIGTERM, passed on by the
parent, calls ``force`` at once.

The child runs the project's command line through :func:`run_child`, whose ``django.setup()``
survives an error (in ``apps.py``, or any module it imports) as ``runserver``'s does: the error is
raised again in the server thread, printed, and the reloader watches the file that failed.

The child's reloader also survives a module leaving ``sys.modules`` while it scans them: Django
lists the keys, then looks each up, and a module that fails to import in another thread meanwhile
(the server thread's lazy imports, such as httpx/httpcore trying an optional dependency while a
startup receiver creates a client) made it raise ``KeyError`` and end the process with status 1.
"""

from __future__ import annotations

import logging
import os
import runpy
import signal
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import django
from django.apps import apps
from django.core.management import get_commands
from django.utils import autoreload

from lifespan_signals.daphne.reloader import FORCE, PIPE_ENV, STOP

__all__ = ["ChildControl", "run_child", "survive_module_churn"]

logger = logging.getLogger(__name__)

# How many times a scan of the watched files is tried when modules keep leaving sys.modules.
_SCAN_ATTEMPTS = 10


class ChildControl:
    """In the reloader's child: turn the parent's messages and SIGTERM into a stop of the
    reloader's loop (``force`` for a second stop), and make the reloader survive module churn."""

    def __init__(self, force: Callable[[], None]) -> None:
        self.force = force
        self.stop_requested = threading.Event()
        self._lock = threading.Lock()
        self._reloader: autoreload.BaseReloader | None = None

    def start(self) -> None:
        # autoreload_started is sent in the main thread after Django installed its SIGTERM
        # handler, before the reloader first looks at the files.
        autoreload.autoreload_started.connect(self._take_over, weak=False, dispatch_uid=__name__)
        pipe = os.environ.get(PIPE_ENV)
        if pipe:
            threading.Thread(
                target=self._listen, args=(int(pipe),), name="runasgi-parent", daemon=True
            ).start()

    def request_stop(self) -> None:
        with self._lock:
            self.stop_requested.set()
            reloader = self._reloader
        if reloader is not None:
            reloader.stop()  # the main thread leaves the reloader's loop within its tick

    def _take_over(self, sender: autoreload.BaseReloader, **kwargs: Any) -> None:
        survive_module_churn(sender)
        # Not Django's handler, which raises SystemExit wherever the main thread is (in a
        # garbage-collector callback, it is lost); the stop runs in a thread of its own because
        # a handler must not take locks that the main thread may hold.
        signal.signal(signal.SIGTERM, lambda signum, frame: self._stop_in_thread())
        with self._lock:
            self._reloader = sender
            stop = self.stop_requested.is_set()
        if stop:  # asked before the reloader was running
            sender.stop()

    def _stop_in_thread(self) -> None:
        threading.Thread(target=self.request_stop, name="runasgi-stop", daemon=True).start()

    def _listen(self, pipe: int) -> None:
        while True:
            try:
                message = os.read(pipe, 1)
            except OSError:
                message = b""
            if message == FORCE:
                self.force()
            elif message == STOP:
                self.request_stop()
            else:  # the end of the pipe: the parent died without a word
                logger.warning("runasgi's reloader process is gone; shutting down.")
                self.request_stop()
                return


def run_child() -> None:
    """The child's entry point: the project's command line (after ``-c``), with a
    ``django.setup()`` that survives errors as ``runserver``'s does."""
    django.setup = _tolerant(django.setup)  # type: ignore[assignment]
    argv = sys.argv[1:]
    if argv[0] == "-m":
        sys.argv = argv[1:]  # run_module sets sys.argv[0] to the module's file
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        sys.path[0] = str(Path(argv[0]).resolve().parent)  # as for `python manage.py`
        runpy.run_path(argv[0], run_name="__main__")


def _tolerant(setup: Callable[[bool], None]) -> Callable[[bool], None]:
    def tolerant_setup(set_prefix: bool = True) -> None:
        try:
            autoreload.check_errors(setup)(set_prefix)
        except Exception:
            # As Django's ManagementUtility does for runserver: go on with no applications;
            # runasgi's inner_run raises the error again and the reloader watches its file.
            apps.all_models = defaultdict(dict)
            apps.app_configs = {}
            apps.apps_ready = apps.models_ready = apps.ready = True
            # The applications' commands are gone; the command this child runs is ours.
            commands = get_commands()
            commands["runasgi"] = commands["runserver"] = "lifespan_signals"

    return tolerant_setup


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
