"""The server-test project plus ``faultapp``: receivers that hang or fail, the application, an
extra application and the lifespan timeouts, as the environment sets them (tests/settings.py)."""

from __future__ import annotations

from tests.projects.serverapp.settings import *  # noqa: F403
from tests.projects.serverapp.settings import INSTALLED_APPS, LOGGING
from tests.settings import env, parse_timeout

INSTALLED_APPS = [*INSTALLED_APPS, "tests.projects.faultapp"]
ASGI_APPLICATION = (
    env("LIFESPAN_TEST_ASGI_APPLICATION") or "tests.projects.serverapp.asgi.application"
)
if (_extra := env("LIFESPAN_TEST_EXTRA_APP")) is not None:
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
if (_startup := env("LIFESPAN_SIGNALS_STARTUP_TIMEOUT")) is not None:
    LIFESPAN_SIGNALS_STARTUP_TIMEOUT = parse_timeout(_startup)
if (_shutdown := env("LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT")) is not None:
    LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT = parse_timeout(_shutdown)
if _threads := env("LIFESPAN_TEST_REQUEST_THREADS"):
    LIFESPAN_SIGNALS_REQUEST_THREADS = int(_threads)
    LIFESPAN_SIGNALS_ONE_HOP = bool(env("LIFESPAN_TEST_ONE_HOP"))
