"""A project whose sync middleware, sync view and sync receiver record the thread they run in.

``LIFESPAN_TEST_REQUEST_THREADS``: the value of ``LIFESPAN_SIGNALS_REQUEST_THREADS`` (unset: None).
``LIFESPAN_TEST_DATABASE``: a PostgreSQL unix-socket directory to use as the default database.
"""

import os

SECRET_KEY = "lifespan-signals-thread-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = ["lifespan_signals", "tests.projects.threadapp"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "lifespan_signals.middleware.LifespanStateMiddleware",
    "tests.projects.threadapp.views.ThreadMiddleware",  # sync only
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "tests.projects.threadapp.urls"
ASGI_APPLICATION = "tests.projects.threadapp.asgi.application"
_threads = os.environ.get("LIFESPAN_TEST_REQUEST_THREADS")
LIFESPAN_SIGNALS_REQUEST_THREADS = int(_threads) if _threads else None

DATABASES: dict[str, dict[str, object]] = {}
if os.environ.get("LIFESPAN_TEST_DATABASE"):
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "USER": "postgres",
        "HOST": os.environ["LIFESPAN_TEST_DATABASE"],
        "CONN_MAX_AGE": 60,
    }
