"""The server-test project, but served through Django's own (not lifespan-aware) asgi.py."""

from tests.serverapp.settings import *  # noqa: F403

ASGI_APPLICATION = "tests.plainasgi.asgi.application"
