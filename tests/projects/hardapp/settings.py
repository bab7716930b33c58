"""The server-test project plus ``hardapp``: receivers set by the environment (tests/settings)."""

from __future__ import annotations

from tests.projects.serverapp.settings import *  # noqa: F403
from tests.projects.serverapp.settings import INSTALLED_APPS
from tests.settings import env, parse_timeout

INSTALLED_APPS = [*INSTALLED_APPS, "tests.projects.hardapp"]
ASGI_APPLICATION = (
    env("LIFESPAN_TEST_ASGI_APPLICATION") or "tests.projects.serverapp.asgi.application"
)
if (_startup := env("LIFESPAN_SIGNALS_STARTUP_TIMEOUT")) is not None:
    LIFESPAN_SIGNALS_STARTUP_TIMEOUT = parse_timeout(_startup)
ROOT_URLCONF = "tests.projects.hardapp.urls"
