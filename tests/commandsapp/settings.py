"""The server-test project plus ``tests.commandsapp``: lifespan-daphne and LifespanCommand tests."""

from tests.serverapp.settings import *  # noqa: F403
from tests.serverapp.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.commandsapp"]
ROOT_URLCONF = "tests.commandsapp.urls"
