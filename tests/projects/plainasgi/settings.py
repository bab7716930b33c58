"""The server-test project, but served through Django's own (not lifespan-aware) asgi.py."""

from tests.projects.serverapp.settings import *  # noqa: F403

ASGI_APPLICATION = "tests.projects.plainasgi.asgi.application"
