"""Production settings of a split-settings project; its ``asgi.py`` is one package up."""

from __future__ import annotations

from tests.projects.serverapp.settings import *  # noqa: F403
