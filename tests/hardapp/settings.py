"""The server-test project plus ``tests.hardapp`` (receivers set by the environment)."""

from __future__ import annotations

import os

from tests.serverapp.settings import *  # noqa: F403
from tests.serverapp.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.hardapp"]
ASGI_APPLICATION = os.environ.get("LIFESPAN_TEST_APP", "tests.serverapp.asgi.application")
if "LIFESPAN_SIGNALS_STARTUP_TIMEOUT" in os.environ:
    LIFESPAN_SIGNALS_STARTUP_TIMEOUT = float(os.environ["LIFESPAN_SIGNALS_STARTUP_TIMEOUT"])
ROOT_URLCONF = "tests.hardapp.urls"
