"""Settings for the Channels project the tests run in process and under real servers."""

from tests.projects.serverapp import settings as serverapp_settings
from tests.settings import *  # noqa: F403

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "lifespan_signals",
    "tests.projects.channelsapp",
]
ROOT_URLCONF = "tests.projects.channelsapp.urls"
ASGI_APPLICATION = "tests.projects.channelsapp.asgi.application"
# Sessions in signed cookies: AuthMiddlewareStack works without a session table.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"

LOGGING = serverapp_settings.LOGGING
