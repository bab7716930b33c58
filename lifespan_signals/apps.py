"""App config: registers the system checks (the settings' ones under a tag of their own)."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks

from lifespan_signals.conf import SETTINGS_CHECKS

__all__ = ["LifespanSignalsConfig"]


class LifespanSignalsConfig(AppConfig):
    name = "lifespan_signals"
    verbose_name = "Lifespan signals"

    def ready(self) -> None:
        from lifespan_signals.checks import (
            check_asgi_application,
            check_clients,
            check_middleware,
            check_request_threads,
            check_settings,
        )

        # The settings' checks carry a tag of their own: lifespan startup runs them (conf.py).
        checks.register(check_settings, SETTINGS_CHECKS)
        checks.register(check_clients, SETTINGS_CHECKS)
        checks.register(check_request_threads, SETTINGS_CHECKS)
        checks.register(check_middleware)
        checks.register(check_asgi_application)
