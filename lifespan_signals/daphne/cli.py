"""``lifespan-daphne`` (``python -m lifespan_signals.daphne``): Daphne's CLI, with the lifespan.

Every option ``daphne --help`` lists, with the same names and meanings (this is Daphne's own
``CommandLineInterface``, so new Daphne options arrive by themselves), plus ``--graceful-timeout``.
The application runs its ASGI lifespan: startup before listening (a failure exits 1 without
serving), a copy of the state in every HTTP and WebSocket scope, and on SIGTERM or SIGINT the
drain of ``runasgi`` (WebSockets closed with 1012, in-flight requests finish within the graceful
timeout), then shutdown, exit 0. An application that does not speak lifespan (Django's own
``get_asgi_application()``) is wrapped in :class:`lifespan_signals.asgi.LifespanWrapper`.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Sequence
from typing import Any

from daphne.cli import CommandLineInterface
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from lifespan_signals.asgi import with_lifespan
from lifespan_signals.daphne.options import add_lifespan_argument, seconds
from lifespan_signals.daphne.server import DEFAULT_BACKSTOPS, LifespanServer
from lifespan_signals.lifespan.driver import LifespanFailed
from lifespan_signals.lifespan.host import settings_backstops

__all__ = ["LifespanCommandLineInterface", "main"]

logger = logging.getLogger(__name__)


class LifespanCommandLineInterface(CommandLineInterface):  # type: ignore[misc]  # daphne is untyped
    """Daphne's command line, serving through ``lifespan_signals.daphne.server.LifespanServer``.

    A subclass may set ``server_class``, as with Daphne's own: a subclass of ``LifespanServer``
    gets this command line's lifespan options too, any other class only Daphne's.
    """

    description = "Django HTTP/WebSocket server (Daphne) running the ASGI lifespan"
    server_class: Any = LifespanServer

    def __init__(self) -> None:
        super().__init__()
        self.parser.prog = "lifespan-daphne"
        self.parser.add_argument(
            "--graceful-timeout",
            type=seconds,
            default=5.0,
            metavar="SECONDS",
            help="On SIGTERM or SIGINT, seconds in-flight requests and closed WebSockets' "
            "consumers get to finish before lifespan shutdown runs (default: 5; inf: no limit)",
        )
        add_lifespan_argument(self.parser)

    def load_asgi_app(self, asgi_app_path: str) -> Any:
        application = super().load_asgi_app(asgi_app_path)
        if self._lifespan != "off":
            application, wrapped = with_lifespan(application)
            if wrapped:
                logger.warning(
                    "%s does not speak the ASGI lifespan protocol; lifespan-daphne wraps it in "
                    "lifespan_signals.asgi.LifespanWrapper so asgi_startup/asgi_shutdown still "
                    "run.",
                    asgi_app_path,
                )
        # The class's own (a subclass's, say), with this run's options once the app is loaded.
        server_class = type(self).server_class
        if isinstance(server_class, type) and issubclass(server_class, LifespanServer):
            timeouts = settings_backstops() if settings.configured else DEFAULT_BACKSTOPS
            self.server_class = functools.partial(
                server_class,
                graceful_timeout=self._graceful_timeout,
                lifespan=self._lifespan,
                lifespan_timeouts=timeouts,
            )
        return application

    def run(self, args: Sequence[str]) -> None:
        parsed = self.parser.parse_args(args)
        self._graceful_timeout, self._lifespan = parsed.graceful_timeout, parsed.lifespan
        try:
            super().run(args)
            if isinstance(self.server, LifespanServer):  # not a subclass's own server_class
                self.server.exit_if_abandoned(0)
        except ImproperlyConfigured as exc:  # a lifespan_signals setting, say
            sys.exit(f"Error: {exc}")
        except LifespanFailed as exc:
            sys.exit(exc.explain("Lifespan startup failed; not serving."))
        except SystemExit as exc:
            # Daphne exits 1, silently, when the server did not start: say why when an endpoint
            # could not listen; a stop asked for during lifespan startup is a clean stop.
            server = self.server
            listen_failure = getattr(server, "listen_failure", None)  # a LifespanServer's
            if listen_failure is not None:
                sys.exit(f"Error: {listen_failure}")
            if not (exc.code == 1 and server is not None and server.abort_start):
                raise


def main() -> None:
    """The ``lifespan-daphne`` console script."""
    LifespanCommandLineInterface.entrypoint()
