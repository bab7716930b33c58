"""The bench project with lifespan_signals: its handler (``bench.asgi``) and its middleware."""

from __future__ import annotations

import os

SECRET_KEY = "bench-only-not-a-secret"

DEBUG = False

ALLOWED_HOSTS = ["127.0.0.1"]

INSTALLED_APPS = ["lifespan_signals", "bench"]

MIDDLEWARE = ["lifespan_signals.middleware.LifespanStateMiddleware"]

ROOT_URLCONF = "bench.urls"

ASGI_APPLICATION = "bench.asgi.application"

DATABASES: dict[str, dict[str, str]] = {}

USE_TZ = True

# The upstream service the client views call; run.py starts one (bench/upstream.py).
BENCH_UPSTREAM_URL = os.environ.get("BENCH_UPSTREAM_URL", "http://127.0.0.1:8001/")

# The declared client of the "clients['x']" view: the same session the receiver opens.
LIFESPAN_SIGNALS_CLIENTS = {"aiohttp": {"BACKEND": "aiohttp.ClientSession"}}

# The lifespan summary lines: run.py checks that shutdown ran before the server exited.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"lifespan_signals": {"handlers": ["console"], "level": "INFO"}},
}

# Request threads (p7, p8): BENCH_REQUEST_THREADS=32 keeps one per wrk connection.
_threads = os.environ.get("BENCH_REQUEST_THREADS")
LIFESPAN_SIGNALS_REQUEST_THREADS = int(_threads) if _threads else None
