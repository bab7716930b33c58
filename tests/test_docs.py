"""The docs stay true: the tutorial's code is run as written, and every name the docs show exists.

The tutorial test builds a fresh project with ``startproject`` from the code blocks of
``docs/tutorial.md`` (each ``{code-block}`` whose caption names a file), runs its tests, and serves
it with uvicorn and with ``manage.py runasgi`` against a loopback upstream.
"""

from __future__ import annotations

import http.server
import importlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.catalogue import RUNASGI_RELOAD, UVICORN_AUTO
from tests.harness.servers import REPO_ROOT, ServerProcess, get_json, traceback_exceptions

DOCS = REPO_ROOT / "docs"
TUTORIAL = DOCS / "tutorial.md"
TIMEOUT = 60.0
REQUESTS = 8

# The files the tutorial must write: removing one of its blocks fails the suite.
TUTORIAL_FILES = {
    "mysite/settings.py",
    "mysite/urls.py",
    "mysite/asgi.py",
    "quotes/apps.py",
    "quotes/views.py",
    "quotes/tests.py",
}

# Added to the reader's project by this test only, to observe it: a resource is exited after the
# asgi_shutdown receivers, so it sees whether they closed the client.
PROBE_APP = """
import json, os

from django.apps import AppConfig

from lifespan_signals.resources import register_resource


async def record_shutdown(state):
    yield
    if "LIFESPAN_TEST_TUTORIAL_PROBE" not in os.environ:  # the tutorial's own tests
        return
    client = state.get("http")
    closed = getattr(client, "is_closed", None)
    record = {"pid": os.getpid(), "client": id(client), "closed": closed}
    with open(os.environ["LIFESPAN_TEST_TUTORIAL_PROBE"], "a") as file:
        file.write(json.dumps(record) + "\\n")


class ProbeConfig(AppConfig):
    name = "tutorial_probe"

    def ready(self):
        register_resource(record_shutdown)
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


def tutorial_files() -> dict[str, tuple[str, bool]]:
    """The files the tutorial writes: path -> (code, whether it is added at the end)."""
    files = {}
    for caption, code in code_blocks(TUTORIAL):
        if not caption:
            continue
        path = caption.split()[0]
        assert path not in files, f"{TUTORIAL}: two blocks write {path}"
        files[path] = (code, "(add at the end)" in caption)
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
    for path, (code, append) in tutorial_files().items():
        target = project / path
        assert target.exists(), (
            f"The tutorial edits {path}, which startproject/startapp do not make"
        )
        if append:
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


# -- a loopback upstream that counts connections -------------------------------------------------


class Upstream(http.server.ThreadingHTTPServer):
    """Serves ``/quote.json`` over HTTP/1.1 keep-alive; records each connection's requests."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _QuoteHandler)
        self.lock = threading.Lock()
        self.connections: list[list[str]] = []  # the paths requested, per connection

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _QuoteHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Upstream

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.requests: list[str] = []
            self.server.connections.append(self.requests)

    def do_GET(self) -> None:
        self.requests.append(self.path)
        body = json.dumps({"text": "Errors should never pass silently."}).encode()
        status = 200 if self.path == "/quote.json" else 404
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


# -- serving the tutorial's project --------------------------------------------------------------


def _uvicorn(project: Path) -> list[str]:
    return UVICORN_AUTO.args("mysite.asgi:application", "--app-dir", str(project))


def _runasgi(project: Path) -> list[str]:
    # As the tutorial runs it: the project's manage.py, with the autoreloader.
    return [sys.executable, str(project / "manage.py"), "runasgi", "127.0.0.1:0"]


@pytest.mark.servers
@pytest.mark.parametrize(
    ("command", "server"),
    [(_uvicorn, UVICORN_AUTO), (_runasgi, RUNASGI_RELOAD)],
    ids=["uvicorn", "runasgi"],
)
def test_tutorial_serves_every_request_with_one_client(
    project, upstream, tmp_path, command, server
):
    probe = tmp_path / "probe.jsonl"
    env = {
        "PYTHONPATH": str(project),
        "QUOTES_API": upstream.url,
        "LIFESPAN_TEST_TUTORIAL_PROBE": str(probe),
    }
    stopped_exit = server.stopped_exit
    args = command(project)
    with ServerProcess(
        args, settings="mysite.settings", env=env, reports_port=server.reports_port
    ) as server:
        server.wait_ready("/quote/", TIMEOUT)
        url = server.url("/quote/")
        responses = [get_json(url) for _ in range(REQUESTS)]
        code = server.stop(signal.SIGTERM, TIMEOUT)
        output = server.output()

    assert code == stopped_exit, output
    assert {r["quote"] for r in responses} == {"Errors should never pass silently."}
    # One client served every request ...
    clients = {r["client"] for r in responses}
    assert len(clients) == 1, responses
    requests = [path for connection in upstream.connections for path in connection]
    assert len(requests) >= REQUESTS + 1, upstream.connections  # readiness polls too
    assert set(requests) == {"/quote.json"}
    # ... over its pooled connection (a client per request would open one each; httpx drops an
    # idle connection after 5 s, so allow one more on a slow machine).
    assert len(upstream.connections) <= 2, upstream.connections
    # ... and it was closed at shutdown by the tutorial's asgi_shutdown receiver.
    records = [json.loads(line) for line in probe.read_text().splitlines()]
    assert [(r["client"], r["closed"]) for r in records] == [(clients.pop(), True)], output
    assert traceback_exceptions(output) == [], output
    for leak in ("Unclosed", "ResourceWarning"):
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
