"""``manage.py lifespan``: the project's lifespan without serving.

- ``manage.py lifespan``: startup and shutdown once, listing each step with its time (a
  pre-flight for deploy scripts and init containers);
- ``manage.py lifespan run COMMAND [ARGS...]``: any management command (a third party's,
  ``shell``, a task worker) run inside the lifespan, with its exit status kept.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management import get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError

from lifespan_signals.commands import LifespanCommand
from lifespan_signals.state import get_state

_USAGE = "manage.py lifespan [run COMMAND [ARGS...]]"


class Command(LifespanCommand):
    help = (
        "Run the project's ASGI lifespan startup and shutdown once, without serving, and list "
        "each resource, client and receiver that ran with its time; exits non-zero with the "
        "failure report if either fails (a pre-flight for deploy scripts and init containers). "
        "With 'run COMMAND [ARGS...]', run that management command inside the lifespan instead: "
        "its clients open, get_state() works, shutdown runs when it ends, and its exit status "
        "is kept."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "run",
            nargs=argparse.REMAINDER,
            metavar="run COMMAND [ARGS...]",
            help="Run COMMAND, with its own options, inside the lifespan.",
        )

    def execute(self, *args: Any, **options: Any) -> str | None:
        self._inner = self._inner_command(options.get("run") or [])
        try:
            output: str | None = super().execute(*args, **options)
        finally:
            if self._inner is None:
                self._list(options["verbosity"])
        if self._inner is None and options["verbosity"] >= 1:
            self.stdout.write(self.style.SUCCESS("Lifespan startup and shutdown succeeded."))
        return output

    def handle(self, *args: Any, **options: Any) -> None:
        """The inner command, if any: startup has run before this, shutdown runs after."""
        if self._inner is not None:
            command, argv = self._inner
            # argv as run_from_argv() takes it; its exit status (SystemExit) passes through us,
            # after shutdown, so that the shell sees it.
            command.run_from_argv(argv)
        elif options["verbosity"] >= 2:
            self.stdout.write(f"Lifespan startup complete; state keys: {sorted(get_state())!r}")

    def _inner_command(self, words: list[str]) -> tuple[BaseCommand, list[str]] | None:
        """The command that ``run COMMAND [ARGS...]`` names, loaded before startup runs."""
        if not words:
            return None
        if words == ["run"]:
            raise CommandError(
                f"'run' needs the command to run, as in 'run migrate'. Usage: {_USAGE}"
            )
        if words[0] != "run":
            raise CommandError(f"Unknown arguments {words!r}. Usage: {_USAGE}")
        name = words[1]
        app = get_commands().get(name)
        if app is None:
            raise CommandError(f"Unknown command: {name!r}. Type 'manage.py help' for the list.")
        if name == "lifespan":
            raise CommandError(
                "'manage.py lifespan run lifespan' would start a second lifespan inside the "
                "first. Run the command itself."
            )
        command = app if isinstance(app, BaseCommand) else load_command_class(app, name)
        if isinstance(command, LifespanCommand):
            command.joins_running_lifespan = True  # its own lifespan would be a second one
        return command, ["manage.py", *words[1:]]

    def _list(self, verbosity: int) -> None:
        """Each step the engine recorded (an application of another kind records none)."""
        if verbosity < 1 or self.lifespan_driver is None:
            return
        # In the order they began (those that never started last).
        steps = sorted(
            self.lifespan_driver.record.steps,
            key=lambda step: (step.started is None, step.started or 0.0),
        )
        width = max((len(step.name) for step in steps), default=0)
        for phase in ("startup", "shutdown"):
            ran = [step for step in steps if step.phase == phase]
            self.stdout.write(self.style.MIGRATE_HEADING(f"Lifespan {phase}:"))
            if not ran:
                self.stdout.write("  (nothing ran)")
            for step in ran:
                line = f"  {step.kind:<10}{step.name:<{width}}  {step.seconds * 1000:8.1f} ms"
                self.stdout.write(line if step.ok else self.style.ERROR(f"{line}  FAILED"))
