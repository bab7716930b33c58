"""Settings for real servers serving views that use declared clients (``LIFESPAN_SIGNALS_CLIENTS``).

The environment (``LIFESPAN_TEST_CLIENTS_*``) is described in ``tests/settings.py``.
"""

from tests.settings import *  # noqa: F403
from tests.settings import env

DATABASES: dict[str, dict[str, str]] = {}
INSTALLED_APPS = ["lifespan_signals", "tests.projects.clientsapp"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests.projects.clientsapp.urls"
ASGI_APPLICATION = "tests.projects.serverapp.asgi.application"

UPSTREAM = env("LIFESPAN_TEST_CLIENTS_UPSTREAM") or "http://127.0.0.1:9"
LIFESPAN_SIGNALS_CLIENTS = {
    "httpx": {
        "BACKEND": "httpx.AsyncClient",
        "OPTIONS": {"base_url": UPSTREAM, "timeout": 10, "limits": {"keepalive_expiry": 60}},
    },
    "aiohttp": {
        "BACKEND": "aiohttp.ClientSession",
        "OPTIONS": {"base_url": UPSTREAM, "timeout": 10, "connector": {"limit": 10}},
    },
}
if env("LIFESPAN_TEST_CLIENTS_FAIL") == "1":
    LIFESPAN_SIGNALS_CLIENTS["broken"] = {
        "BACKEND": "tests.clients.backends.failing",
        "OPTIONS": {"exception": "SystemExit"},
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        "steps": {"class": "tests.projects.clientsapp.apps.StepRecorder"},
    },
    "loggers": {
        "lifespan_signals": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "lifespan_signals.lifespan.steps": {
            "handlers": ["steps"],
            "level": "DEBUG",
            "propagate": False,
        },
    },
}
