"""``manage.py runserver``, with the ASGI lifespan: the same server as ``runasgi``.

Django runs the ``runserver`` of the application listed first in ``INSTALLED_APPS`` that has one,
and its own when none has. List ``lifespan_signals`` before ``daphne`` and
``django.contrib.staticfiles`` and this one runs; ``lifespan_signals.W020`` says when another one
will. ``--noasgi`` (the name Daphne's runserver uses) runs Django's WSGI runserver instead.
"""

from __future__ import annotations

import os
import sys
from argparse import ArgumentParser
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.management.base import CommandError
from django.core.management.commands.runserver import Command as DjangoRunserverCommand
from django.utils import autoreload

from lifespan_signals.daphne.reloader import PIPE_ENV, parent
from lifespan_signals.management.commands.runasgi import Command as RunasgiCommand


class Command(RunasgiCommand):
    command_name = "runserver"
    help = (
        "Start a development web server that runs the ASGI lifespan: runasgi under runserver's "
        "name (Daphne, with asgi_startup before serving and asgi_shutdown on exit and before "
        "every autoreload restart). --noasgi runs Django's WSGI runserver instead."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--noasgi",
            action="store_false",
            dest="use_asgi",
            help="Run Django's WSGI runserver instead: no lifespan, so no declared clients and "
            "no asgi_startup receivers.",
        )

    def run(self, **options: Any) -> None:
        self._use_asgi = options["use_asgi"]
        if not self._use_asgi:
            DjangoRunserverCommand.run(self, **options)
        elif (
            options["use_reloader"]
            and os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) == "true"
            and PIPE_ENV not in os.environ
        ):
            # Django's own reloader started this process: runserver's first start found the
            # project broken, so Django ran its own runserver, and its reloader kills a child
            # without a shutdown. Supervise a serving child as runasgi does; when Django's
            # process goes, that child sees its pipe end and shuts down.
            sys.exit(parent.supervise())
        else:
            super().run(**options)

    def inner_run(self, *args: Any, **options: Any) -> None:
        if not self._use_asgi:
            DjangoRunserverCommand.inner_run(self, *args, **options)
            return
        autoreload.raise_last_exception()
        try:
            import daphne  # noqa: F401
        except ImportError as exc:
            raise CommandError(
                f"runserver runs the lifespan with Daphne, which is not installed ({exc}). "
                "Install it: pip install 'lifespan-signals[daphne]'. Or run Django's WSGI "
                "runserver, without the lifespan: manage.py runserver --noasgi."
            ) from exc
        super().inner_run(*args, **options)

    def get_handler(self, *args: Any, **options: Any) -> WSGIHandler:
        """The WSGI handler of ``--noasgi``, serving static files as staticfiles' runserver does."""
        handler = super().get_handler(*args, **options)
        use_static = options.get("use_static_handler", True) and apps.is_installed(
            "django.contrib.staticfiles"
        )
        if use_static and (settings.DEBUG or options.get("insecure_serving")):
            from django.contrib.staticfiles.handlers import StaticFilesHandler

            return StaticFilesHandler(handler)
        return handler
