"""serverapp, with the malformed LIFESPAN_SIGNALS_CLIENTS of one case of ``cases.py``
(``LIFESPAN_TEST_SECRETS_CASE``), and every lifespan_signals logger at DEBUG."""

from tests.projects.secretsapp.cases import CASES
from tests.projects.serverapp.settings import *  # noqa: F403
from tests.settings import env

ASGI_APPLICATION = "tests.projects.serverapp.asgi.application"
LIFESPAN_SIGNALS_CLIENTS = CASES[env("LIFESPAN_TEST_SECRETS_CASE") or "library-auth"][0]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
    "root": {"handlers": ["stderr"], "level": "DEBUG"},
}
