"""runasgi's request log: built only when something prints it (daphne's runserver lines)."""

from __future__ import annotations

import contextlib
import logging

from daphne.management.commands.runserver import logger

from lifespan_signals.management.commands.runasgi import Command

DETAILS = {"path": "/", "method": "GET", "client": "127.0.0.1:1", "time_taken": 0.01, "size": 2}


class Style:
    """Records which of the command's colour styles were applied."""

    def __init__(self):
        self.used = []

    def __getattr__(self, name):
        def style(text):
            self.used.append(name)
            return text

        return style


def log(status, protocol="http", action="complete"):
    command = Command()
    command.style = Style()
    command.log_action(protocol, action, {**DETAILS, "status": status})
    return command.style.used


@contextlib.contextmanager
def no_handlers():
    """The logger as runasgi leaves it: INFO, and no handler anywhere up its hierarchy.

    Entered inside the test: pytest adds its capture handlers for the call itself.
    """
    saved = logger.handlers, logger.propagate, logger.level
    logger.handlers, logger.propagate = [], False
    logger.setLevel(logging.INFO)  # also clears logging's level cache
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved[:2]
        logger.setLevel(saved[2])


def test_successful_requests_are_not_styled_when_nothing_prints_them():
    with no_handlers():
        assert (log(200), log(302), log(101, "websocket", "connected")) == ([], [], [])


def test_warnings_and_errors_are_logged_for_the_last_resort_handler():
    with no_handlers():
        assert (log(404), log(500)) == (["HTTP_NOT_FOUND"], ["HTTP_SERVER_ERROR"])


def test_with_a_handler_every_request_is_logged(caplog):
    with no_handlers(), caplog.at_level(logging.INFO, logger=logger.name):
        logger.addHandler(caplog.handler)
        assert log(200) == ["HTTP_SUCCESS"]
    assert "HTTP GET / 200" in caplog.text
