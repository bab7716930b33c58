"""The Daphne wing's tests put ``daphne`` in ``INSTALLED_APPS`` in process (override_settings).

Daphne's app then registers its system check for good, and that check returns None (not a list)
in a project without ``daphne`` or ``staticfiles``: every later ``manage.py check`` in the same
process would fail. Each test here leaves the check registry as it found it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.checks.registry import registry


@pytest.fixture(autouse=True)
def _check_registry_restored() -> Iterator[None]:
    checks, deployment = set(registry.registered_checks), set(registry.deployment_checks)
    yield
    registry.registered_checks, registry.deployment_checks = checks, deployment
