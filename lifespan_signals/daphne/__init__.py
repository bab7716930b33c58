"""The Daphne wing: Daphne serving the whole ASGI lifespan.

- :mod:`.server`: ``LifespanServer``, Daphne's ``Server`` with the lifespan around serving, and
  :mod:`.drain`, how its connections finish when it stops;
- :mod:`.cli`: ``lifespan-daphne`` (``python -m lifespan_signals.daphne``), Daphne's own command
  line serving through ``LifespanServer``; :mod:`.options`, the options it shares with ``runasgi``;
- :mod:`.reloader`: ``runasgi``'s autoreloader, a parent and a child process and the protocol
  between them.

Importing this package imports nothing of Daphne or Twisted; its modules do.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LifespanCommandLineInterface", "LifespanServer", "main"]


def __getattr__(name: str) -> Any:
    if name in ("LifespanCommandLineInterface", "main"):
        from lifespan_signals.daphne import cli

        return getattr(cli, name)
    if name == "LifespanServer":
        from lifespan_signals.daphne.server import LifespanServer

        return LifespanServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
