"""``manage.py runasgi``: real subprocesses on loopback port 0, stopped with real signals."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import threading
import time
from collections import Counter
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from lifespan_signals.management.commands.runasgi import Command
from tests.harness.catalogue import CLOSED, RUNASGI_RELOAD, assert_clean
from tests.harness.servers import ServerProcess, get_json, http_get, read_events, wait_until

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")

TIMEOUT = 20.0
SETTINGS = "tests.projects.serverapp.settings"
# tests.projects.faultapp adds the LIFESPAN_TEST_WATCH file of a test's own to the reloader's watch
# list: restarts triggered through it reach no other test's server, also when tests run in parallel.
WATCHING = "tests.projects.faultapp.settings"


def runasgi(serve, *options, settings=SETTINGS, **env):
    """``manage.py runasgi`` with ``options`` (the reloader unless ``--noreload``) on port 0."""
    return serve(RUNASGI_RELOAD, *options, settings=settings, env=env)


def kinds(events, skip=("file-changed",)):
    return [event["event"] for event in read_events(events) if event["event"] not in skip]


def test_lifespan_runs_once_around_serving_and_state_reaches_requests(serve, events):
    server = runasgi(serve, "--noreload")
    server.wait_ready("/health/", TIMEOUT)
    # startup completed before the first connection was accepted
    assert kinds(events) == ["startup"]
    first = get_json(server.url("/"))
    second = get_json(server.url("/"))
    assert first["pid"] == second["pid"] == server.pid
    assert (first["aiohttp"], first["httpx"]) == (second["aiohttp"], second["httpx"])
    assert not first["aiohttp_closed"]
    assert not first["httpx_closed"]
    assert second["state_keys"] == ["aiohttp", "httpx"]  # no per-request key leaked
    startup = read_events(events)[0]
    assert (startup["aiohttp"], startup["httpx"]) == (first["aiohttp"], first["httpx"])
    port = server.wait_port()
    assert server.stop(signal.SIGTERM, TIMEOUT) == 0
    output = server.output()
    assert kinds(events) == ["startup", "shutdown"]
    assert read_events(events)[1]["clients"] == CLOSED
    assert "Starting ASGI/Daphne version" in output
    assert f"server with lifespan at http://127.0.0.1:{port}/" in output
    assert port != 0  # the banner names the port bound, not the 0 asked for
    assert "Quit the server with CONTROL-C." in output
    assert "Lifespan startup complete in" in output
    assert "Lifespan shutdown complete in" in output
    assert_clean(output, "Traceback")


@pytest.mark.parametrize("reload", [False, True], ids=["noreload", "reload"])
@pytest.mark.parametrize("how", ["sigterm", "ctrl-c"])
def test_sigterm_and_ctrl_c_shut_down_once_and_exit_cleanly(serve, events, reload, how):
    server = runasgi(serve, *([] if reload else ["--noreload"]))
    server.wait_ready("/health/", TIMEOUT)
    get_json(server.url("/"))
    if how == "sigterm":
        code = server.stop(signal.SIGTERM, TIMEOUT)
    else:  # the terminal sends SIGINT to the whole foreground process group
        os.killpg(server.pid, signal.SIGINT)
        code = server.wait_exit(TIMEOUT)
    output = server.output()
    assert code == 0, output
    recorded = read_events(events)
    assert kinds(events) == ["startup", "shutdown"], output
    assert recorded[0]["pid"] == recorded[1]["pid"]
    assert recorded[1]["clients"] == CLOSED
    assert_clean(output, "Traceback")


def test_each_autoreload_restart_shuts_the_old_process_down_first(serve, events, watched):
    server = runasgi(serve, settings=WATCHING, LIFESPAN_TEST_WATCH=str(watched))
    server.wait_ready("/health/", TIMEOUT)
    for restart in (1, 2):
        before = get_json(server.url("/"))["pid"]
        os.utime(watched)  # a code change, as far as the reloader can tell
        wait_until(
            lambda n=restart: kinds(events).count("startup") == n + 1,
            TIMEOUT,
            f"restart {restart}",
        )
        server.wait_ready("/health/", TIMEOUT)  # on the new child's port
        assert get_json(server.url("/"))["pid"] != before
    assert server.stop(signal.SIGTERM, TIMEOUT) == 0
    output = server.output()
    recorded = [event for event in read_events(events) if event["event"] != "file-changed"]
    # Only this test's file restarts this server: exactly two restarts, the old one ends first.
    assert kinds(events) == ["startup", "shutdown"] * 3, output
    by_pid = Counter((event["pid"], event["event"]) for event in recorded)
    assert len({event["pid"] for event in recorded}) == 3
    assert set(by_pid.values()) == {1}
    assert all(event["clients"] == CLOSED for event in recorded if event["event"] == "shutdown")
    assert_clean(output, "Traceback")


def test_startup_failure_without_reloader_exits_non_zero_without_serving(serve, events):
    server = runasgi(serve, "--noreload", LIFESPAN_TEST_FAIL_STARTUP="1")
    code = server.wait_exit(TIMEOUT)
    output = server.output()
    assert code == 1, output
    assert (
        "tests.projects.serverapp.apps.fail_startup raised RuntimeError: boom at startup" in output
    )
    assert "CommandError: Lifespan startup failed (see above); not serving." in output
    assert "Starting ASGI/Daphne" not in output  # it never listened: no banner, no port
    # what the healthy receiver opened was closed
    assert Counter(kinds(events)) == {"startup": 1, "fail_startup": 1, "shutdown": 1}
    assert kinds(events)[-1] == "shutdown"
    assert read_events(events)[-1]["clients"] == CLOSED
    assert_clean(output)


def test_startup_failure_with_reloader_waits_for_a_code_change(serve, events, watched):
    server = runasgi(
        serve, settings=WATCHING, LIFESPAN_TEST_WATCH=str(watched), LIFESPAN_TEST_FAIL_STARTUP="1"
    )
    wait_until(lambda: "save a fix to try again" in server.output(), TIMEOUT, "the failure")
    assert server.returncode is None  # still watching
    os.utime(watched)
    wait_until(lambda: kinds(events).count("fail_startup") == 2, TIMEOUT, "retry")
    wait_until(lambda: server.output().count("save a fix to try again") == 2, TIMEOUT, "report")
    assert server.returncode is None  # and watching again
    assert server.stop(signal.SIGTERM, TIMEOUT) == 0
    output = server.output()
    assert output.count("tests.projects.serverapp.apps.fail_startup raised RuntimeError") == 2
    assert kinds(events).count("shutdown") == 2
    assert "Starting ASGI/Daphne" not in output


def test_plain_django_application_still_gets_the_signals(serve, events):
    server = runasgi(serve, "--noreload", settings="tests.projects.plainasgi.settings")
    server.wait_ready("/health/", TIMEOUT)
    assert get_json(server.url("/"))["state_keys"] == ["aiohttp", "httpx"]
    assert server.stop(signal.SIGTERM, TIMEOUT) == 0
    output = server.output()
    assert kinds(events) == ["startup", "shutdown"]
    assert (
        output.count(
            "tests.projects.plainasgi.asgi.application does not speak the ASGI lifespan protocol"
        )
        == 1
    )
    assert_clean(output, "Traceback")


@pytest.mark.parametrize("options", [[], ["--nostatic"]], ids=["static", "nostatic"])
def test_static_files_served_in_debug_like_runserver(serve, tmp_path, options):
    env = {"SAMPLE_DB_PATH": str(tmp_path / "db.sqlite3"), "DJANGO_DEBUG": "1"}
    server = runasgi(serve, "--noreload", *options, settings="sampleproject.settings", **env)
    server.wait_ready("/health/", TIMEOUT)
    status, body = http_get(server.url("/static/admin/css/base.css"))
    assert server.stop(signal.SIGTERM, TIMEOUT) == 0
    if options:
        assert status == 404
    else:
        assert (status, b"body" in body) == (200, True)


# -- the command in process: arguments, errors, help ---------------------------------------


@pytest.mark.parametrize(
    ("addrport", "message"),
    [
        ("abc", '"abc" is not a valid port number or address:port pair.'),
        ("127.0.0.1:x", '"127.0.0.1:x" is not a valid port number or address:port pair.'),
    ],
)
def test_bad_addrport_is_a_command_error(addrport, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("runasgi", addrport)


def test_help_documents_every_option():
    parser = Command().create_parser("manage.py", "runasgi")
    text = parser.format_help()
    for option in (
        "--ipv6",
        "--noreload",
        "--http-timeout",
        "--websocket-handshake-timeout",
        "--graceful-timeout",
        "--skip-checks",
    ):
        assert option in text
    for action in parser._actions:
        assert action.help, f"{action.option_strings or action.dest} has no help"


def test_without_daphne_the_error_says_what_to_install():
    # None in sys.modules makes the import fail, as when Daphne is not installed.
    with (
        mock.patch.dict(sys.modules, {"lifespan_signals.daphne.server": None}),
        pytest.raises(CommandError) as caught,
    ):
        call_command("runasgi", "--noreload", "--skip-checks", "127.0.0.1:0")
    assert str(caught.value).startswith("runasgi serves with Daphne, which is not installed (")
    assert str(caught.value).endswith("Install it: pip install 'lifespan-signals[daphne]'.")


def test_no_application_found_is_a_command_error():
    # tests.settings has no ASGI_APPLICATION and there is no tests/asgi.py
    with pytest.raises(
        CommandError, match=r"runasgi found no ASGI application\. Set ASGI_APPLICATION"
    ):
        Command().get_application({})


@override_settings(ASGI_APPLICATION="tests.projects.plainasgi.asgi.application")
def test_plain_application_is_wrapped(capsys):
    from lifespan_signals.asgi import LifespanWrapper

    command = Command()
    app = command.get_application({"use_static_handler": False})
    assert isinstance(app, LifespanWrapper)


@pytest.mark.servers
@pytest.mark.parametrize("reload", [False, True], ids=["noreload", "reload"])
def test_port_in_use_is_refused_before_startup_in_runservers_words(events, reload):
    # The one case for a fixed port: one this test holds, listening, until the server is gone.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        options = [] if reload else ["--noreload"]
        command = [sys.executable, "manage.py", "runasgi", *options, f"127.0.0.1:{port}"]
        env = {"LIFESPAN_TEST_EVENTS": str(events)}
        with ServerProcess(command, settings=SETTINGS, env=env) as server:
            code = server.wait_exit(TIMEOUT)
            output = server.output()
    assert code == 1, output
    assert server.stderr().splitlines() == ["Error: That port is already in use."], output
    assert read_events(events) == []  # no receiver ran: nothing was opened for nothing


@pytest.mark.servers
@pytest.mark.parametrize("port", ["65536", "99999"])
def test_port_out_of_range_is_refused_before_startup(events, port):
    command = [sys.executable, "manage.py", "runasgi", "--noreload", f"127.0.0.1:{port}"]
    server = ServerProcess(
        command,
        settings="tests.projects.serverapp.settings",
        env={"LIFESPAN_TEST_EVENTS": str(events)},
    )
    with server:
        code = server.wait_exit(TIMEOUT)
        output = server.output()
    assert code == 1, output
    assert server.stderr().splitlines() == [
        f"Error: Port {port} is out of range: use a port from 0 to 65535."
    ], output
    assert read_events(events) == []


def _get_in_thread(url):
    """Start a GET in a thread; return (thread, result dict) to join and inspect later."""
    result = {}

    def run():
        try:
            result["response"] = http_get(url, timeout=TIMEOUT)
        except OSError as exc:  # the server closed the connection (or timed out: see the test)
            result["error"] = exc
        except BaseException as exc:  # anything else is the test's failure, not an answer
            result["unexpected"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_in_flight_requests_finish_before_shutdown(serve, events):
    server = runasgi(serve, "--noreload")
    server.wait_ready("/health/", TIMEOUT)
    requests = [_get_in_thread(server.url("/slow/?seconds=1")) for _ in range(3)]
    wait_until(lambda: kinds(events).count("slow-start") == 3, TIMEOUT, "requests")
    assert server.stop(signal.SIGTERM, TIMEOUT) == 0
    output = server.output()
    for thread, result in requests:
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        assert set(result) == {"response"}, result
        status, body = result["response"]
        assert status == 200
        assert json.loads(body) == {"slept": True, "aiohttp_closed": False}
    recorded = kinds(events)
    assert recorded == ["startup", *["slow-start"] * 3, *["slow-end"] * 3, "shutdown"]
    assert "Waiting for 3 in-flight request(s) to finish." in output
    assert_clean(output, "Traceback")


def test_graceful_timeout_bounds_the_wait_for_in_flight_requests(serve, events):
    server = runasgi(serve, "--noreload", "--graceful-timeout", "0.5")
    server.wait_ready("/health/", TIMEOUT)
    thread, result = _get_in_thread(server.url("/slow/?seconds=60"))
    wait_until(lambda: "slow-start" in kinds(events), TIMEOUT, "the request")
    started = time.monotonic()
    assert server.stop(signal.SIGTERM, TIMEOUT) == 0
    assert time.monotonic() - started < 10
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    # The request was answered with an error status, never a 200 ...
    assert len(result) == 1, result
    if "response" in result:
        assert result["response"][0] != 200, result
    else:  # ... or cut off: its connection closed, well before its own 20 s timeout.
        assert isinstance(result["error"], OSError), result
        assert not isinstance(result["error"], TimeoutError), result
    # The view itself was cancelled, before shutdown closed the clients it uses.
    assert kinds(events) == ["startup", "slow-start", "slow-cancelled", "shutdown"]


@pytest.mark.parametrize("value", ["abc", "-1", "nan"])
def test_bad_graceful_timeout_is_a_clear_error(value):
    message = (
        f"argument --graceful-timeout: should be a number of seconds, 0 or more, not {value!r}"
    )
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("runasgi", "--noreload", f"--graceful-timeout={value}")


def test_backstops_cover_a_failed_startups_shutdown():
    from lifespan_signals.lifespan.host import backstop_timeouts

    assert backstop_timeouts(30.0, 10.0) == (45.0, 15.0)
    assert backstop_timeouts(None, 10.0) == (None, 15.0)
    assert backstop_timeouts(30.0, None) == (None, None)


@override_settings(
    INSTALLED_APPS=[
        "daphne",
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "django.contrib.staticfiles",
        "lifespan_signals",
    ],
    STATIC_URL="/static/",
)
def test_daphne_in_installed_apps_keeps_its_runserver_and_check():
    from django.core.management import get_commands

    get_commands.cache_clear()
    try:
        commands = get_commands()
        assert commands["runserver"] == "daphne"  # Daphne's override is left alone
        assert commands["runasgi"] == "lifespan_signals"
        call_command("check")  # no daphne.E001: daphne is before staticfiles
        options = Command().create_parser("manage.py", "runasgi").format_help()
        assert "--nostatic" in options
    finally:
        get_commands.cache_clear()
        # DaphneConfig.ready() registered Daphne's check for good; it returns None (not a list)
        # when neither daphne nor staticfiles is installed, which breaks later tests' checks.
        from daphne.checks import check_daphne_installed
        from django.core.checks import registry

        registry.registry.registered_checks.discard(check_daphne_installed)
