"""No secret is ever printed: a marker secret swept through every way ``LIFESPAN_SIGNALS_CLIENTS``
can be refused (``tests/projects/secretsapp/cases.py``: each check id, and a library's own error
at startup), through the checks, the startup report, the logs at every level, the DEBUG 500 page,
the pre-flight ``manage.py lifespan -v 3``, and every server's startup failure."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import RequestFactory, override_settings
from django.views.debug import ExceptionReporter

from lifespan_signals.checks import check_clients
from lifespan_signals.clients import clients
from lifespan_signals.testing import LifespanFailed, lifespan
from tests.harness.catalogue import (
    GRANIAN,
    GUNICORN,
    HYPERCORN,
    LIFESPAN_DAPHNE,
    RUNASGI,
    UVICORN,
)
from tests.harness.servers import REPO_ROOT
from tests.projects.secretsapp.cases import CASES, MARKER

SETTINGS = "tests.projects.secretsapp.settings"


def assert_hidden(text, where):
    assert MARKER not in text, f"the marker secret is in {where}:\n{text}"


async def start_and_fail():
    async with lifespan():
        raise AssertionError("startup should fail")


@pytest.mark.parametrize("case", list(CASES))
def test_in_process_the_checks_the_report_and_the_logs_hide_it(case, caplog):
    value, check_id = CASES[case]
    caplog.set_level("DEBUG")
    with override_settings(LIFESPAN_SIGNALS_CLIENTS=value):
        errors = check_clients()
        expected = [f"lifespan_signals.{check_id}"] if check_id else []
        assert [error.id for error in errors] == expected
        for error in errors:
            assert_hidden(f"{error.msg}\n{error.hint}", f"the {error.id} message")
        out = io.StringIO()
        try:
            call_command("check", tags=["lifespan_signals"], stdout=out, stderr=out)
        except SystemCheckError as exc:
            out.write(str(exc))
        assert_hidden(out.getvalue(), "manage.py check")
        with pytest.raises(LifespanFailed) as failed:
            async_to_sync(start_and_fail)()
    report = failed.value.message
    assert_hidden(report, "the startup report")
    for failure in failed.value.failures:
        assert_hidden(str(failure), "a Failure")
    if check_id:  # refused as manage.py check refuses it, without a traceback
        assert f"lifespan_signals.{check_id}: " in report
        assert "Traceback" not in report
    assert_hidden(caplog.text, "the logs")
    for record in caplog.records:
        assert_hidden(record.getMessage(), f"a log record of {record.name}")


def error_pages():
    """Django's DEBUG page (HTML and text) for a view that looks a client up outside a lifespan:
    it lists the settings, and the locals of every frame of the traceback."""
    request = RequestFactory().get("/")
    try:
        clients["api"]
    except Exception:
        reporter = ExceptionReporter(request, *sys.exc_info())
        return reporter.get_traceback_html(), reporter.get_traceback_text()
    raise AssertionError("clients['api'] should raise outside a lifespan")


@pytest.mark.parametrize("case", list(CASES))
def test_the_debug_500_page_hides_it(case):
    with override_settings(DEBUG=True, LIFESPAN_SIGNALS_CLIENTS=CASES[case][0]):
        html, text = error_pages()
    assert "LIFESPAN_SIGNALS_CLIENTS" in html
    assert_hidden(html, "the DEBUG 500 page")
    assert_hidden(text, "the DEBUG 500 page's text")


@pytest.mark.parametrize("skip_checks", [False, True], ids=["checks", "skip-checks"])
@pytest.mark.parametrize("case", list(CASES))
def test_the_pre_flight_hides_it(case, skip_checks):
    env = {"DJANGO_SETTINGS_MODULE": SETTINGS, "LIFESPAN_TEST_SECRETS_CASE": case}
    args = [sys.executable, "manage.py", "lifespan", "-v", "3"]
    run = subprocess.run(
        args + (["--skip-checks"] if skip_checks else []),
        cwd=REPO_ROOT,
        env={**_environ(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "lifespan_signals" in output or "***" in output, output
    assert_hidden(output, "manage.py lifespan -v 3")


SERVERS = [UVICORN, HYPERCORN, GRANIAN, GUNICORN, RUNASGI, LIFESPAN_DAPHNE]
SERVER_CASES = ["E011-entry", "E015-nested", "library-auth"]


@pytest.mark.parametrize("case", SERVER_CASES)
@pytest.mark.parametrize("server", [server.param() for server in SERVERS])
def test_every_server_s_startup_failure_hides_it(server, case, serve):
    proc = serve(server, settings=SETTINGS, env={"LIFESPAN_TEST_SECRETS_CASE": case})
    returncode = proc.wait_exit(30)
    output = proc.output()
    assert returncode in server.failed_exits, output
    check_id = CASES[case][1]
    assert (f"lifespan_signals.{check_id}" if check_id else "***") in output, output
    assert_hidden(output, server.name)


def _environ():
    import os

    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def test_a_shutdown_report_that_quotes_an_option_hides_it(caplog):
    # The client's close fails with a message that quotes one of its OPTIONS.
    caplog.set_level("DEBUG")
    name = f"api {MARKER}"
    entry = {"BACKEND": "tests.clients.backends.Recorder", "OPTIONS": {"name": name}}

    async def run():
        async with lifespan():
            pass

    with override_settings(LIFESPAN_SIGNALS_CLIENTS={"api": {**entry}}):
        entry["OPTIONS"]["fail_close"] = True
        with pytest.raises(LifespanFailed) as failed:
            async_to_sync(run)()
    assert "Lifespan shutdown failed (1 failure)" in failed.value.message
    assert "raised RuntimeError: *** cannot close" in failed.value.message
    assert_hidden(failed.value.message, "the shutdown report")
    assert_hidden(caplog.text, "the logs")
