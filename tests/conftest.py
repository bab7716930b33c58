"""Every test gets the harness's fixtures: ``serve``, ``events``, ``watched`` (tests/harness/)."""

pytest_plugins = ["tests.harness.fixtures"]
