"""tasksapp: django-tasks-db's database backend (with the django-tasks backport before Django 6),
one declared httpx client calling ``LIFESPAN_TEST_CLIENTS_UPSTREAM``, and its database in the file
``LIFESPAN_TEST_TASKS_DATABASE``. The environment: see tests/settings.py."""

from importlib.util import find_spec

from tests.settings import *  # noqa: F403
from tests.settings import env

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": env("LIFESPAN_TEST_TASKS_DATABASE") or ":memory:",
    }
}
INSTALLED_APPS = [
    "lifespan_signals",
    *([] if find_spec("django.tasks") else ["django_tasks"]),
    "django_tasks_db",
    "tests.projects.tasksapp",
]
ROOT_URLCONF = "tests.projects.tasksapp.urls"
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
LIFESPAN_SIGNALS_CLIENTS = {"api": {"BACKEND": "httpx.AsyncClient", "OPTIONS": {"timeout": 5}}}
UPSTREAM = env("LIFESPAN_TEST_CLIENTS_UPSTREAM") or "http://127.0.0.1:9"
