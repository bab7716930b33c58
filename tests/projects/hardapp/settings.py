"""The server-test project plus ``tests.projects.hardapp`` (receivers set by the environment)."""

from __future__ import annotations

import os

from tests.projects.serverapp.settings import *  # noqa: F403
from tests.projects.serverapp.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.projects.hardapp"]
ASGI_APPLICATION = os.environ.get("LIFESPAN_TEST_APP", "tests.projects.serverapp.asgi.application")
if "LIFESPAN_SIGNALS_STARTUP_TIMEOUT" in os.environ:
    LIFESPAN_SIGNALS_STARTUP_TIMEOUT = float(os.environ["LIFESPAN_SIGNALS_STARTUP_TIMEOUT"])
ROOT_URLCONF = "tests.projects.hardapp.urls"
