"""``manage.py lifespan``: lifespan startup and shutdown once, without serving (a pre-flight)."""

from __future__ import annotations

import logging
from typing import Any

from lifespan_signals.commands import LifespanCommand
from lifespan_signals.driver import LifespanDriver
from lifespan_signals.state import get_state

_STEPS = "lifespan_signals.steps"


class Command(LifespanCommand):
    help = (
        "Run the project's ASGI lifespan startup and shutdown once, without serving, and list "
        "each resource, client and receiver that ran with its time. Exits non-zero with the "
        "failure report if either fails: a pre-flight for deploy scripts and init containers."
    )

    def execute(self, *args: Any, **options: Any) -> str | None:
        self._recorder = _StepRecorder()
        try:
            output: str | None = super().execute(*args, **options)
        except BaseException:
            self._list(options["verbosity"])
            raise
        finally:
            self._recorder.detach()
        self._list(options["verbosity"])
        if options["verbosity"] >= 1:
            self.stdout.write(self.style.SUCCESS("Lifespan startup and shutdown succeeded."))
        return output

    def _driver(self) -> LifespanDriver:
        driver = super()._driver()
        # Loading the application may have run django.setup() again, and so the LOGGING
        # configuration, which resets the handlers of lifespan_signals' loggers: attach after.
        self._recorder.attach()
        return driver

    def handle(self, *args: Any, **options: Any) -> None:
        """Nothing to do: startup has run before this, shutdown runs after."""
        if options["verbosity"] >= 2:
            self.stdout.write(f"Lifespan startup complete; state keys: {sorted(get_state())!r}")

    def _list(self, verbosity: int) -> None:
        if verbosity < 1:
            return
        steps = self._recorder.steps
        for phase in ("startup", "shutdown"):
            ran = [step for step in steps if step["phase"] == phase]
            self.stdout.write(self.style.MIGRATE_HEADING(f"Lifespan {phase}:"))
            if not ran:
                self.stdout.write("  (nothing ran)")
            width = max((len(step["name"]) for step in steps), default=0)
            for step in ran:
                line = (
                    f"  {step['kind']:<10}{step['name']:<{width}}  {step['seconds'] * 1000:8.1f} ms"
                )
                self.stdout.write(line if step["ok"] else self.style.ERROR(f"{line}  FAILED"))


class _StepRecorder(logging.Handler):
    """Keeps the ``lifespan_step`` of each record logged on ``lifespan_signals.steps``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.steps: list[dict[str, Any]] = []
        self._logger = logging.getLogger(_STEPS)
        self._saved: tuple[int, bool] | None = None
        self._shown = logging.WARNING  # the level from which records went on before

    def attach(self) -> None:
        logger = self._logger
        self._saved, self._shown = (logger.level, logger.propagate), logger.getEffectiveLevel()
        logger.addHandler(self)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False  # we pass on what was shown before, not the DEBUG records

    def detach(self) -> None:
        if self._saved is not None:
            self._logger.removeHandler(self)
            self._logger.level, self._logger.propagate = self._saved
            self._saved = None

    def emit(self, record: logging.LogRecord) -> None:
        step = getattr(record, "lifespan_step", None)
        if isinstance(step, dict):
            self.steps.append(step)
        propagated = self._saved is not None and self._saved[1]
        if propagated and record.levelno >= self._shown and self._logger.parent is not None:
            self._logger.parent.handle(record)
