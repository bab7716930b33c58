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
from django.core.exceptions import ImproperlyConfigured

from lifespan_signals.asgi import LifespanWrapper, speaks_lifespan
from lifespan_signals.cli import seconds
from lifespan_signals.driver import LifespanFailed, backstop_timeouts
from lifespan_signals.reporting import LoggedReports
from lifespan_signals.server import LifespanServer

__all__ = ["LifespanCommandLineInterface", "main"]

logger = logging.getLogger("lifespan_signals.daphne")


class LifespanCommandLineInterface(CommandLineInterface):  # type: ignore[misc]  # daphne is untyped
    """Daphne's command line, serving through ``lifespan_signals.server.LifespanServer``."""

    description = "Django HTTP/WebSocket server (Daphne) running the ASGI lifespan"
    # Set to LifespanServer with this run's options once the application is loaded.
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

    def load_asgi_app(self, asgi_app_path: str) -> Any:
        application = super().load_asgi_app(asgi_app_path)
        if speaks_lifespan(application) is False:
            logger.warning(
                "%s does not speak the ASGI lifespan protocol; lifespan-daphne wraps it in "
                "lifespan_signals.asgi.LifespanWrapper so asgi_startup/asgi_shutdown still run.",
                asgi_app_path,
            )
            application = LifespanWrapper(application)
        self.server_class = functools.partial(
            LifespanServer, graceful_timeout=self._graceful_timeout, lifespan_timeouts=_timeouts()
        )
        return application

    def run(self, args: Sequence[str]) -> None:
        self._graceful_timeout = self.parser.parse_args(args).graceful_timeout
        try:
            with LoggedReports() as reports:
                super().run(args)
        except ImproperlyConfigured as exc:  # a lifespan_signals setting, say
            sys.exit(f"Error: {exc}")
        except LifespanFailed as exc:
            sys.exit(reports.explain("Lifespan startup failed; not serving.", exc.message))
        except SystemExit as exc:
            # Daphne exits 1, silently, when the server did not start: say why when an endpoint
            # could not listen; a stop asked for during lifespan startup is a clean stop.
            server = self.server
            if server is not None and server.listen_failure is not None:
                sys.exit(f"Error: {server.listen_failure}")
            if not (exc.code == 1 and server is not None and server.abort_start):
                raise


def _timeouts() -> tuple[float | None, float | None]:
    """The driver's backstops over the application's own time budgets (its settings)."""
    from django.conf import settings

    if not settings.configured:  # an application that is not Django's
        return None, None
    from lifespan_signals.conf import settings as lifespan_settings

    return backstop_timeouts(lifespan_settings.STARTUP_TIMEOUT, lifespan_settings.SHUTDOWN_TIMEOUT)


def main() -> None:
    """The ``lifespan-daphne`` console script."""
    LifespanCommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
