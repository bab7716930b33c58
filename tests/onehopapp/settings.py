"""tests.threadapp's project (sync middleware and views checking one request per thread) on the
one-hop path, plus the views of tests.onehopapp.

``LIFESPAN_TEST_REQUEST_THREADS`` as in tests.threadapp (default here: 8);
``LIFESPAN_TEST_DATABASE``: a PostgreSQL socket directory; ``LIFESPAN_TEST_DB_POOL=1``: Django's
psycopg pool (``OPTIONS={"pool": True}``, no persistent connections) instead of CONN_MAX_AGE.
"""

import os

os.environ.setdefault("LIFESPAN_TEST_REQUEST_THREADS", "8")

from tests.threadapp.settings import *  # noqa: F403
from tests.threadapp.settings import DATABASES, MIDDLEWARE

ROOT_URLCONF = "tests.onehopapp.urls"
LIFESPAN_SIGNALS_ONE_HOP = True
MIDDLEWARE = [*MIDDLEWARE, "tests.onehopapp.views.AsyncOnlyMiddleware"]
if DATABASES and os.environ.get("LIFESPAN_TEST_DB_POOL"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {"pool": {"min_size": 1, "max_size": 2}}
