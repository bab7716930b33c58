"""faultapp's project, with ``LIFESPAN_TEST_APPS_ORDER`` listing applications first in
``INSTALLED_APPS``: the order picks which ``runserver`` runs (tests/daphne/test_runserver.py)."""

from __future__ import annotations

from tests.projects.faultapp.settings import *  # noqa: F403
from tests.projects.faultapp.settings import INSTALLED_APPS
from tests.settings import env

_FIRST = (env("LIFESPAN_TEST_APPS_ORDER") or "lifespan_signals").split(",")
INSTALLED_APPS = [
    *_FIRST,
    *(app for app in INSTALLED_APPS if app not in _FIRST),
    "tests.projects.runserverapp",  # static/runserverapp/hello.txt, for staticfiles
]
STATIC_URL = "/static/"
