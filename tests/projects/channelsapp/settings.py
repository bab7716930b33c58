from tests.projects.serverapp import settings as serverapp_settings

"""Settings for the Channels project the tests run in process and under real servers."""

SECRET_KEY = "lifespan-signals-channels-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "lifespan_signals",
    "tests.projects.channelsapp",
]
MIDDLEWARE = ["lifespan_signals.middleware.LifespanStateMiddleware"]
ROOT_URLCONF = "tests.projects.channelsapp.urls"
ASGI_APPLICATION = "tests.projects.channelsapp.asgi.application"
# Sessions in signed cookies: AuthMiddlewareStack works without a session table.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = serverapp_settings.LOGGING
