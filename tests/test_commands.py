"""``LifespanCommand`` and ``manage.py lifespan``: real commands in subprocesses, real signals.

The commands run under ``tests.projects.commandsapp.settings``: the server-test project, whose
startup receiver opens an aiohttp session and an httpx client (usable only on the loop that made
them) and whose shutdown receiver closes them, recording both in the events file.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import io
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from typing import ClassVar

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.test import override_settings

from lifespan_signals.commands import LifespanCommand
from lifespan_signals.management.commands.lifespan import Command as LifespanPreflight
from lifespan_signals.resources import register_resource, unregister_resource
from lifespan_signals.signals import asgi_shutdown, asgi_startup
from lifespan_signals.state import LifespanNotStarted, get_state
from tests.harness.in_process import connected
from tests.harness.servers import ServerProcess, get_json, read_events, wait_until
from tests.projects.commandsapp.nolifespan import no_lifespan

TIMEOUT = 20.0
CLOSED = {"aiohttp": {"same": True, "closed": True}, "httpx": {"same": True, "closed": True}}
LEAKS = ("Unclosed client session", "Unclosed connector", "Task was destroyed", "Traceback")


def manage(*args, events, env=None):
    return ServerProcess(
        [sys.executable, "manage.py", *args],
        settings="tests.projects.commandsapp.settings",
        env={"LIFESPAN_TEST_EVENTS": str(events), **(env or {})},
    )


def run(*args, events, env=None):
    with manage(*args, events=events, env=env) as process:
        code = process.wait_exit(TIMEOUT)
        return code, process.stdout(), process.stderr()


def kinds(events):
    return [event["event"] for event in read_events(events)]


def assert_clean(output):
    for leak in LEAKS:
        assert leak not in output, f"{leak!r} in output:\n{output}"


@pytest.fixture
def events(tmp_path):
    return tmp_path / "events.jsonl"


# -- LifespanCommand, as real commands ----------------------------------------------------------

COMMANDS = ["use_clients", "use_clients_async"]


@pytest.mark.parametrize("command", COMMANDS)
def test_handle_runs_inside_the_lifespan_with_its_clients_on_their_loop(command, events):
    code, stdout, stderr = run(command, events=events)
    assert code == 0, stderr
    recorded = read_events(events)
    assert kinds(events) == ["startup", "handle", "shutdown"], stderr
    handle = recorded[1]
    # the very session startup opened, still open, and used on the loop it was made on
    assert handle == {
        **handle,
        "same_loop": True,
        "aiohttp": recorded[0]["aiohttp"],
        "closed": False,
        "keys": ["aiohttp", "httpx"],
    }
    assert json.loads(stdout) == {key: handle[key] for key in json.loads(stdout)}
    assert recorded[2]["clients"] == CLOSED
    assert len({event["pid"] for event in recorded}) == 1
    assert_clean(stderr)


@pytest.mark.parametrize("command", COMMANDS)
def test_shutdown_runs_when_handle_fails(command, events):
    code, _, stderr = run(command, "--fail", events=events)
    assert code == 1
    assert "CommandError: handle() failed on purpose" in stderr
    assert kinds(events) == ["startup", "handle", "shutdown"]
    assert read_events(events)[2]["clients"] == CLOSED
    assert_clean(stderr.replace("CommandError", ""))


@pytest.mark.parametrize("command", COMMANDS)
def test_failed_startup_exits_1_with_the_report_and_handle_does_not_run(command, events):
    code, _, stderr = run(command, events=events, env={"LIFESPAN_TEST_FAIL_STARTUP": "1"})
    assert code == 1
    assert "CommandError: Lifespan startup failed, so the command did not run." in stderr
    assert (
        "tests.projects.serverapp.apps.fail_startup raised RuntimeError: boom at startup" in stderr
    )
    assert stderr.count("fail_startup raised RuntimeError") == 1  # said once
    assert "handle" not in kinds(events)
    assert sorted(kinds(events)) == ["fail_startup", "shutdown", "startup"]
    assert read_events(events)[-1]["clients"] == CLOSED


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("command", COMMANDS)
def test_ctrl_c_and_sigterm_in_handle_still_shut_down(command, sig, events):
    with manage(command, "--sleep", "60", events=events) as process:
        wait_until(lambda: "handle" in kinds(events), TIMEOUT, "handle() to start")
        # The terminal sends Ctrl+C to the foreground process group.
        os.killpg(process.pid, sig) if sig == signal.SIGINT else os.kill(process.pid, sig)
        code = process.wait_exit(TIMEOUT)
        stderr = process.stderr()
    # Python's exit on an uncaught KeyboardInterrupt; 128 + 15 after SIGTERM, as a shell shows it
    assert code == (-signal.SIGINT if sig == signal.SIGINT else 143), stderr
    recorded = kinds(events)
    assert "handle-end" not in recorded
    assert recorded[-1] == "shutdown", stderr
    assert recorded.count("shutdown") == 1
    assert read_events(events)[-1]["clients"] == CLOSED
    if command == "use_clients_async":  # cancelled, and ended, before shutdown
        assert recorded == ["startup", "handle", "handle-cancelled", "shutdown"]
    assert ("KeyboardInterrupt" in stderr) is (sig == signal.SIGINT)
    assert ("Traceback" in stderr) is (sig == signal.SIGINT)  # SIGTERM: a quiet exit
    for leak in LEAKS[:-1]:
        assert leak not in stderr


# -- manage.py lifespan -------------------------------------------------------------------------


def test_preflight_lists_each_receiver_with_its_time_and_exits_0(events):
    code, stdout, stderr = run("lifespan", events=events)
    assert code == 0, stderr
    assert kinds(events) == ["startup", "shutdown"]
    assert re.search(
        r"^Lifespan startup:\n"
        r"  receiver  tests\.projects\.serverapp\.apps\.open_clients +[\d.]+ ms\n"
        r"Lifespan shutdown:\n"
        r"  receiver  tests\.projects\.serverapp\.apps\.close_clients +[\d.]+ ms\n"
        r"Lifespan startup and shutdown succeeded\.\n$",
        stdout,
    ), stdout
    assert_clean(stderr)


def test_preflight_failure_exits_1_with_the_report(events):
    env = {"LIFESPAN_TEST_FAIL_STARTUP": "1"}
    code, stdout, stderr = run("lifespan", events=events, env=env)
    assert code == 1
    assert re.search(
        r"  receiver  tests\.projects\.serverapp\.apps\.fail_startup +[\d.]+ ms  FAILED", stdout
    )
    assert "succeeded" not in stdout
    assert "CommandError: Lifespan startup failed, so the command did not run." in stderr
    assert (
        "tests.projects.serverapp.apps.fail_startup raised RuntimeError: boom at startup" in stderr
    )
    assert read_events(events)[-1]["clients"] == CLOSED


def test_preflight_verbosity_0_is_silent_on_success(events):
    code, stdout, stderr = run("lifespan", "--verbosity", "0", events=events)
    assert (code, stdout) == (0, ""), stderr
    assert kinds(events) == ["startup", "shutdown"]


# -- in process: resources, failing shutdown, get_state ------------------------------------------


class Probe(LifespanCommand):
    """Records what handle() saw."""

    seen: list = []

    def handle(self, *args, **options):
        self.seen.append(dict(get_state()))
        return "handled"


async def put_resource(state):
    state["resource"] = "open"
    yield
    state.pop("resource")


async def open_client(*, state, **kwargs):
    state["client"] = "client"


async def fail_shutdown(**kwargs):
    raise RuntimeError("boom at shutdown")


def test_resources_and_receivers_in_process_and_get_state_after(capsys):
    register_resource(put_resource)
    try:
        with connected(asgi_startup, open_client):
            call_command(LifespanPreflight())
            Probe.seen.clear()
            call_command(Probe())
    finally:
        unregister_resource(put_resource)
    out = capsys.readouterr().out
    assert re.search(r"  resource  tests\.test_commands\.put_resource +[\d.]+ ms\n", out), out
    assert re.search(r"  receiver  tests\.test_commands\.open_client +[\d.]+ ms\n", out), out
    assert Probe.seen == [{"resource": "open", "client": "client"}]
    with pytest.raises(LifespanNotStarted):
        get_state()  # only while the command runs


def test_preflight_verbosity_2_shows_the_state_keys(capsys):
    with connected(asgi_startup, open_client):
        call_command("lifespan", verbosity=2)
    out = capsys.readouterr().out
    assert "Lifespan startup complete; state keys: ['client']\n" in out


def test_an_application_without_lifespan_is_a_command_error_with_the_drivers_report():
    class Command(Probe):
        lifespan_app = no_lifespan

    Probe.seen.clear()
    with pytest.raises(CommandError) as raised:
        call_command(Command())
    assert str(raised.value).startswith(
        "Lifespan startup failed, so the command did not run.\n\n"
        "The application <function no_lifespan"
    )
    assert "it raised ValueError: no lifespan here" in str(raised.value)
    assert Probe.seen == []


def test_failed_shutdown_after_a_good_handle_is_a_command_error(caplog):
    with (
        connected(asgi_shutdown, fail_shutdown),
        pytest.raises(CommandError) as raised,
    ):
        call_command(Probe())
    # the report went to the log: the error says so rather than repeat it
    assert str(raised.value) == "Lifespan shutdown failed. The report is above."
    assert "tests.test_commands.fail_shutdown raised RuntimeError: boom at shutdown" in caplog.text


def test_preflight_help():
    parser = LifespanPreflight().create_parser("manage.py", "lifespan")
    assert "pre-flight" in parser.format_help()
    assert "--verbosity" in parser.format_help()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_during_startup_lets_it_finish_then_shuts_down(events):
    env = {"LIFESPAN_TEST_HANG": "startup", "LIFESPAN_TEST_HANG_SECONDS": "2"}
    command = [sys.executable, "manage.py", "lifespan"]
    env = {"LIFESPAN_TEST_EVENTS": str(events), **env}
    with ServerProcess(command, settings="tests.projects.faultapp.settings", env=env) as process:
        wait_until(lambda: "hang-start" in kinds(events), TIMEOUT, "startup to begin")
        os.kill(process.pid, signal.SIGTERM)
        code = process.wait_exit(TIMEOUT)
        stdout, stderr = process.stdout(), process.stderr()
    assert code == 143, stderr
    assert sorted(kinds(events)) == ["hang-start", "shutdown", "startup"]
    assert kinds(events)[-1] == "shutdown"
    assert read_events(events)[-1]["clients"] == CLOSED
    assert "succeeded" not in stdout
    assert "Lifespan shutdown complete" in stderr


HANGS_AT_SHUTDOWN = {"LIFESPAN_TEST_HANG": "shutdown", "LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT": "None"}
FORCED = "Forced exit: abandoning lifespan shutdown."


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_second_signal_while_shutdown_hangs_exits_at_once(events, sig):
    # The first ends the command; shutdown then hangs with no time limit; the second ends it all.
    command = [sys.executable, "manage.py", "lifespan", "run", "shell", "-c",
               "import time; time.sleep(60)"]  # fmt: skip
    env = {"LIFESPAN_TEST_EVENTS": str(events), **HANGS_AT_SHUTDOWN}
    with ServerProcess(command, settings="tests.projects.faultapp.settings", env=env) as process:
        wait_until(lambda: "startup" in kinds(events), TIMEOUT, "startup")
        process.send_signal(sig)
        wait_until(lambda: "hang-start" in kinds(events), TIMEOUT, "shutdown to begin")
        process.send_signal(sig)
        code = process.wait_exit(TIMEOUT)
        stderr = process.stderr()
    assert code == 1, stderr
    assert stderr.rstrip().endswith(FORCED), stderr
    assert "Lifespan shutdown complete" not in stderr  # abandoned: the hang never ended


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_signals_while_the_preflight_shutdown_hangs_the_second_exits_at_once(events):
    command = [sys.executable, "manage.py", "lifespan"]
    env = {"LIFESPAN_TEST_EVENTS": str(events), **HANGS_AT_SHUTDOWN}
    with ServerProcess(command, settings="tests.projects.faultapp.settings", env=env) as process:
        wait_until(lambda: "hang-start" in kinds(events), TIMEOUT, "shutdown to begin")
        # Signals that arrive together count once: send until the process has heard two.
        deadline = time.monotonic() + TIMEOUT
        while process.returncode is None:
            assert time.monotonic() < deadline, process.output()
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(AssertionError):
                wait_until(lambda: process.returncode is not None, 0.2, "the exit")
        stderr = process.stderr()
    assert process.returncode == 1, stderr
    assert stderr.rstrip().endswith(FORCED), stderr


# -- in process: other applications, settings, errors on both sides ----------------------------


async def own_lifespan(scope, receive, send):
    """A lifespan of its own (not lifespan_signals'): puts a key in the state."""
    assert (await receive())["type"] == "lifespan.startup"
    scope["state"]["own"] = "yes"
    await send({"type": "lifespan.startup.complete"})
    assert (await receive())["type"] == "lifespan.shutdown"
    await send({"type": "lifespan.shutdown.complete"})


def test_get_state_works_with_an_application_of_another_kind():
    class Command(Probe):
        lifespan_app = own_lifespan

    Probe.seen.clear()
    call_command(Command())
    assert Probe.seen == [{"own": "yes"}]
    with pytest.raises(LifespanNotStarted):
        get_state()


@override_settings(ASGI_APPLICATION="tests.projects.plainasgi.asgi.application")
def test_the_projects_plain_django_application_is_wrapped():
    from lifespan_signals.asgi import LifespanWrapper, project_application

    assert isinstance(project_application().application, LifespanWrapper)


@override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT=-1)
def test_a_bad_timeout_setting_is_a_system_check_error_or_with_skip_checks_a_command_error():
    with pytest.raises(SystemCheckError, match=r"lifespan_signals\.E001"):
        call_command(Probe(), skip_checks=False)
    message = (
        "LIFESPAN_SIGNALS_STARTUP_TIMEOUT should be a positive number of seconds or None, not -1."
    )
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command(Probe(), skip_checks=True)


class Failing(LifespanCommand):
    def handle(self, *args, **options):
        raise CommandError("handle() failed")


def test_when_handle_and_shutdown_both_fail_handles_error_is_raised_and_shutdowns_written():
    stderr = io.StringIO()
    with (
        connected(asgi_shutdown, fail_shutdown),
        pytest.raises(CommandError, match=r"^handle\(\) failed$"),
    ):
        call_command(Failing(), stderr=stderr)
    assert stderr.getvalue() == "Lifespan shutdown failed. The report is above.\n"


class LeavesATask(LifespanCommand):
    async def handle(self, *args, **options):
        async def forever():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                LeavesATask.cancelled = True
                raise

        LeavesATask.task = asyncio.ensure_future(forever())
        await asyncio.sleep(0)


def test_a_task_left_running_by_handle_is_cancelled_when_the_command_ends():
    LeavesATask.cancelled = False
    call_command(LeavesATask())
    assert LeavesATask.cancelled
    assert LeavesATask.task.cancelled()


# -- declared clients (LIFESPAN_SIGNALS_CLIENTS) -------------------------------------------------


class UsesDeclaredClients(LifespanCommand):
    async def handle(self, *args, **options):
        from lifespan_signals.clients import clients

        session = clients["aiohttp"]
        UsesDeclaredClients.seen = {
            "same_loop": session._loop is asyncio.get_running_loop(),
            "closed": session.closed,
        }
        UsesDeclaredClients.session = session


@override_settings(
    LIFESPAN_SIGNALS_CLIENTS={"aiohttp": {"BACKEND": "aiohttp.ClientSession", "OPTIONS": {}}}
)
def test_declared_clients_are_open_in_handle_on_its_loop_and_closed_after():
    call_command(UsesDeclaredClients())
    assert UsesDeclaredClients.seen == {"same_loop": True, "closed": False}
    assert UsesDeclaredClients.session.closed


def test_preflight_lists_declared_clients(events):
    with ServerProcess(
        [sys.executable, "manage.py", "lifespan"], settings="tests.projects.clientsapp.settings"
    ) as process:
        code = process.wait_exit(TIMEOUT)
        stdout, stderr = process.stdout(), process.stderr()
    assert code == 0, stderr
    startup, shutdown = stdout.split("Lifespan shutdown:\n")
    assert re.search(r"^  client    httpx +[\d.]+ ms$", startup, re.MULTILINE), stdout
    assert re.search(r"^  client    aiohttp +[\d.]+ ms$", startup, re.MULTILINE), stdout
    assert re.search(
        r"^  receiver  tests\.projects\.clientsapp\.apps\.use_clients +[\d.]+ ms$", startup, re.M
    )
    assert re.search(r"^  client    aiohttp +[\d.]+ ms\n  client    httpx +[\d.]+ ms\n", shutdown)
    assert_clean(stderr)


def test_preflight_marks_a_failing_client_and_exits_1(events):
    env = {"LIFESPAN_TEST_CLIENTS_FAIL": "1"}
    command = [sys.executable, "manage.py", "lifespan"]
    with ServerProcess(command, settings="tests.projects.clientsapp.settings", env=env) as process:
        code = process.wait_exit(TIMEOUT)
        stdout, stderr = process.stdout(), process.stderr()
    assert code == 1, stderr
    assert re.search(r"^  client    broken +[\d.]+ ms  FAILED$", stdout, re.MULTILINE), stdout
    assert "LIFESPAN_SIGNALS_CLIENTS['broken'] (tests.clients.backends.failing) raised" in stderr
    assert "succeeded" not in stdout


class SyncInside(LifespanCommand):
    def handle(self, *args, **options):
        from asgiref.sync import async_to_sync, sync_to_async

        async def where():
            loop_thread = threading.current_thread()
            sync_thread = await sync_to_async(threading.current_thread)()
            return loop_thread, sync_thread

        SyncInside.threads = async_to_sync(where)()


def test_sync_handles_async_to_sync_runs_on_the_loop_and_its_sync_to_async_back_in_handles_thread():
    call_command(SyncInside())
    loop_thread, sync_thread = SyncInside.threads
    assert loop_thread.name == "lifespan-loop"
    assert sync_thread is threading.main_thread()  # thread-sensitive code, as Django expects


class AsyncRaises(LifespanCommand):
    """An async handle() that raises what the test gives it."""

    error: BaseException = SystemExit(4)

    async def handle(self, *args, **options):
        raise self.error


@pytest.mark.timeout(30)
@pytest.mark.parametrize("error", [SystemExit(4), KeyboardInterrupt()])
def test_an_async_handle_raising_systemexit_or_keyboardinterrupt_shuts_down_and_raises_it(error):
    # asyncio re-raises these two out of the loop: the loop's thread used to die with them, and
    # the command waited for ever, deaf to SIGTERM and Ctrl+C, with no shutdown.
    shutdowns = []

    async def record_shutdown(**kwargs):
        shutdowns.append("shutdown")

    class Command(AsyncRaises):
        pass

    Command.error = error
    with connected(asgi_shutdown, record_shutdown), pytest.raises(type(error)) as raised:
        call_command(Command())
    assert raised.value is error
    assert shutdowns == ["shutdown"]


# -- manage.py lifespan run COMMAND -------------------------------------------------------------


def test_run_gives_a_plain_command_the_lifespans_clients_on_their_loop(events):
    code, stdout, stderr = run("lifespan", "run", "plain_report", events=events)
    assert code == 0, stderr
    assert kinds(events) == ["startup", "plain", "shutdown"], stderr
    plain = read_events(events)[1]
    assert plain["same_loop"] is True
    assert plain["closed"] is False
    assert plain["aiohttp"] == read_events(events)[0]["aiohttp"]  # the session startup opened
    assert read_events(events)[-1]["clients"] == CLOSED
    assert json.loads(stdout.strip().splitlines()[-1])["same_loop"] is True
    assert "Lifespan startup:" not in stdout  # the pre-flight's listing is not shown
    assert_clean(stderr)


@pytest.mark.parametrize(
    ("options", "status", "said"),
    [
        (["--exit", "7"], 7, None),
        (["--exit", "0"], 0, None),
        (["--fail"], 1, "CommandError: plain_report failed on purpose"),
    ],
    ids=["exit-7", "exit-0", "command-error"],
)
def test_run_keeps_the_commands_exit_status_and_shuts_down_after_it(options, status, said, events):
    code, _, stderr = run("lifespan", "run", "plain_report", *options, events=events)
    assert code == status, stderr
    assert kinds(events) == ["startup", "plain", "shutdown"], stderr
    assert read_events(events)[-1]["clients"] == CLOSED
    if said:
        assert said in stderr
    assert "Traceback" not in stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_run_shuts_down_when_the_command_gets_sigterm(events):
    with manage("lifespan", "run", "plain_report", "--sleep", "60", events=events) as process:
        wait_until(lambda: "plain" in kinds(events), TIMEOUT, "the command to start")
        os.kill(process.pid, signal.SIGTERM)
        code = process.wait_exit(TIMEOUT)
        stderr = process.stderr()
    assert code == 143, stderr
    assert kinds(events) == ["startup", "plain", "shutdown"], stderr
    assert read_events(events)[-1]["clients"] == CLOSED


def test_run_shell_sees_the_lifespan_state(events):
    code, stdout, stderr = run(
        "lifespan",
        "run",
        "shell",
        "-c",
        "from lifespan_signals import get_state; print(sorted(get_state()))",
        events=events,
    )
    assert code == 0, stderr
    assert "['aiohttp', 'httpx']" in stdout, stdout
    assert kinds(events) == ["startup", "shutdown"]


@pytest.mark.parametrize("command", COMMANDS)
def test_run_of_a_lifespan_command_joins_the_running_lifespan(command, events):
    code, _, stderr = run("lifespan", "run", command, events=events)
    assert code == 0, stderr
    assert kinds(events) == ["startup", "handle", "shutdown"], stderr  # one lifespan, not two
    assert read_events(events)[1]["same_loop"] is True


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["run", "no_such_command"], "Unknown command: 'no_such_command'"),
        (["run"], "'run' needs the command to run, as in 'run migrate'. Usage: manage.py"),
        (["sprint"], "Usage: manage.py lifespan [run COMMAND [ARGS...]]"),
        (["run", "lifespan"], "would start a second lifespan inside the first"),
    ],
)
def test_run_refuses_what_it_cannot_run_before_startup(words, message):
    events: list[str] = []
    with (
        connected(asgi_startup, lambda **kwargs: events.append("startup")),
        pytest.raises(CommandError, match=re.escape(message)),
    ):
        call_command("lifespan", *words)
    assert events == []


# -- what a failed lifespan tells the command ----------------------------------------------------


async def fails_at_startup(**kwargs):
    raise RuntimeError("database is down")


def test_a_report_that_reached_no_handler_is_in_the_command_error():
    # A project's LOGGING without disable_existing_loggers=False disables our loggers when
    # loading the application runs django.setup() again: the report was never shown, so the
    # command's error holds it.
    loggers = [logging.getLogger(name) for name in logging.root.manager.loggerDict]
    disabled = {logger: logger.disabled for logger in loggers}
    try:
        with (
            override_settings(LOGGING={"version": 1}),
            connected(asgi_startup, fails_at_startup),
            pytest.raises(CommandError) as raised,
        ):
            call_command(LifespanPreflight(), verbosity=0)
    finally:
        for logger, was in disabled.items():
            logger.disabled = was
    assert logging.getLogger("lifespan_signals.lifespan.machine").disabled is False
    message = str(raised.value)
    assert "tests.test_commands.fails_at_startup raised RuntimeError: database is down" in message
    assert "The report is above." not in message


def test_a_report_that_was_logged_is_not_repeated_in_the_command_error(caplog):
    with connected(asgi_startup, fails_at_startup), pytest.raises(CommandError) as raised:
        call_command(LifespanPreflight(), verbosity=0)
    assert str(raised.value) == (
        "Lifespan startup failed, so the command did not run. The report is above."
    )
    assert "database is down" in caplog.text


def test_the_preflight_shows_a_step_given_up_on_with_the_time_it_was_given(capsys):
    async def hangs(**kwargs):
        await asyncio.sleep(3600)

    def slow_shutdown(**kwargs):
        time.sleep(1.0)  # after startup gave up on hangs()

    with (
        override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT=0.3),
        connected(asgi_startup, hangs),
        connected(asgi_shutdown, slow_shutdown),
        pytest.raises(CommandError),
    ):
        call_command(LifespanPreflight())
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if ".hangs" in line]
    milliseconds = float(re.search(r"([\d.]+) ms", line).group(1))
    assert 250 <= milliseconds < 900, line  # its 0.3 s, not until the listing was printed
    assert line.endswith("FAILED"), line


# -- a real task worker inside the lifespan: django-tasks-db's db_worker -------------------------


class _Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a shared client reuses its connection
    ports: ClassVar[list[int]] = []

    def do_GET(self):
        type(self).ports.append(self.client_address[1])
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format, *args):
        pass


@pytest.fixture
def upstream():
    _Upstream.ports = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.mark.servers
def test_a_task_enqueued_by_a_view_runs_in_db_worker_with_the_lifespans_client(
    serve, upstream, events, tmp_path
):
    from tests.harness import catalogue

    settings = "tests.projects.tasksapp.settings"
    env = {
        "LIFESPAN_TEST_TASKS_DATABASE": str(tmp_path / "tasks.sqlite3"),
        "LIFESPAN_TEST_CLIENTS_UPSTREAM": upstream,
        "LIFESPAN_TEST_EVENTS": str(events),
    }

    def command(*args):
        process = ServerProcess([sys.executable, "manage.py", *args], settings=settings, env=env)
        with process:
            code = process.wait_exit(TIMEOUT)
            return code, process.stderr()

    code, stderr = command("migrate", "--noinput", "-v", "0")
    assert code == 0, stderr
    server = serve(
        catalogue.UVICORN,
        settings=settings,
        app="tests.projects.tasksapp.asgi:application",
        env=env,
    )
    server.wait_ready("/enqueue/?count=0", TIMEOUT)
    enqueued = get_json(f"{server.base}/enqueue/?count=3")["enqueued"]
    assert len(enqueued) == 3
    before = {event["pid"] for event in read_events(events)}  # the server's own lifespan

    worker = ("lifespan", "run", "db_worker", "--batch", "--no-startup-delay", "--interval", "0.1")
    code, stderr = command(*worker)

    assert code == 0, stderr
    ran = [event for event in read_events(events) if event["pid"] not in before]
    assert [event["event"] for event in ran] == ["startup", "task", "task", "task", "shutdown"]
    opened = ran[0]["client"]
    assert {event["client"] for event in ran} == {opened}  # one client for the whole worker
    assert sorted(event["number"] for event in ran if event["event"] == "task") == [0, 1, 2]
    assert {event["status"] for event in ran if event["event"] == "task"} == {200}
    assert len(set(_Upstream.ports)) == 1, _Upstream.ports  # its one kept-alive connection
    assert_clean(stderr)
