"""A project whose sync middleware, sync view and sync receiver record the thread they run in.

The environment (``LIFESPAN_TEST_REQUEST_THREADS``, ``LIFESPAN_TEST_DATABASE``) is described in
``tests/settings.py``.
"""

from tests.settings import *  # noqa: F403
from tests.settings import env

INSTALLED_APPS = ["lifespan_signals", "tests.projects.threadapp"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "lifespan_signals.middleware.LifespanStateMiddleware",
    "tests.projects.threadapp.views.ThreadMiddleware",  # sync only
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "tests.projects.threadapp.urls"
ASGI_APPLICATION = "tests.projects.threadapp.asgi.application"
_threads = env("LIFESPAN_TEST_REQUEST_THREADS")
LIFESPAN_SIGNALS_REQUEST_THREADS = int(_threads) if _threads else None

DATABASES: dict[str, dict[str, object]] = {}
if _database := env("LIFESPAN_TEST_DATABASE"):
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "USER": "postgres",
        "HOST": _database,
        "CONN_MAX_AGE": 60,
    }
