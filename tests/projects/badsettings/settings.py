"""serverapp, with one bad ``LIFESPAN_SIGNALS_*`` setting of ``BAD``, chosen by
``LIFESPAN_TEST_BAD_SETTING``: each is refused by ``manage.py check``, and so must be by lifespan
startup on every server."""

from tests.projects.serverapp.settings import *  # noqa: F403
from tests.settings import env

ASGI_APPLICATION = "tests.projects.serverapp.asgi.application"

# name -> (setting, value, the check id that refuses it, the start of its message)
BAD = {
    "startup-timeout": (
        "LIFESPAN_SIGNALS_STARTUP_TIMEOUT",
        "5",
        "E001",
        "LIFESPAN_SIGNALS_STARTUP_TIMEOUT should be a positive number of seconds or None, not '5'.",
    ),
    "shutdown-timeout": (
        "LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT",
        -1,
        "E002",
        "LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT should be a positive number of seconds or None, not -1.",
    ),
    "backend": (
        "LIFESPAN_SIGNALS_CLIENTS",
        {"x": {"BACKEND": "os.path"}},
        "E013",
        "LIFESPAN_SIGNALS_CLIENTS['x']['BACKEND'] should name a class or factory, not a module.",
    ),
    "option": (
        "LIFESPAN_SIGNALS_CLIENTS",
        {"x": {"BACKEND": "httpx.AsyncClient", "OPTIONS": {"timeout": "10"}}},
        "E015",
        "LIFESPAN_SIGNALS_CLIENTS['x']['OPTIONS']['timeout'] should be convertible for "
        "httpx.AsyncClient, but a str is not",
    ),
    "request-threads": (
        "LIFESPAN_SIGNALS_REQUEST_THREADS",
        "4",
        "E030",
        "LIFESPAN_SIGNALS_REQUEST_THREADS should be a whole number of threads (at least 1)",
    ),
    "one-hop": (
        "LIFESPAN_SIGNALS_ONE_HOP",
        "yes",
        "E032",
        "LIFESPAN_SIGNALS_ONE_HOP should be True or False, not 'yes'.",
    ),
}

if (case := env("LIFESPAN_TEST_BAD_SETTING")) is not None:
    _name, _value, _, _ = BAD[case]
    globals()[_name] = _value
