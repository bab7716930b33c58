"""The server-test project plus ``tests.faultapp``: receivers that hang or fail, set by env.

The lifespan timeouts come from the environment when it has them
(``LIFESPAN_SIGNALS_STARTUP_TIMEOUT``, ``LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT``); a value that is not
a number is passed on as the string it is, so that an invalid setting can be tried under a real
server.
"""

from __future__ import annotations

import os

from tests.serverapp.settings import *  # noqa: F403
from tests.serverapp.settings import INSTALLED_APPS


def _from_env(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


INSTALLED_APPS = [*INSTALLED_APPS, "tests.faultapp"]
ASGI_APPLICATION = "tests.serverapp.asgi.application"
if "LIFESPAN_SIGNALS_STARTUP_TIMEOUT" in os.environ:
    LIFESPAN_SIGNALS_STARTUP_TIMEOUT = _from_env(os.environ["LIFESPAN_SIGNALS_STARTUP_TIMEOUT"])
if "LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT" in os.environ:
    LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT = _from_env(os.environ["LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT"])
