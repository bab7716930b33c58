"""Run Daphne's own test suite against ``LifespanServer`` and ``LifespanCommandLineInterface``.

``python -m tests.peer_suites`` (``make peer-suites``) fetches the source distribution of the
Daphne installed here (``pip download``, cached in ``.cache/``, as ``tests/django_asgi_suite.py``
does for Django) and runs its ``tests/`` twice, each pass in a process of its own:

``auto``
    ``daphne.server.Server`` is ``LifespanServer`` (``--lifespan auto``, the default) and
    ``daphne.cli.CommandLineInterface`` is ``LifespanCommandLineInterface``. Daphne's test
    application does not speak lifespan, so it is served without it, as uvicorn would.
``wrapped``
    The same, with the test application wrapped in ``LifespanWrapper``: the lifespan runs, and
    every HTTP and WebSocket scope carries its ``state``.

``--pass NAME`` runs one pass in this process; further arguments go to pytest.

The deliberate differences are the named exceptions in ``EXCEPTIONS``, each applied by this
runner and nowhere else; every other test must pass as it does against Daphne.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import daphne

from tests.harness.sdist import CACHE, release_tests

PASSES = {
    "auto": "LifespanServer serves Daphne's test application without the lifespan",
    "wrapped": "LifespanServer runs the lifespan of LifespanWrapper(test application)",
}

# The deliberate differences between LifespanServer and Daphne's Server that Daphne's tests see.
EXCEPTIONS = {
    "test-application-has-no-lifespan": (
        "Daphne's TestApplication never answers a lifespan message, and keeps the messages of "
        "every scope in one list. The runner gives it what Django's own handler does on a "
        "lifespan scope (it raises ValueError), so that LifespanServer serves it without the "
        "lifespan (pass auto) and LifespanWrapper leaves its lifespan out (pass wrapped)."
    ),
    "state-scope-key": (
        "With the lifespan (pass wrapped), every HTTP and WebSocket scope has a 'state' key, a "
        "shallow copy of the lifespan state (ASGI spec, lifespan 2.3); Daphne's scope assertions "
        "list only the keys Daphne sets, so 'state' is added to the optional keys."
    ),
}


def daphne_tests() -> Path:
    """The ``tests`` directory of the installed Daphne's source distribution."""
    return release_tests("daphne", daphne.__version__, "http_base.py")


# Each server process that sent a lifespan scope leaves a file here: proof that the servers were
# ours (Daphne's never sends one).
SENT = CACHE / "peer-suites-lifespan-scopes"


class NoLifespan:
    """An application that raises on the lifespan scope, as Django's handler does, and hands
    every other scope to ``app`` (exception ``test-application-has-no-lifespan``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "lifespan":
            (SENT / str(os.getpid())).touch()
            raise ValueError("Daphne's TestApplication does not speak lifespan.")
        return await self.app(scope, receive, send)


class Substitution:
    """The pytest plugin of one pass: our classes in Daphne's place, and the named exceptions."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.outcomes: dict[str, int] = {}
        self.scopes_with_state = 0

    def pytest_configure(self, config: Any) -> None:
        import daphne.cli
        import daphne.testing

        from lifespan_signals.daphne.cli import LifespanCommandLineInterface

        # Before the test modules import it: TestCLIInterface subclasses ours.
        daphne.cli.CommandLineInterface = LifespanCommandLineInterface
        reinstall = daphne.testing._reinstall_reactor

        def reinstall_with_lifespan_server() -> None:
            # DaphneProcess.run() imports daphne.server again after a new reactor: ours too, on
            # that reactor, and put in daphne.server.Server's place.
            reinstall()
            for module in ("lifespan_signals.daphne.server", "lifespan_signals.daphne.drain"):
                sys.modules.pop(module, None)
            import daphne.server

            from lifespan_signals.daphne.server import LifespanServer

            daphne.server.Server = LifespanServer

        daphne.testing._reinstall_reactor = reinstall_with_lifespan_server
        get_application = daphne.testing.BaseDaphneTestingInstance.get_application
        wrap = self._wrap

        @functools.wraps(get_application)
        def get_wrapped_application(instance: Any) -> Any:
            return wrap(get_application(instance))

        daphne.testing.BaseDaphneTestingInstance.get_application = get_wrapped_application

    def _wrap(self, app: Any) -> Any:
        app = NoLifespan(app)
        if self.name == "auto":
            return app
        import django
        from django.conf import settings

        if not settings.configured:  # in the server's process: the lifespan reads settings
            settings.configure(INSTALLED_APPS=["lifespan_signals"])
            django.setup()
        from lifespan_signals.asgi import LifespanWrapper

        return LifespanWrapper(app)

    def pytest_collection_finish(self, session: Any) -> None:
        if self.name != "wrapped":
            return
        http_base = sys.modules.get("http_base")  # Daphne's tests' own helpers, once collected
        if http_base is None:
            return
        assert_key_sets = http_base.DaphneTestCase.assert_key_sets

        def with_state(
            case: Any, required_keys: set[str], optional_keys: set[str], actual_keys: Any
        ) -> None:
            if "asgi" in required_keys:  # a scope, not a message (exception state-scope-key)
                optional_keys = {*optional_keys, "state"}
                self.scopes_with_state += "state" in actual_keys
            assert_key_sets(case, required_keys, optional_keys, actual_keys)

        http_base.DaphneTestCase.assert_key_sets = with_state

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for key in ("passed", "failed", "error", "skipped"):
            self.outcomes[key] = len(terminalreporter.stats.get(key, ()))


def run_pass(name: str, pytest_args: list[str]) -> int:
    import pytest

    tests = daphne_tests()
    ini = CACHE / "peer-suites-pytest.ini"
    # Daphne's own configuration, without the pytest-asyncio option its suite does not use
    # (and, as there, warnings are not errors: its tests leave client sockets unclosed).
    ini.write_text(
        "[pytest]\ntestpaths = tests\nfilterwarnings = ignore::pytest.PytestDeprecationWarning\n"
    )
    print(f"Daphne {daphne.__version__}'s tests, pass {name}: {PASSES[name]}.", flush=True)
    plugin = Substitution(name)
    # Not this project's plugins (its pytest plugin, pytest-django): Daphne's suite as it is.
    plugins = ["-p", "no:cacheprovider", "-p", "no:lifespan_signals", "-p", "no:django"]
    args = ["-c", str(ini), "--rootdir", str(tests.parent), *plugins, "-q", *pytest_args]
    args.append(str(tests))
    shutil.rmtree(SENT, ignore_errors=True)
    SENT.mkdir(parents=True)
    code = int(pytest.main(args, plugins=[plugin]))
    servers = len(list(SENT.iterdir()))
    counts = ", ".join(f"{count} {outcome}" for outcome, count in plugin.outcomes.items())
    print(f"Pass {name}: {counts}; {servers} servers sent a lifespan scope"
          + (f", {plugin.scopes_with_state} scopes had its state" if name == "wrapped" else "")
          + ".", flush=True)  # fmt: skip
    if not servers or (name == "wrapped" and not plugin.scopes_with_state):
        print("The substitution did not take.", flush=True)
        return code or 1
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pass", dest="name", choices=PASSES, help="run one pass, here")
    options, pytest_args = parser.parse_known_args()
    if options.name:
        sys.exit(run_pass(options.name, pytest_args))
    daphne_tests()  # fetched once, before the passes
    for name, text in EXCEPTIONS.items():
        print(f"Named exception {name}: {text}")
    failed = []
    started = time.monotonic()
    for name in PASSES:
        command = [sys.executable, "-m", "tests.peer_suites", "--pass", name, *pytest_args]
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(name)
    print(f"Peer suites: {len(PASSES) - len(failed)} of {len(PASSES)} passes green "
          f"in {time.monotonic() - started:.0f} s.", flush=True)  # fmt: skip
    if failed:
        sys.exit(f"Failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
