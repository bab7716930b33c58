"""App config: registers the system checks (the settings' ones under a tag of their own)."""

from __future__ import annotations

import re

from django.apps import AppConfig
from django.core import checks

from lifespan_signals.conf import CLIENTS_SETTING, SETTINGS_CHECKS

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

        # All carry the tag "lifespan_signals" (manage.py check --tag lifespan_signals); the
        # settings' checks one of their own too: lifespan startup runs them (conf.py).
        for check in (check_settings, check_clients, check_request_threads, check_one_hop):
            checks.register(check, "lifespan_signals", SETTINGS_CHECKS)
        for check in (
            check_middleware,
            check_asgi_application,
            check_runserver,
            check_channel_layers,
        ):
            checks.register(check, "lifespan_signals")
        _hide_clients_on_error_pages()


def _hide_clients_on_error_pages() -> None:
    """Show ``LIFESPAN_SIGNALS_CLIENTS`` as ``********`` on Django's DEBUG error pages.

    Its options hold credentials under keys that Django's settings filter does not take for
    sensitive (``base_url`` and ``proxy`` with a password, ``cookies``, ``params``). The filter
    hides a setting whose name matches its ``hidden_settings``: the whole setting is added to
    the pattern of Django's filter, so that every filter that keeps that pattern hides it."""
    from django.views.debug import SafeExceptionReporterFilter

    hidden = SafeExceptionReporterFilter.hidden_settings
    if hidden.search(CLIENTS_SETTING):
        return
    SafeExceptionReporterFilter.hidden_settings = re.compile(
        f"{hidden.pattern}|^{CLIENTS_SETTING}$", hidden.flags
    )
