"""``manage.py runasgi`` under stress: stops at the worst moments, a dead parent, a second Ctrl+C,
a broken ``apps.py``, extreme numbers, applications that do not speak lifespan, keep-alive clients.

Real subprocesses on loopback port 0 (``tests.projects.faultapp``'s project), real signals, real
files.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import sys
import threading
import time
from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from lifespan_signals.management.commands.runasgi import Command
from tests.harness.catalogue import CLOSED, RUNASGI_RELOAD, assert_clean
from tests.harness.servers import (
    REPO_ROOT,
    ServerProcess,
    alive,
    events_by_pid,
    get_json,
    group_members,
    http_get,
    read_events,
    traceback_exceptions,
    wait_until,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")

SETTINGS = "tests.projects.faultapp.settings"
TIMEOUT = 30.0


def runasgi(*options, events, **env):
    """``manage.py runasgi`` with ``options`` (the reloader unless ``--noreload``) on port 0."""
    if options and isinstance(options[0], int):
        # Compatibility (branches written against runasgi(port, ...)): the port is ignored, the
        # server binds port 0; use server.url(path) / server.wait_ready(path), not the port.
        options = options[1:]
    return ServerProcess.of(RUNASGI_RELOAD, *options, settings=SETTINGS, events=events, env=env)


def kinds(events):
    return [event["event"] for event in read_events(events)]


def assert_paired(events, output):
    """Every process that started up shut down exactly once, with its clients closed."""
    processes = events_by_pid(
        [e for e in read_events(events) if e["event"] in ("startup", "shutdown")]
    )
    assert processes, output
    assert all(names == ["startup", "shutdown"] for names in processes.values()), (
        processes,
        output,
    )
    assert all(
        event["clients"] == CLOSED for event in read_events(events) if event["event"] == "shutdown"
    )
    assert not any(alive(pid) for pid in processes), processes


def assert_quiet(output):
    assert_clean(output, "Traceback", "race condition")


def touch_until_noticed(watched, events, count=1):
    """Touch ``watched`` until the reloader records its ``count``-th change (and no more)."""
    deadline = time.monotonic() + TIMEOUT
    while kinds(events).count("file-changed") < count:
        assert time.monotonic() < deadline, "the change went unnoticed"
        os.utime(watched)
        end = time.monotonic() + 1.0
        while time.monotonic() < end and kinds(events).count("file-changed") < count:
            time.sleep(0.05)


def serve_runasgi(serve, *options, **env):
    return serve(RUNASGI_RELOAD, *options, settings=SETTINGS, env=env)


def stop(server, how):
    """SIGTERM to the command, or Ctrl+C (SIGINT to its whole process group) as a terminal does."""
    if how == "ctrl-c":
        os.killpg(server.pid, signal.SIGINT)
    else:
        server.send_signal(how)


# -- a stop at any moment of an autoreload restart ends the whole command -------------------------


@pytest.mark.parametrize("how", [signal.SIGTERM, "ctrl-c"], ids=["sigterm", "ctrl-c"])
def test_stop_while_the_old_child_shuts_down_for_a_restart_ends_the_command(
    serve, events, watched, how
):
    env = {"LIFESPAN_TEST_WATCH": str(watched), "LIFESPAN_TEST_HANG": "shutdown"}
    env["LIFESPAN_TEST_HANG_SECONDS"] = "2"  # a slow shutdown: the moment lasts
    server = serve_runasgi(serve, **env)
    server.wait_ready("/health/", TIMEOUT)
    touch_until_noticed(watched, events)
    wait_until(lambda: "hang-start" in kinds(events), TIMEOUT, "the old child's shutdown")
    stop(server, how)
    code = server.wait_exit(TIMEOUT)
    left = group_members(server.pid)
    output = server.output()
    assert code == 0, output
    assert left == [], output  # no new child, nothing of the command's still runs
    assert Counter(kinds(events))["startup"] == 1, output  # no new child started
    assert_paired(events, output)
    assert_quiet(output)


@pytest.mark.parametrize("how", [signal.SIGTERM, "ctrl-c"], ids=["sigterm", "ctrl-c"])
def test_stop_while_the_new_child_starts_up_ends_the_command(serve, events, watched, how):
    env = {"LIFESPAN_TEST_WATCH": str(watched), "LIFESPAN_TEST_HANG": "startup"}
    env["LIFESPAN_TEST_HANG_SECONDS"] = "2"  # a slow startup: the moment lasts
    server = serve_runasgi(serve, **env)
    server.wait_ready("/health/", TIMEOUT)
    touch_until_noticed(watched, events)
    wait_until(lambda: kinds(events).count("hang-start") == 2, TIMEOUT, "the new startup")
    stop(server, how)
    code = server.wait_exit(TIMEOUT)
    left = group_members(server.pid)
    output = server.output()
    assert code == 0, output
    assert left == [], output  # no new child, nothing of the command's still runs
    assert Counter(kinds(events))["startup"] == 2, output  # startup finished, then shutdown
    assert_paired(events, output)
    assert_quiet(output)


# -- orphans, SIGHUP ------------------------------------------------------------------------------


def test_child_shuts_down_when_the_reloader_parent_is_killed(serve, events):
    server = serve_runasgi(serve)
    server.wait_ready("/health/", TIMEOUT)
    child = get_json(server.url("/"))["pid"]
    os.kill(server.pid, signal.SIGKILL)  # no chance to pass anything on
    killed = time.monotonic()
    wait_until(lambda: not alive(child), TIMEOUT, "the orphan to exit")
    took = time.monotonic() - killed
    output = server.output()
    assert kinds(events) == ["startup", "shutdown"], output
    assert read_events(events)[1]["pid"] == child
    assert "runasgi's reloader process is gone; shutting down." in output
    assert took < 10, took  # about a second, and a shutdown, on a loaded machine
    assert_quiet(output)


@pytest.mark.parametrize("options", [(), ("--noreload",)], ids=["reload", "noreload"])
def test_sighup_stops_like_sigterm(serve, events, options):
    server = serve_runasgi(serve, *options)
    server.wait_ready("/health/", TIMEOUT)
    code = server.stop(signal.SIGHUP, TIMEOUT)
    output = server.output()
    assert code == 0, output
    assert kinds(events) == ["startup", "shutdown"], output
    assert_paired(events, output)
    assert_quiet(output)


# -- Ctrl+C once, and twice -----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["ctrl-c", signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("options", [(), ("--noreload",)], ids=["reload", "noreload"])
def test_second_stop_forces_the_exit_and_says_what_it_abandons(serve, events, options, how):
    env = {"LIFESPAN_TEST_HANG": "shutdown", "LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT": "None"}
    server = serve_runasgi(serve, *options, **env)
    server.wait_ready("/health/", TIMEOUT)
    stop(server, how)
    wait_until(lambda: "hang-start" in kinds(events), TIMEOUT, "the hanging shutdown")
    stop(server, how)
    code = server.wait_exit(TIMEOUT)
    output = server.output()
    assert code == 1, output
    assert "Forced exit: abandoning lifespan shutdown." in output
    assert_quiet(output)


def test_one_ctrl_c_is_not_taken_for_two_with_the_reloader(serve, events):
    # The terminal sends SIGINT to every process of the group; the child must not count the
    # parent's passing it on as a second one.
    env = {"LIFESPAN_TEST_HANG": "shutdown", "LIFESPAN_TEST_HANG_SECONDS": "1.5"}
    server = serve_runasgi(serve, **env)
    server.wait_ready("/health/", TIMEOUT)
    os.killpg(server.pid, signal.SIGINT)
    code = server.wait_exit(TIMEOUT)
    output = server.output()
    assert code == 0, output
    assert "Forced exit" not in output
    assert "Lifespan shutdown complete" in output
    assert_paired(events, output)
    assert_quiet(output)


@pytest.mark.servers
def test_servers_under_test_take_ctrl_c_even_when_the_suite_ignores_it(events):
    # `make test &` starts the suite with SIGINT ignored; the servers must not inherit that.
    server = runasgi("--noreload", events=events)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        server.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        server.wait_ready("/health/", TIMEOUT)
        os.killpg(server.pid, signal.SIGINT)
        code = server.wait_exit(TIMEOUT)
        output = server.output()
    finally:
        server.kill()
    assert code == 0, output
    assert kinds(events) == ["startup", "shutdown"]


# -- recovery from a broken project, like runserver -----------------------------------------------


APPS_PY = (
    "from django.apps import AppConfig\n\n\nclass ExtraConfig(AppConfig){}\n    name = 'extraapp'\n"
)
GOOD_APP, BROKEN_APP = APPS_PY.format(":"), APPS_PY.format("")


def _write(path, text):
    path.write_text(text)
    later = time.time() + 2  # newer than anything the reloader saw, whatever the clock's grain
    os.utime(path, (later, later))


def _serves(server):
    """Whether the last child that reported its port answers on it."""
    try:
        return http_get(server.url("/health/"), timeout=1.0)[0] == 200
    except (OSError, http.client.HTTPException):
        return False


def test_error_in_apps_py_with_the_reloader_is_shown_and_fixed_like_runserver(
    serve, events, tmp_path
):
    package = tmp_path / "extraapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    _write(package / "apps.py", GOOD_APP)
    env = {
        "LIFESPAN_TEST_EXTRA_APP": "extraapp",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(tmp_path)]),
    }
    server = serve_runasgi(serve, **env)

    def watching():  # how many times a reloader started watching apps.py (each child's)
        return server.stderr().count("extraapp/apps.py first seen with mtime")

    server.wait_ready("/health/", TIMEOUT)
    wait_until(lambda: watching() == 1, TIMEOUT, "the reloader watching apps.py")
    _write(package / "apps.py", BROKEN_APP)
    wait_until(lambda: "SyntaxError" in server.stderr(), TIMEOUT, "the error")
    assert kinds(events) == ["startup", "shutdown"]
    # The broken child keeps watching (runserver's recovery): once its reloader has seen apps.py,
    # the fix is noticed, and a new child serves.
    wait_until(lambda: watching() == 2, TIMEOUT, "the broken child watching apps.py")
    assert server.returncode is None, server.output()
    _write(package / "apps.py", GOOD_APP)
    wait_until(lambda: _serves(server), TIMEOUT, "the fixed project served")
    code = server.stop(signal.SIGTERM, TIMEOUT)
    output = server.output()
    assert code == 0, output
    assert kinds(events) == ["startup", "shutdown"] * 2, output
    assert traceback_exceptions(output) == ["SyntaxError: expected ':'"], output


# -- numbers at the edges -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "1e12"])
def test_huge_timeouts_mean_no_limit_not_a_crash(serve, events, value):
    # The settings must be finite (lifespan_signals.E001/E002 refuse inf, test_checks.py); the
    # command's options take inf for "no limit".
    huge = "1e12"
    env = {"LIFESPAN_SIGNALS_STARTUP_TIMEOUT": huge, "LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT": huge}
    server = serve_runasgi(serve, "--graceful-timeout", value, **env)
    server.wait_ready("/health/", TIMEOUT)
    code = server.stop(signal.SIGTERM, TIMEOUT)
    output = server.output()
    assert code == 0, output
    assert kinds(events) == ["startup", "shutdown"], output
    assert "OverflowError" not in output
    assert_quiet(output)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--http-timeout", "1.5"], {"http_timeout": 1.5}),
        (["--websocket-handshake-timeout", "1.5"], {"websocket_handshake_timeout": 1.5}),
        (["--graceful-timeout", "0.25"], {"graceful_timeout": 0.25}),
        (["--graceful-timeout", "inf", "--http-timeout=1e12"], {"graceful_timeout": None}),
        (["--http-timeout", "1e12"], {"http_timeout": None}),
        (["--nothreading"], {"use_threading": False}),
        (["--nostatic"], {"use_static_handler": False}),
    ],
)
def test_options_take_seconds_as_numbers_and_runservers_options(arguments, expected):
    options = vars(Command().create_parser("manage.py", "runasgi").parse_args(arguments))
    assert {key: options[key] for key in expected} == expected


@pytest.mark.parametrize("option", ["--graceful-timeout", "--http-timeout"])
@pytest.mark.parametrize("value", ["-1", "-0.5", "-inf"])
def test_negative_seconds_say_what_is_wrong(option, value):
    message = f"argument {option}: should be a number of seconds, 0 or more, not {value!r}"
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("runasgi", "--noreload", option, value)


# -- an application that does not speak lifespan --------------------------------------------------


@pytest.mark.parametrize(
    ("app", "explanation"),
    [
        ("raises", "it raised ValueError: no lifespan here"),
        ("returns", "ended during lifespan startup without replying."),
    ],
)
def test_the_drivers_explanation_is_printed_when_startup_fails(serve, events, app, explanation):
    env = {"LIFESPAN_TEST_ASGI_APPLICATION": f"tests.projects.faultapp.rawapps.{app}"}
    server = serve_runasgi(serve, "--noreload", "--lifespan", "on", **env)  # auto serves it
    code = server.wait_exit(TIMEOUT)
    output = server.output()
    assert code == 1, output
    assert explanation in output
    assert "Wrap it in lifespan_signals.asgi.LifespanWrapper." in output
    assert output.index(explanation) < output.index("Lifespan startup failed (see above)")


def test_an_application_that_never_replies_is_given_up_on_and_named(serve, events):
    env = {
        "LIFESPAN_TEST_ASGI_APPLICATION": "tests.projects.faultapp.rawapps.silent",
        "LIFESPAN_SIGNALS_STARTUP_TIMEOUT": "0.2",
        "LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT": "0.2",
    }
    server = serve_runasgi(serve, "--noreload", **env)
    code = server.wait_exit(TIMEOUT)
    output = server.output()
    assert code == 1, output
    # The backstop: the application's own budgets (0.2 + 0.2 s) and the driver's grace (5 s).
    assert "Lifespan startup did not finish within 5.4 s." in output
    assert "Starting ASGI" not in output


def test_the_drivers_explanation_is_printed_when_shutdown_fails(serve, events):
    env = {"LIFESPAN_TEST_ASGI_APPLICATION": "tests.projects.faultapp.rawapps.raises_at_shutdown"}
    server = serve_runasgi(serve, "--noreload", **env)
    wait_until(lambda: "Quit the server with" in server.output(), TIMEOUT, "serving")
    code = server.stop(signal.SIGTERM, TIMEOUT)
    output = server.output()
    assert code == 0, output
    assert "ended during lifespan shutdown without replying: it raised RuntimeError" in output
    assert "its report is above" not in output


# -- keep-alive clients during the drain ----------------------------------------------------------


def _get(connection, path):
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.getheader("connection"), response.read()


def test_keep_alive_connections_start_no_request_that_is_not_waited_for(serve, events):
    server = serve_runasgi(serve, "--noreload")
    server.wait_ready("/health/", TIMEOUT)
    port = server.wait_port()
    busy = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    assert _get(idle, "/health/")[0] == 200  # now an idle keep-alive connection
    result = {}
    thread = threading.Thread(target=lambda: result.update(busy=_get(busy, "/slow/?seconds=1.5")))
    thread.start()
    wait_until(lambda: "slow-start" in kinds(events), TIMEOUT, "the slow request")
    server.send_signal(signal.SIGTERM)
    wait_until(lambda: "Waiting for 1 in-flight" in server.output(), TIMEOUT, "the drain")
    try:  # a new request on the idle connection, while the drain runs
        late = _get(idle, "/slow/?seconds=3")
    except (http.client.HTTPException, OSError) as exc:
        late = exc  # refused: the connection was closed
    thread.join(TIMEOUT)
    code = server.wait_exit(TIMEOUT)
    output = server.output()
    busy.close()
    idle.close()
    assert code == 0, output
    status, connection, body = result["busy"]
    assert (status, connection) == (200, "close"), body  # answered, then the connection closes
    assert b'"aiohttp_closed": false' in body
    if not isinstance(late, Exception):  # it was started: then it was waited for
        assert late[0] == 200, late
        assert b'"aiohttp_closed": false' in late[2]
    recorded = kinds(events)
    assert recorded[-1] == "shutdown", recorded
    assert recorded.count("slow-start") == recorded.count("slow-end"), recorded
    assert_quiet(output)
