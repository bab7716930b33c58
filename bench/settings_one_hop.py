"""p7, p10-p12: a project with ``startproject``'s seven middleware, on the one-hop path.

``BENCH_ONE_HOP=0``: the same project on Django's own ``ASGIHandler`` path (``bench.one_hop``
serves it with ``django.core.asgi``), or under gunicorn (WSGI).
"""

from __future__ import annotations

import os

SECRET_KEY = "bench-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "lifespan_signals",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "bench.one_hop"
ASGI_APPLICATION = "bench.one_hop.application"
DATABASES: dict[str, dict[str, str]] = {}
SILENCED_SYSTEM_CHECKS = ["lifespan_signals.W004"]  # startproject's list, no state middleware

BENCH_UPSTREAM_URL = os.environ.get("BENCH_UPSTREAM_URL", "http://127.0.0.1:8001/")
LIFESPAN_SIGNALS_CLIENTS = {"aiohttp": {"BACKEND": "aiohttp.ClientSession"}}
LIFESPAN_SIGNALS_REQUEST_THREADS = 64  # one per connection (p12 has 64)
LIFESPAN_SIGNALS_ONE_HOP = os.environ.get("BENCH_ONE_HOP", "1") == "1"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"lifespan_signals": {"handlers": ["console"], "level": "INFO"}},
}
