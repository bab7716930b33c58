"""The docs stay true: the tutorial's code is run as written, and every name the docs show exists.

The tutorial test builds a fresh project with ``startproject`` from the code blocks of
``docs/tutorial.md`` (each ``{code-block}`` whose caption names a file), runs its tests with
``manage.py test`` and with pytest, and serves it with ``manage.py runserver`` and with uvicorn
against the tutorial's own quotes service, whose log of callers' ports shows the one connection.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.catalogue import RUNSERVER, UVICORN_AUTO
from tests.harness.servers import REPO_ROOT, ServerProcess, get_json, traceback_exceptions

DOCS = REPO_ROOT / "docs"
TUTORIAL = DOCS / "tutorial.md"
TIMEOUT = 60.0
REQUESTS = 8

# The files the tutorial must write: removing one of its blocks fails the suite.
TUTORIAL_FILES = {
    "quotes_api.py",
    "mysite/settings.py",
    "mysite/urls.py",
    "mysite/asgi.py",
    "quotes/apps.py",
    "quotes/views.py",
    "quotes/tests.py",
    "pytest.ini",
}
NEW_FILE = "(a new file)"
ADDED = "(add at the end)"

# Added to the reader's project by this test only, to observe it: the declared client that served
# the requests, and whether it was closed when the lifespan's step that closes it ended (the
# engine logs each step, with its fields in ``record.lifespan_step``).
PROBE_APP = """
import json, logging, os

from django.apps import AppConfig

from lifespan_signals.clients import clients
from lifespan_signals.signals import asgi_startup

opened = []


async def remember_client(**kwargs):
    opened.append(clients["quotes"])


class ClosedProbe(logging.Handler):
    def emit(self, record):
        step = getattr(record, "lifespan_step", {})
        which = (step.get("phase"), step.get("kind"), step.get("name"))
        if which != ("shutdown", "client", "quotes"):
            return
        client = opened[-1]
        entry = {"pid": os.getpid(), "client": id(client), "closed": client.is_closed}
        with open(os.environ["LIFESPAN_TEST_TUTORIAL_PROBE"], "a") as file:
            file.write(json.dumps(entry) + "\\n")


class ProbeConfig(AppConfig):
    name = "tutorial_probe"

    def ready(self):
        if "LIFESPAN_TEST_TUTORIAL_PROBE" not in os.environ:  # the tutorial's own tests
            return
        asgi_startup.connect(remember_client)
        logger = logging.getLogger("lifespan_signals.lifespan.steps")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False  # the console shows what the reader sees, no more
        logger.addHandler(ClosedProbe())
"""


# -- reading the docs ----------------------------------------------------------------------------


def code_blocks(path: Path) -> list[tuple[str, str]]:
    """The ``{code-block}`` directives of a MyST page, as (caption, code)."""
    blocks = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        if not lines[index].startswith("```{code-block}"):
            index += 1
            continue
        index += 1
        options = {}
        while index < len(lines) and lines[index].startswith(":"):
            name, _, value = lines[index][1:].partition(":")
            options[name] = value.strip()
            index += 1
        body = []
        while lines[index] != "```":
            body.append(lines[index])
            index += 1
        blocks.append((options.get("caption", ""), "\n".join(body).strip("\n") + "\n"))
        index += 1
    return blocks


def tutorial_files() -> dict[str, list[tuple[str, str]]]:
    """The files the tutorial writes: path -> its blocks in order, as (how, code); ``how`` is
    ``"new"`` (a file of its own), ``"replace"`` (a file startproject made) or ``"add"``."""
    files: dict[str, list[tuple[str, str]]] = {}
    for caption, code in code_blocks(TUTORIAL):
        if not caption:
            continue
        path = caption.split()[0]
        how = "add" if ADDED in caption else "new" if NEW_FILE in caption else "replace"
        if how != "add":
            assert path not in files, f"{TUTORIAL}: two blocks write {path} from scratch"
        files.setdefault(path, []).append((how, code))
    return files


def test_tutorial_blocks_are_found():
    assert set(tutorial_files()) == TUTORIAL_FILES


# -- the project, built as a reader would --------------------------------------------------------


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command as a reader would: no settings module from the test run in the environment."""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        args,
        cwd=cwd,
        env={**env, "PYTHONDEVMODE": "1"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``startproject mysite``, ``startapp quotes``, then the tutorial's blocks, as written."""
    root = tmp_path_factory.mktemp("tutorial")
    run([sys.executable, "-m", "django", "startproject", "mysite"], root)
    project = root / "mysite"
    run([sys.executable, "manage.py", "startapp", "quotes"], project)
    for path, blocks in tutorial_files().items():
        target = project / path
        for how, code in blocks:
            if how == "new":
                assert not target.exists(), f"The tutorial makes {path}, which startproject made"
                target.write_text(code)
                continue
            assert target.exists(), (
                f"The tutorial edits {path}, which startproject/startapp do not make"
            )
            if how == "add":
                target.write_text(target.read_text() + "\n\n" + code)
            else:
                target.write_text(code)
    # Not part of the tutorial: an observer (see PROBE_APP).
    (project / "tutorial_probe").mkdir()
    (project / "tutorial_probe" / "__init__.py").write_text("")
    (project / "tutorial_probe" / "apps.py").write_text(PROBE_APP)
    with (project / "mysite" / "settings.py").open("a") as settings:
        settings.write('\nINSTALLED_APPS += ["tutorial_probe.apps.ProbeConfig"]\n')
    return project


def test_tutorial_tests_pass(project):
    result = run([sys.executable, "manage.py", "test", "quotes"], project)
    assert "Ran 2 tests" in result.stderr, result.stderr
    assert result.stderr.rstrip().endswith("OK"), result.stderr


def test_tutorial_tests_pass_under_pytest(project):
    # As the reader runs it: plain `pytest` in the project, with the tutorial's pytest.ini.
    result = run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"], project)
    assert "quotes/tests.py .." in result.stdout, result.stdout
    assert re.search(r"\b2 passed\b", result.stdout), result.stdout


def test_tutorial_settings_pass_the_checks(project):
    result = run([sys.executable, "manage.py", "check"], project)
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


# -- serving the tutorial's project --------------------------------------------------------------

_QUOTES_API_PORT = re.compile(r"Quotes API on http://127\.0\.0\.1:(\d+)/")
_CALLER_PORT = re.compile(r"^from port (\d+): \"GET /quote HTTP/1\.1\" 200", re.MULTILINE)


def _uvicorn(project: Path) -> list[str]:
    return UVICORN_AUTO.args("mysite.asgi:application", "--app-dir", str(project))


def _runserver(project: Path) -> list[str]:
    # As the tutorial runs it: the project's manage.py, with the autoreloader.
    return [sys.executable, str(project / "manage.py"), "runserver", "127.0.0.1:0"]


@pytest.mark.servers
@pytest.mark.parametrize(
    ("command", "server"),
    [(_runserver, RUNSERVER), (_uvicorn, UVICORN_AUTO)],
    ids=["runserver", "uvicorn"],
)
def test_tutorial_serves_every_request_with_one_client_over_one_connection(
    project, tmp_path, command, server
):
    probe = tmp_path / "probe.jsonl"
    quotes_api = [sys.executable, str(project / "quotes_api.py"), "0"]
    with ServerProcess(quotes_api, settings="", reports_port=_QUOTES_API_PORT) as api:
        api_url = f"http://127.0.0.1:{api.wait_port(TIMEOUT)}"
        env = {
            "PYTHONPATH": str(project),
            "QUOTES_API": api_url,
            "LIFESPAN_TEST_TUTORIAL_PROBE": str(probe),
        }
        stopped_exit = server.stopped_exit
        args = command(project)
        with ServerProcess(
            args, settings="mysite.settings", env=env, reports_port=server.reports_port
        ) as served:
            served.wait_ready("/quote/", TIMEOUT)
            responses = [get_json(served.url("/quote/")) for _ in range(REQUESTS)]
            today = get_json(served.url("/today/"))
            code = served.stop(signal.SIGTERM, TIMEOUT)
            output = served.output()
        callers = _CALLER_PORT.findall(api.stdout())

    assert code == stopped_exit, output
    assert {r["quote"] for r in responses} == {"Simple is better than complex."}
    assert today == {"quote": "Simple is better than complex."}  # the receiver's step
    # One client served every request ...
    clients = {r["client"] for r in responses}
    assert len(clients) == 1, responses
    # ... over its pooled connection, as the quotes service's log shows the reader: one port
    # (httpx drops an idle connection after 5 s, so allow one more on a slow machine).
    assert len(callers) >= REQUESTS + 1, api.stdout()  # the receiver's request, polls too
    assert len(set(callers)) <= 2, api.stdout()
    # ... and it was closed at shutdown.
    records = [json.loads(line) for line in probe.read_text().splitlines()]
    assert [(r["client"], r["closed"]) for r in records] == [(clients.pop(), True)], output
    assert traceback_exceptions(output) == [], output
    for leak in ("Unclosed", "ResourceWarning", "lifespan_signals.W0"):
        assert leak not in output, output


# -- every name the docs show exists -------------------------------------------------------------

_IMPORT = re.compile(r"^\s*from (lifespan_signals[\w.]*) import ([\w, ()]+)", re.MULTILINE)
_DOTTED = re.compile(r"\blifespan_signals(?:\.\w+)+")
_CHECK_ID = re.compile(r"lifespan_signals\.[EW]\d{3}$")


def shown_names() -> set[str]:
    """Every ``lifespan_signals...`` dotted name in the docs and the README, imports included."""
    names = set()
    for page in [REPO_ROOT / "README.md", *DOCS.rglob("*.md")]:
        if "_build" in page.parts:
            continue
        text = page.read_text()
        for module, imported in _IMPORT.findall(text):
            names.update(f"{module}.{name.strip()}" for name in imported.strip("()").split(","))
        names.update(name for name in _DOTTED.findall(text) if not _CHECK_ID.match(name))
    return names


def resolve(name: str) -> object:
    """Import the longest importable module prefix of ``name``, then get the attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ModuleNotFoundError(name)


def test_every_name_the_docs_show_exists():
    names = shown_names()
    assert "lifespan_signals.signals.asgi_startup" in names  # the scan works
    missing = []
    loggers = _targets("logging.md", "logger")  # names of loggers, not all of them modules
    for name in sorted(names - loggers):
        try:
            resolve(name)
        except (ImportError, AttributeError) as exc:
            missing.append(f"{name}: {type(exc).__name__}: {exc}")
    assert missing == [], "\n".join(missing)


def test_readme_links_reach_files():
    links = re.findall(r"\]\((?!https?:)([^)#]+)", (REPO_ROOT / "README.md").read_text())
    assert "docs/tutorial.md" in links  # the scan works
    missing = [link for link in links if not (REPO_ROOT / link).exists()]
    assert missing == []


# -- figures match the latest `make bench` -------------------------------------------------------

RATIOS = [
    "p1_overhead_uvicorn",
    "p2_runasgi_vs_daphne",
    "p3_aiohttp_shared_vs_per_request",
    "p3_httpx_shared_vs_per_request",
    "p3_lifespan_vs_global",
    "p7_request_threads_vs_django",
    "p7_request_threads_on_vs_off",
    "p8_aiohttp_shared_vs_per_request_threads",
    "p8_httpx_shared_vs_per_request_threads",
    "sample_home_runasgi_vs_uvicorn",
]


def test_readme_figures_are_those_of_the_latest_bench():
    results = json.loads((REPO_ROOT / "bench" / "results.json").read_text())
    latest = {f"{value:.2f}" for value in results.values()}
    shown = re.findall(r"\*\*(\d+\.\d+)\u00d7?\*\*", (REPO_ROOT / "README.md").read_text())
    assert shown, "the README quotes no figure in bold"
    assert [figure for figure in shown if figure not in latest] == [], sorted(latest)


def test_benchmark_page_table_is_that_of_the_latest_bench():
    results = json.loads((REPO_ROOT / "bench" / "results.json").read_text())
    rows = {
        line.split("`")[1]: line
        for line in (DOCS / "explanation" / "benchmarks.md").read_text().splitlines()
        if line.startswith("| `")
    }
    for key in RATIOS:
        assert f"| {results[key]:.2f} |" in rows[key], (key, results[key], rows[key])
    assert (
        f"| {results['p4_startup_ms_100_receivers']:.1f} ms |"
        in rows["p4_startup_ms_100_receivers"]
    )
    assert f"| {results['p5_sigterm_exit_ms']:.0f} ms |" in rows["p5_sigterm_exit_ms"]


# -- the reference lists every check id, setting and runasgi option ------------------------------

PACKAGE = REPO_ROOT / "lifespan_signals"
COMMON_OPTIONS = {
    "-h", "--help", "--version", "-v", "--verbosity", "--settings", "--pythonpath",
    "--traceback", "--no-color", "--force-color",
}  # fmt: skip


def _package_source() -> str:
    return "\n".join(path.read_text() for path in sorted(PACKAGE.rglob("*.py")))


def _targets(page: str, directive: str) -> set[str]:
    text = (DOCS / "reference" / page).read_text()
    return set(re.findall(rf"```{{{directive}}} (\S+)", text))


def test_every_check_id_is_in_the_reference():
    ids = set(re.findall(r"\blifespan_signals\.[EW]\d{3}\b", _package_source()))
    assert "lifespan_signals.E001" in ids  # the scan works
    assert ids - _targets("checks.md", "check") == set()


def test_every_setting_is_in_the_reference():
    names = set(re.findall(r"\bLIFESPAN_SIGNALS_[A-Z_]*[A-Z]\b", _package_source()))
    assert "LIFESPAN_SIGNALS_STARTUP_TIMEOUT" in names  # the scan works
    assert names - _targets("settings.md", "setting") == set()


def test_every_runasgi_option_is_in_the_reference():
    from lifespan_signals.management.commands.runasgi import Command

    parser = Command().create_parser("manage.py", "runasgi")
    options = {
        option
        for action in parser._actions
        for option in (action.option_strings or [action.dest])
        if option not in COMMON_OPTIONS
    }
    documented = set()
    text = (DOCS / "reference" / "runasgi-options.md").read_text()
    for line in re.findall(r"```\{option\} ([^\n]+)", text):
        documented.update(part.split()[0] for part in line.split(", "))
    assert "--graceful-timeout" in options  # the parser is read
    assert options - documented == set()
