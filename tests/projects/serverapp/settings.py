"""The server-test project: receivers that open real HTTP clients at startup and close them at
shutdown (``apps.py``), under real ASGI servers."""

from tests.settings import *  # noqa: F403

DATABASES: dict[str, dict[str, str]] = {}
INSTALLED_APPS = ["lifespan_signals", "tests.projects.serverapp"]
ROOT_URLCONF = "tests.projects.serverapp.urls"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
    },
    "loggers": {
        "lifespan_signals": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}
