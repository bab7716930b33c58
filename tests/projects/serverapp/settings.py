"""Settings for the project the server tests run under real ASGI servers."""

SECRET_KEY = "lifespan-signals-server-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
DATABASES: dict[str, dict[str, str]] = {}
INSTALLED_APPS = ["lifespan_signals", "tests.projects.serverapp"]
MIDDLEWARE = ["lifespan_signals.middleware.LifespanStateMiddleware"]
ROOT_URLCONF = "tests.projects.serverapp.urls"
USE_TZ = True

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
