"""Settings for the lifespan_signals demo project. Not for production use."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-sampleproject-demo-only")

DEBUG = os.environ.get("DJANGO_DEBUG", "True").lower() in {"1", "true", "yes", "on"}

ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    # First: its runserver (manage.py runserver) runs the lifespan, not staticfiles' own.
    "lifespan_signals",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "sampleproject.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "lifespan_signals.middleware.LifespanStateMiddleware",
]

ROOT_URLCONF = "sampleproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "sampleproject.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # SAMPLE_DB_PATH lets the smoke tests keep their database out of the source tree.
        "NAME": os.environ.get("SAMPLE_DB_PATH", BASE_DIR / "db.sqlite3"),
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

# One aiohttp session and one httpx client per server process, opened at ASGI startup on the
# server's event loop and closed at shutdown: views and consumers use clients["aiohttp"].
# Idle pooled connections stay open 60 s (httpx's default is 5 s, aiohttp's 15 s), so a page
# reloaded a few seconds later still reuses them: the "reused connections" column shows sharing.
LIFESPAN_SIGNALS_CLIENTS = {
    "aiohttp": {
        "BACKEND": "aiohttp.ClientSession",
        "OPTIONS": {"timeout": 10, "connector": {"keepalive_timeout": 60}},
    },
    "httpx": {
        "BACKEND": "httpx.AsyncClient",
        "OPTIONS": {"timeout": 10, "limits": {"keepalive_expiry": 60}},
    },
}

# Simulated latency (seconds) of each demo "microservice" under /services/.
SAMPLE_SERVICE_LATENCY = float(os.environ.get("SAMPLE_SERVICE_LATENCY", "0.03"))

# The live feed goes out through the channel layer: Redis when REDIS_URL is set (every process
# then shows every process's counters), Channels' in-memory layer otherwise (`make run`).
REDIS_URL = os.environ.get("REDIS_URL")
CHANNEL_LAYERS = {
    "default": (
        {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
        if REDIS_URL
        else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    )
}

# How often (seconds) each process broadcasts the shared clients' statistics to /ws/stats/.
SAMPLE_STATS_INTERVAL = float(os.environ.get("SAMPLE_STATS_INTERVAL", "1.0"))

# Show the lifespan on the console: lifespan_signals' summary lines, each declared client opened
# and closed (the DEBUG "steps" logger), and the shop's traffic counters.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "lifespan_signals": {"handlers": ["console"], "level": "INFO"},
        "lifespan_signals.lifespan.steps": {
            "handlers": ["console"],
            "level": "DEBUG",
            "propagate": False,
        },
        "sampleproject": {"handlers": ["console"], "level": "INFO"},
    },
}
