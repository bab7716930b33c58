"""The server-test project plus ``tests.projects.faultapp``: receivers that hang or fail, set by
env.

The lifespan timeouts come from the environment when it has them
(``LIFESPAN_SIGNALS_STARTUP_TIMEOUT``, ``LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT``); ``None`` is None,
and a value that is not a number is passed on as the string it is, so that an invalid setting can
be tried under a real server. ``LIFESPAN_TEST_ASGI_APPLICATION`` replaces the application, and
``LIFESPAN_TEST_EXTRA_APP`` adds an application to ``INSTALLED_APPS``.
"""

from __future__ import annotations

import os

from tests.projects.serverapp.settings import *  # noqa: F403
from tests.projects.serverapp.settings import INSTALLED_APPS, LOGGING


def _from_env(value: str) -> float | str | None:
    if value == "None":
        return None
    try:
        return float(value)
    except ValueError:
        return value


INSTALLED_APPS = [*INSTALLED_APPS, "tests.projects.faultapp"]
ASGI_APPLICATION = os.environ.get(
    "LIFESPAN_TEST_ASGI_APPLICATION", "tests.projects.serverapp.asgi.application"
)
if "LIFESPAN_TEST_EXTRA_APP" in os.environ:
    _extra = os.environ["LIFESPAN_TEST_EXTRA_APP"]
    INSTALLED_APPS.append(_extra)
    # Django's reloader says (at DEBUG) when it first sees a file, from when on it notices changes:
    # a test that breaks and fixes the extra app waits for that line, for that app's files only.
    LOGGING = {
        **LOGGING,
        "filters": {
            "extra": {
                "()": "django.utils.log.CallbackFilter",
                "callback": lambda record: f"/{_extra}/" in record.getMessage(),
            }
        },
        "handlers": {
            **LOGGING["handlers"],
            "reloader": {"class": "logging.StreamHandler", "filters": ["extra"]},
        },
        "loggers": {
            **LOGGING["loggers"],
            "django.utils.autoreload": {"handlers": ["reloader"], "level": "DEBUG"},
        },
    }
if "LIFESPAN_SIGNALS_STARTUP_TIMEOUT" in os.environ:
    LIFESPAN_SIGNALS_STARTUP_TIMEOUT = _from_env(os.environ["LIFESPAN_SIGNALS_STARTUP_TIMEOUT"])
if "LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT" in os.environ:
    LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT = _from_env(os.environ["LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT"])
