"""The base settings of the tests, and the environment contract of the test projects.

The in-process tests run with these settings (pyproject.toml's ``DJANGO_SETTINGS_MODULE``). Each
project in ``tests/projects/`` starts with ``from tests.settings import *`` (or with the settings
of ``serverapp``, which it extends) and overrides only what it needs.

The tests set the variables below for the servers and commands they start, each test its own;
the projects read them with ``env()``, which refuses a name that is not listed here. Unset means
off, or the default given.

``LIFESPAN_TEST_EVENTS``
    The JSON-lines file the projects' receivers record what happens to (``tests.projects.events``;
    the harness's ``events`` fixture names one per test). Unset: nothing is recorded.
``LIFESPAN_TEST_ASGI_APPLICATION``
    faultapp, hardapp: the ``ASGI_APPLICATION`` to serve (default: serverapp's).
``LIFESPAN_TEST_FAIL_STARTUP=1``
    serverapp (and the projects extending it): a startup receiver that fails.
``LIFESPAN_TEST_HANG``
    faultapp: ``startup`` or ``shutdown`` connects the async receiver ``hang`` to that signal;
    ``startup-sync`` / ``shutdown-sync`` the sync ``hang_sync``. Both record ``hang-start``.
``LIFESPAN_TEST_HANG_SECONDS``
    faultapp: how long ``hang`` and ``hang_sync`` wait (default 3600).
``LIFESPAN_TEST_FAIL_SHUTDOWN=1``
    faultapp: an async shutdown receiver that fails, and a sync one that records
    ``sync-shutdown`` (so both kinds of healthy receivers are around the failing one).
``LIFESPAN_TEST_BACKGROUND``
    faultapp: ``1``: a startup receiver starts a task (``poller``) and leaves it running; it
    records ``bg-start``, and ``bg-finally`` when it ends. ``stubborn``: the task also records
    ``bg-refuses`` when cancelled and goes on sleeping.
``LIFESPAN_TEST_WATCH``
    faultapp: a file the autoreloader watches besides the modules, so a test can trigger restarts
    without touching a file that other tests watch too; the reloader then looks five times a
    second, and records ``file-changed`` when it notices a change.
``LIFESPAN_TEST_EXTRA_APP``
    faultapp: an application added to ``INSTALLED_APPS``; the autoreloader logs (at DEBUG) when it
    first sees one of its files.
``LIFESPAN_TEST_APPS_ORDER``
    runserverapp: a comma-separated list of applications (``lifespan_signals``, ``daphne``,
    ``django.contrib.staticfiles``) listed first in ``INSTALLED_APPS``, in that order, before
    faultapp's (default: ``lifespan_signals``). The order picks the ``runserver`` command.
``LIFESPAN_TEST_RAISE=<phase>:<kind>:<name>``
    hardapp: a ``kind`` (``receiver`` or ``resource``) that raises ``name`` in ``phase``
    (``startup`` or ``shutdown``): ``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit``,
    ``CancelledError`` or ``Custom`` (a ``BaseException`` of our own). A shutdown receiver that
    raises is connected first, so healthy ones follow.
``LIFESPAN_TEST_BLOCK=<seconds>``
    hardapp: an async startup receiver that blocks the event loop that long.
``LIFESPAN_TEST_NESTED=1``
    hardapp: a nested function connected in ``ready()`` with no reference kept.
``LIFESPAN_TEST_CLIENTS_UPSTREAM``
    clientsapp: the URL its declared clients call (default ``http://127.0.0.1:9``).
``LIFESPAN_TEST_TASKS_DATABASE``
    tasksapp: the SQLite file its task queue lives in (tasksapp also reads
    ``LIFESPAN_TEST_CLIENTS_UPSTREAM``, the URL its task calls).
``LIFESPAN_TEST_CLIENTS_FAIL=1``
    clientsapp: one more declared client, which fails to open.
``LIFESPAN_TEST_SECRETS_CASE``
    secretsapp: which malformed ``LIFESPAN_SIGNALS_CLIENTS`` of ``secretsapp/cases.py`` to
    declare (default ``library-auth``).
``LIFESPAN_TEST_BAD_SETTING``
    badsettings: which bad ``LIFESPAN_SIGNALS_*`` setting of its ``BAD`` to set (unset: none).
``LIFESPAN_TEST_REQUEST_THREADS``
    threadapp, faultapp: the value of ``LIFESPAN_SIGNALS_REQUEST_THREADS`` (unset: None).
``LIFESPAN_TEST_ONE_HOP=1``
    faultapp: ``LIFESPAN_SIGNALS_ONE_HOP = True`` (with ``LIFESPAN_TEST_REQUEST_THREADS``).
``LIFESPAN_TEST_DATABASE``
    threadapp, onehopapp: a PostgreSQL unix-socket directory to use as the default database.
``LIFESPAN_TEST_DB_POOL=1``
    onehopapp: Django's psycopg pool (``OPTIONS={"pool": ...}``, no persistent connections)
    instead of ``CONN_MAX_AGE``. onehopapp's ``LIFESPAN_TEST_REQUEST_THREADS`` defaults to 8.
``LIFESPAN_TEST_REDIS``
    layersapp: a Redis URL (the harness's ``redis`` fixture gives ``unix://...``); its channel
    layer is then channels_redis' (unset: Channels' in-memory layer).
``LIFESPAN_TEST_LAYER``
    layersapp: ``core`` (default: ``RedisChannelLayer``) or ``pubsub``
    (``RedisPubSubChannelLayer``).
``LIFESPAN_TEST_REDIS_SOCKET_TIMEOUT``
    layersapp: the Redis host's explicit ``socket_timeout`` (unset: none, the lifespan's default).
``LIFESPAN_SIGNALS_STARTUP_TIMEOUT``, ``LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT``
    faultapp, hardapp, layersapp: the package's own settings of those names, read with
    ``parse_timeout()``.

Read by the tests themselves, not by a project:

``LIFESPAN_TEST_SOAK_SEED``
    The seed of the soak test's random moments (unset: a new one each run).
``LIFESPAN_TEST_TUTORIAL_PROBE``
    The file the observer that ``tests/test_docs.py`` adds to the tutorial's project records to.
"""

from __future__ import annotations

import os
import re

SECRET_KEY = "lifespan-signals-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "lifespan_signals"]
MIDDLEWARE = ["lifespan_signals.middleware.LifespanStateMiddleware"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The variables the docstring lists: the names its unindented lines start with.
_TERMS = [line for line in (__doc__ or "").splitlines() if line.startswith("``")]
_CONTRACT = frozenset(re.findall(r"``(LIFESPAN_\w+)", "\n".join(_TERMS)))


def env(name: str) -> str | None:
    """The variable ``name`` of the contract above, or None when it is unset."""
    if name not in _CONTRACT:
        raise KeyError(f"{name} is not in the tests' environment contract (tests/settings.py).")
    return os.environ.get(name)


def parse_timeout(value: str) -> float | str | None:
    """A timeout setting given in the environment: ``None`` is None, a number is a float, and
    anything else is passed on as the string it is (so that an invalid setting can be tried
    under a real server)."""
    if value == "None":
        return None
    try:
        return float(value)
    except ValueError:
        return value
