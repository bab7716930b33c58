"""Say a lifespan failure once: what lifespan_signals logged already is not printed again."""

from __future__ import annotations

import logging

__all__ = ["LoggedReports"]

# Where lifespan_signals' state machine logs its failure reports (at ERROR).
_LOGGER = "lifespan_signals.lifespan"


class LoggedReports(logging.Filter):
    """While entered, note the failure reports logged on ``lifespan_signals.lifespan``.

    A report that was logged went to the project's handlers (or to Python's last-resort stderr
    handler); a command that stops on the failure then prints only what was not logged: the
    reports of applications that are not lifespan_signals'.
    """

    def __init__(self) -> None:
        super().__init__()
        self._logged: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            self._logged.append(record.getMessage())
        return True

    def __enter__(self) -> LoggedReports:
        logging.getLogger(_LOGGER).addFilter(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        logging.getLogger(_LOGGER).removeFilter(self)

    def explain(self, headline: str, message: str) -> str:
        """``headline``, then the part of the failure ``message`` that was not logged."""
        for logged in self._logged:
            message = message.replace(logged, "", 1)
        message = message.strip()
        return f"{headline}\n\n{message}" if message else f"{headline} The report is above."
