"""The reloader's parent process for ``runasgi``: start the serving child, restart it on a code
change, and pass stops on to it without losing one (the protocol between the two:
:mod:`lifespan_signals.daphne.reloader`).

Django's ``restart_with_reloader`` runs the child through ``subprocess.run``, which kills it
0.25 s after Ctrl+C and at once on SIGTERM, and it installs no handler until the child runs. Here
the parent handles SIGTERM, SIGHUP and SIGINT for its whole life, from before the first child
starts, and tells the child over a pipe of its own: ``STOP`` (shut down, then exit), ``FORCE`` (a
second Ctrl+C or SIGTERM: exit now). A message written while the child still imports waits in the
pipe, so no stop is lost, and a stop between two children starts no new one. The child ignores
SIGINT and SIGHUP: the terminal sends them to the whole process group, and the parent already
passes them on once. When the parent dies, the child reads the end of the pipe and shuts down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

from django.utils import autoreload

from lifespan_signals.daphne.reloader import CHILD_BOOTSTRAP, FORCE, PIPE_ENV, RESTART, STOP

__all__ = ["child_arguments", "supervise"]


def supervise() -> int:
    """Run the child until it exits for another reason than a code change; its exit status
    (0 when a stop was asked for and the child shut down)."""
    return _Supervisor().run()


def child_arguments() -> list[str]:
    """Django's command line for the child, run through :data:`CHILD_BOOTSTRAP`."""
    args = [str(arg) for arg in autoreload.get_child_arguments()]
    if args[0] != sys.executable:  # a Windows .exe entry point: run as Django would
        return args
    index = 1
    while args[index][:2] in ("-W", "-X"):  # interpreter options come first
        index += 1
    return [*args[:index], "-c", CHILD_BOOTSTRAP, *args[index:]]


# SIGHUP is POSIX only.
_STOP_SIGNALS = [
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name)
]
_PASSED_ON = [sig for sig in _STOP_SIGNALS if sig != signal.SIGTERM]


def _child_signals() -> None:
    """In the child, before it runs Python: the parent passes SIGINT and SIGHUP on, once."""
    for sig in _PASSED_ON:
        signal.signal(sig, signal.SIG_IGN)


class _Supervisor:
    def __init__(self) -> None:
        self.stopping = False
        self.pipe: int | None = None  # the write end of the pipe to the current (or next) child

    def on_signal(self, signum: int, frame: object) -> None:
        if not self.stopping:
            self.stopping = True
            self._tell(STOP)
        elif signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl+C or SIGTERM
            self._tell(FORCE)

    def _tell(self, message: bytes) -> None:
        if self.pipe is not None:
            with contextlib.suppress(OSError):  # the child is gone: nothing to tell
                os.write(self.pipe, message)

    def run(self) -> int:
        # Installed once, before the first child, and never taken back: no moment without them.
        for sig in _STOP_SIGNALS:
            # A background job's SIGINT and a nohup's SIGHUP stay ignored.
            if signal.getsignal(sig) is not signal.SIG_IGN:
                signal.signal(sig, self.on_signal)
        env = {**os.environ, autoreload.DJANGO_AUTORELOAD_ENV: "true"}
        args = child_arguments()
        while True:
            read_end, self.pipe = os.pipe()
            try:
                if self.stopping:  # asked between two children: start no new one
                    os.close(read_end)
                    return 0
                code = self._run_child(args, env, read_end)
            finally:
                pipe, self.pipe = self.pipe, None
                os.close(pipe)
            if self.stopping:
                return 0 if code in (0, RESTART) else code
            if code != RESTART:
                return code

    @staticmethod
    def _run_child(args: list[str], env: dict[str, str], read_end: int) -> int:
        try:
            os.set_inheritable(read_end, True)
            child = subprocess.Popen(
                args,
                env={**env, PIPE_ENV: str(read_end)},
                close_fds=False,  # as Django's reloader: the child keeps inherited sockets
                preexec_fn=_child_signals if os.name == "posix" else None,
            )
        finally:
            os.close(read_end)
        return child.wait()
