"""``manage.py runasgi``: runserver's experience, served by Daphne, with the whole ASGI lifespan."""

from __future__ import annotations

import logging
import os
import sys
import threading
from argparse import ArgumentParser
from datetime import datetime
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.core.management.commands.runserver import Command as RunserverCommand
from django.utils import autoreload

from lifespan_signals.asgi import project_application
from lifespan_signals.commands import command_errors
from lifespan_signals.daphne.options import (
    TIMEOUT_OPTIONS,
    add_lifespan_argument,
    add_timeout_arguments,
    parse_negative_values,
    port_problem,
)
from lifespan_signals.daphne.reloader import parent
from lifespan_signals.daphne.reloader.child import ChildControl
from lifespan_signals.lifespan.driver import LifespanFailed
from lifespan_signals.lifespan.host import settings_backstops


class Command(RunserverCommand):
    help = (
        "Serve the project with Daphne, running the ASGI lifespan (asgi_startup before serving, "
        "asgi_shutdown on exit and before every autoreload restart)."
    )

    command_name = (
        "runasgi"  # in messages (lifespan_signals' runserver is this command by another name)
    )
    # Set by runserver's handle() from addrport.
    addr: str
    port: str
    use_ipv6: bool  # also set by the bracket form, [::1]:8000
    _raw_ipv6: bool
    _server: Any = None

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        return parse_negative_values(parser, TIMEOUT_OPTIONS)

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("addrport", nargs="?", help="Optional port number, or ipaddr:port.")
        parser.add_argument(
            "--ipv6", "-6", action="store_true", dest="use_ipv6", help="Use an IPv6 address."
        )
        parser.add_argument(
            "--noreload",
            action="store_false",
            dest="use_reloader",
            help="Do NOT use the auto-reloader.",
        )
        parser.add_argument(
            "--nothreading",
            action="store_false",
            dest="use_threading",
            help="Accepted for runserver's sake and ignored: Daphne serves every connection "
            "on one event loop.",
        )
        add_timeout_arguments(parser)
        add_lifespan_argument(parser)
        # Always there, so that a script's options still parse while the project is broken
        # (the applications, staticfiles among them, are not loaded then).
        parser.add_argument(
            "--nostatic",
            action="store_false",
            dest="use_static_handler",
            help="Do NOT serve static files at STATIC_URL (with django.contrib.staticfiles).",
        )
        parser.add_argument(
            "--insecure",
            action="store_true",
            dest="insecure_serving",
            help="Serve static files even if DEBUG is False (with django.contrib.staticfiles).",
        )

    def run(self, **options: Any) -> None:
        self._lock = threading.Lock()
        self._stopping = False  # no server starts any more
        self._stopped = threading.Event()
        if not options["use_reloader"]:
            self.inner_run(None, **options)
        elif os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) == "true":
            # The reloader's child: the server runs in a daemon thread that dies with the main
            # thread. Whatever ends the main thread (a code change, a stop), stop the server
            # first, so lifespan shutdown runs before this process exits.
            ChildControl(force=self._force_exit).start()
            code = 0
            try:
                autoreload.run_with_reloader(self.inner_run, **options)
            except SystemExit as exc:  # a code change (3), or a stop
                code = exc.code if isinstance(exc.code, int) else 1
                raise
            finally:
                self._stop_server()
                if self._server is not None:  # the next child serves without waiting for it
                    self._server.exit_if_abandoned(code)
        else:
            sys.exit(parent.supervise())

    def inner_run(self, *args: Any, **options: Any) -> None:
        autoreload.raise_last_exception()
        try:
            from lifespan_signals.daphne.server import LifespanServer
        except ImportError as exc:
            raise CommandError(
                f"runasgi serves with Daphne, which is not installed ({exc}). "
                "Install it: pip install 'lifespan-signals[daphne]'."
            ) from exc
        if not options["skip_checks"]:
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
        self.check_migrations()
        _log_lifespan_to_console()
        with command_errors():
            timeouts = settings_backstops()
        # Before startup: receivers must not open clients for a server that cannot listen.
        problem = port_problem(self.addr, int(self.port), ipv6=self.use_ipv6)
        if problem:
            self._exit_with_error(problem)
        server = LifespanServer(
            self.get_application(options),
            endpoints=[self._endpoint()],
            signal_handlers=not options["use_reloader"],
            action_logger=self.log_action,
            http_timeout=options["http_timeout"],
            websocket_handshake_timeout=options["websocket_handshake_timeout"] or 0,
            root_path=getattr(settings, "FORCE_SCRIPT_NAME", "") or "",
            graceful_timeout=options["graceful_timeout"],
            lifespan=options["lifespan"],
            lifespan_timeouts=timeouts,
            on_listening=self._banner,
        )
        self._run_server(server, options["use_reloader"])

    def _run_server(self, server: Any, use_reloader: bool) -> None:
        with self._lock:
            if self._stopping:  # stopped before it started: nothing to shut down
                return
            self._server = server
        try:
            server.run()
        except LifespanFailed as exc:
            if not use_reloader:
                raise CommandError("Lifespan startup failed (see above); not serving.") from exc
            self.stderr.write(
                "Lifespan startup failed (see above); not serving. "
                "Watching for file changes: save a fix to try again."
            )
            return
        finally:
            self._stopped.set()
        if server.listen_failure:  # taken since port_problem() looked
            self._exit_with_error(server.listen_failure)
        if not use_reloader:  # with it, the main thread exits (see run())
            server.exit_if_abandoned(0)

    def _exit_with_error(self, problem: str) -> None:
        self.stderr.write(f"Error: {problem}")
        self.stderr.flush()
        self.stdout.flush()
        os._exit(1)  # as runserver does: sys.exit() would only end this thread

    def _stop_server(self) -> None:
        with self._lock:
            self._stopping = True
            server = self._server
        if server is None:
            return
        server.stop_from_thread()  # during startup: startup finishes, then shutdown runs
        # No time limit: a second Ctrl+C (_force_exit) ends a shutdown that hangs.
        self._stopped.wait()

    def _force_exit(self) -> None:
        server = self._server
        if server is not None:
            server.force_exit()
        os._exit(1)

    def get_application(self, options: dict[str, Any]) -> Any:
        found = project_application(fallback=False)
        if found is None:
            raise CommandError(
                f"{self.command_name} found no ASGI application. Set ASGI_APPLICATION to its "
                "dotted path (e.g. 'mysite.asgi.application'), or add an asgi.py defining "
                f"'application' next to the settings module {settings.SETTINGS_MODULE!r}."
            )
        if options.get("lifespan") != "off" and (notice := found.describe(self.command_name)):
            self.stdout.write(notice)
        application = found.application
        use_static = options.get("use_static_handler", True) and apps.is_installed(
            "django.contrib.staticfiles"
        )
        if use_static and (settings.DEBUG or options.get("insecure_serving")):
            from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

            application = ASGIStaticFilesHandler(application)
        return application

    def _endpoint(self) -> str:
        from daphne.endpoints import build_endpoint_description_strings

        endpoints: list[str] = build_endpoint_description_strings(
            host=self.addr, port=int(self.port)
        )
        return endpoints[0]

    def _banner(self, addresses: list[tuple[str, int]]) -> None:
        import daphne

        port = addresses[0][1] if addresses else self.port
        addr = f"[{self.addr}]" if self._raw_ipv6 else "0.0.0.0" if self.addr == "0" else self.addr
        quit_command = "CTRL-BREAK" if sys.platform == "win32" else "CONTROL-C"
        self.stdout.write(
            f"{datetime.now().strftime('%B %d, %Y - %X')}\n"
            f"Django version {self.get_version()}, using settings {settings.SETTINGS_MODULE!r}\n"
            f"Starting ASGI/Daphne version {daphne.__version__} server with lifespan "
            f"at {self.protocol}://{addr}:{port}/\n"
            f"Quit the server with {quit_command}."
        )

    def log_action(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        from daphne.management.commands.runserver import Command as DaphneRunserver
        from daphne.management.commands.runserver import logger

        # Daphne styles each request's line before logging drops it; skip that when nothing
        # prints it (logging's last resort handler prints only warnings and errors).
        status = details.get("status", 200) if protocol == "http" else 200
        level = logging.INFO if 100 <= status < 400 else logging.WARNING
        level = logging.ERROR if status >= 500 or status < 100 else level
        if logger.isEnabledFor(level) and (level >= logging.WARNING or logger.hasHandlers()):
            DaphneRunserver.log_action(self, protocol, action, details)


def _log_lifespan_to_console() -> None:
    """Show lifespan_signals' INFO lines, as runserver shows requests, unless logging is set up."""
    logger = logging.getLogger("lifespan_signals")
    if not logger.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
