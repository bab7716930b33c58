"""``manage.py lifespan``: lifespan startup and shutdown once, without serving (a pre-flight)."""

from __future__ import annotations

from typing import Any

from lifespan_signals.commands import LifespanCommand
from lifespan_signals.state import get_state


class Command(LifespanCommand):
    help = (
        "Run the project's ASGI lifespan startup and shutdown once, without serving, and list "
        "each resource, client and receiver that ran with its time. Exits non-zero with the "
        "failure report if either fails: a pre-flight for deploy scripts and init containers."
    )

    def execute(self, *args: Any, **options: Any) -> str | None:
        try:
            output: str | None = super().execute(*args, **options)
        finally:
            self._list(options["verbosity"])
        if options["verbosity"] >= 1:
            self.stdout.write(self.style.SUCCESS("Lifespan startup and shutdown succeeded."))
        return output

    def handle(self, *args: Any, **options: Any) -> None:
        """Nothing to do: startup has run before this, shutdown runs after."""
        if options["verbosity"] >= 2:
            self.stdout.write(f"Lifespan startup complete; state keys: {sorted(get_state())!r}")

    def _list(self, verbosity: int) -> None:
        """Each step the engine recorded (an application of another kind records none)."""
        if verbosity < 1 or self.lifespan_driver is None:
            return
        steps = self.lifespan_driver.record.steps
        width = max((len(step.name) for step in steps), default=0)
        for phase in ("startup", "shutdown"):
            ran = [step for step in steps if step.phase == phase]
            self.stdout.write(self.style.MIGRATE_HEADING(f"Lifespan {phase}:"))
            if not ran:
                self.stdout.write("  (nothing ran)")
            for step in ran:
                line = f"  {step.kind:<10}{step.name:<{width}}  {step.seconds * 1000:8.1f} ms"
                self.stdout.write(line if step.ok else self.style.ERROR(f"{line}  FAILED"))
