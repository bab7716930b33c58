"""``runasgi``'s reloader: a parent process (:mod:`.parent`) that starts the serving child
(:mod:`.child`), restarts it on a code change, and passes stops on to it over a pipe of its own.

This module is the protocol between the two: the parent writes one byte, ``STOP`` (shut down,
then exit) or ``FORCE`` (a second Ctrl+C or SIGTERM: exit now); the end of the pipe (the parent
died) means stop too. The child finds its end of the pipe in the environment variable
``PIPE_ENV``. An exit status of ``RESTART`` (3, Django's) asks the parent for a new child.
"""

from __future__ import annotations

__all__ = ["CHILD_BOOTSTRAP", "FORCE", "PIPE_ENV", "RESTART", "STOP"]

STOP = b"s"
FORCE = b"f"
RESTART = 3
# The environment variable that gives the child the file descriptor of its end of the pipe.
PIPE_ENV = "_LIFESPAN_SIGNALS_RUNASGI_PIPE"  # not a setting: the fd of the parent's pipe
# What the child runs first (``python -c``), before the project's command line: it lets the
# child survive an error in django.setup(), as runserver's child does.
CHILD_BOOTSTRAP = "from lifespan_signals.daphne.reloader.child import run_child; run_child()"
