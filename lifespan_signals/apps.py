"""App config: registers the system checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks

__all__ = ["LifespanSignalsConfig"]


class LifespanSignalsConfig(AppConfig):
    name = "lifespan_signals"
    verbose_name = "Lifespan signals"

    def ready(self) -> None:
        from lifespan_signals.checks import (
            check_asgi_application,
            check_channel_layers,
            check_clients,
            check_middleware,
            check_one_hop,
            check_request_threads,
            check_runserver,
            check_settings,
        )

        checks.register(check_settings)
        checks.register(check_middleware)
        checks.register(check_asgi_application)
        checks.register(check_clients)
        checks.register(check_request_threads)
        checks.register(check_one_hop)
        checks.register(check_runserver)
        checks.register(check_channel_layers)
