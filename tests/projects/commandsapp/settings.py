"""The server-test project plus ``commandsapp``: lifespan-daphne and LifespanCommand tests."""

from tests.projects.serverapp.settings import *  # noqa: F403
from tests.projects.serverapp.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.projects.commandsapp"]
ROOT_URLCONF = "tests.projects.commandsapp.urls"
