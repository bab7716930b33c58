"""threadapp's project (sync middleware and views checking one request per thread) on the
one-hop path, plus the views of onehopapp. The environment: see tests/settings.py."""

import os

os.environ.setdefault("LIFESPAN_TEST_REQUEST_THREADS", "8")

from tests.projects.threadapp.settings import *  # noqa: F403
from tests.projects.threadapp.settings import DATABASES, MIDDLEWARE
from tests.settings import env

ROOT_URLCONF = "tests.projects.onehopapp.urls"
LIFESPAN_SIGNALS_ONE_HOP = True
MIDDLEWARE = [*MIDDLEWARE, "tests.projects.onehopapp.views.AsyncOnlyMiddleware"]
if DATABASES and env("LIFESPAN_TEST_DB_POOL"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {"pool": {"min_size": 1, "max_size": 2}}
