"""Minimal settings for the package's own tests."""

from __future__ import annotations

SECRET_KEY = "lifespan-signals-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "lifespan_signals"]
MIDDLEWARE = ["lifespan_signals.middleware.LifespanStateMiddleware"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
