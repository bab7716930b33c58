"""``lifespan-daphne``: Daphne's command line with the lifespan, as real processes on real sockets.

Servers bind port 0 (``-e tcp:port=0:interface=127.0.0.1``) and the tests read the bound ports from
Daphne's "Listening on TCP address" lines, so tests can run in parallel.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from daphne.cli import CommandLineInterface

from lifespan_signals.daphne import LifespanCommandLineInterface
from tests.harness.servers import ServerProcess, get_json, http_get, read_events, wait_until

pytestmark = [
    pytest.mark.servers,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and unix sockets"),
]

TIMEOUT = 20.0
LEAKS = ("Unclosed client session", "Unclosed connector", "Task was destroyed", "Traceback")
CLOSED = {"aiohttp": {"same": True, "closed": True}, "httpx": {"same": True, "closed": True}}
ANY_PORT = "tcp:port=0:interface=127.0.0.1"
APP = "tests.projects.serverapp.asgi:application"


def lifespan_daphne(
    *options, events, app=APP, settings="tests.projects.commandsapp.settings", **kwargs
):
    """The installed console script, as supervisord or systemd would run it."""
    script = shutil.which("lifespan-daphne", path=str(Path(sys.executable).parent))
    assert script, "the lifespan-daphne console script is not installed: pip install -e ."
    env = {"LIFESPAN_TEST_EVENTS": str(events), **kwargs.pop("env", {})}
    return ServerProcess([script, *options, app], settings=settings, env=env, **kwargs)


def ports(server, count=1):
    """The TCP ports the server reported listening on, once it reported ``count`` of them."""
    pattern = re.compile(r"Listening on TCP address 127\.0\.0\.1:(\d+)")

    def found():
        if server.returncode is not None:
            raise AssertionError(f"exited with {server.returncode}:\n{server.output()}")
        return len(pattern.findall(server.output())) >= count

    wait_until(found, TIMEOUT, f"{count} listening port(s)")
    return [int(port) for port in pattern.findall(server.output())]


def kinds(events):
    return [event["event"] for event in read_events(events)]


def assert_clean(output):
    for leak in LEAKS:
        assert leak not in output, f"{leak!r} in output:\n{output}"


def assert_one_clean_lifespan(events, output):
    assert kinds(events) == ["startup", "shutdown"], output
    assert read_events(events)[1]["clients"] == CLOSED
    assert "Lifespan startup complete" in output
    assert "Lifespan shutdown complete" in output
    assert_clean(output)


@pytest.fixture
def events(tmp_path):
    return tmp_path / "events.jsonl"


# -- the command line -----------------------------------------------------------------------


def test_every_daphne_option_is_there_with_the_same_meaning():
    def options(parser):
        return {
            (tuple(action.option_strings), action.dest, repr(action.default), action.nargs)
            for action in parser._actions
        }

    ours = LifespanCommandLineInterface().parser
    assert options(CommandLineInterface().parser) <= options(ours)
    assert "--graceful-timeout" in ours.format_help()
    assert ours.prog == "lifespan-daphne"


@pytest.mark.parametrize("value", ["abc", "-1", "nan"])
def test_bad_graceful_timeout_is_a_clear_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exited:
        LifespanCommandLineInterface().parser.parse_args(["--graceful-timeout", value, APP])
    assert exited.value.code == 2
    assert (
        f"argument --graceful-timeout: should be a number of seconds, 0 or more, not {value!r}"
        in capsys.readouterr().err
    )


# -- real processes ---------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_two_endpoints_share_one_lifespan_and_a_stop_signal_shuts_it_down(events, sig):
    with lifespan_daphne("-e", ANY_PORT, "-e", ANY_PORT, events=events) as server:
        first, second = ports(server, 2)
        assert kinds(events) == ["startup"]  # before listening
        a = get_json(f"http://127.0.0.1:{first}/")
        b = get_json(f"http://127.0.0.1:{second}/")
        startup = read_events(events)[0]
        for answer in (a, b):
            assert answer["pid"] == server.pid
            assert (answer["aiohttp"], answer["httpx"]) == (startup["aiohttp"], startup["httpx"])
            assert answer["state_keys"] == ["aiohttp", "httpx"]  # each request its own copy
        assert server.stop(sig, TIMEOUT) == 0
        output = server.output()
    assert_one_clean_lifespan(events, output)


def test_unix_socket(events, tmp_path):
    path = tmp_path / "daphne.sock"
    with lifespan_daphne("-u", str(path), events=events) as server:
        wait_until(lambda: path.exists() or server.returncode is not None, TIMEOUT, "the socket")
        status, body = unix_get(path, "/")
        assert status == 200
        assert json.loads(body)["state_keys"] == ["aiohttp", "httpx"]
        assert server.stop(signal.SIGTERM, TIMEOUT) == 0
        output = server.output()
    assert_one_clean_lifespan(events, output)


def test_a_listening_socket_passed_as_fd_0_as_supervisord_does(events):
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        with lifespan_daphne("--fd", "0", events=events, stdin=listening.fileno()) as server:
            listening.close()  # the server's copy is the one that serves
            wait_until(lambda: "startup" in kinds(events), TIMEOUT, "startup")
            answer = get_json(f"http://127.0.0.1:{port}/")
            assert (answer["pid"], answer["state_keys"]) == (server.pid, ["aiohttp", "httpx"])
            assert server.stop(signal.SIGTERM, TIMEOUT) == 0
            output = server.output()
    assert_one_clean_lifespan(events, output)


def test_proxy_headers_reach_remote_addr_and_the_access_log_is_written(events, tmp_path):
    access_log = tmp_path / "access.log"
    options = ["-e", ANY_PORT, "--proxy-headers", "--access-log", str(access_log)]
    with lifespan_daphne(*options, events=events) as server:
        (port,) = ports(server)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        connection.request("GET", "/remote/", headers={"X-Forwarded-For": "203.0.113.7"})
        response = connection.getresponse()
        assert json.loads(response.read()) == {"REMOTE_ADDR": "203.0.113.7"}
        connection.close()
        assert server.stop(signal.SIGTERM, TIMEOUT) == 0
        output = server.output()
    assert_one_clean_lifespan(events, output)
    assert re.search(r'^203\.0\.113\.7:\d+ - - \[.*\] "GET /remote/" 200 ', access_log.read_text())


def test_startup_failure_exits_1_without_listening_and_names_the_receiver(events, tmp_path):
    path = tmp_path / "daphne.sock"
    env = {"LIFESPAN_TEST_FAIL_STARTUP": "1"}
    with lifespan_daphne("-u", str(path), events=events, env=env) as server:
        code = server.wait_exit(TIMEOUT)
        output = server.output()
    assert code == 1, output
    assert (
        "tests.projects.serverapp.apps.fail_startup raised RuntimeError: boom at startup" in output
    )
    assert "Lifespan startup failed; not serving. The report is above." in output
    assert output.count("fail_startup raised RuntimeError: boom at startup") == 1  # said once
    assert not path.exists()
    assert "Listening on" not in output
    assert sorted(kinds(events)) == ["fail_startup", "shutdown", "startup"]
    assert read_events(events)[-1]["clients"] == CLOSED  # what the healthy receiver opened


def test_django_own_application_is_wrapped_and_says_so(events):
    settings = "tests.projects.plainasgi.settings"
    app = "tests.projects.plainasgi.asgi:application"
    with lifespan_daphne("-e", ANY_PORT, events=events, app=app, settings=settings) as server:
        (port,) = ports(server)
        assert get_json(f"http://127.0.0.1:{port}/")["state_keys"] == ["aiohttp", "httpx"]
        assert server.stop(signal.SIGTERM, TIMEOUT) == 0
        output = server.output()
    assert_one_clean_lifespan(events, output)
    assert (
        "tests.projects.plainasgi.asgi:application does not speak the ASGI lifespan protocol; "
        "lifespan-daphne wraps it in lifespan_signals.asgi.LifespanWrapper"
    ) in output


def test_sigterm_under_load_answers_every_started_request_and_shuts_down_once(events):
    with lifespan_daphne("-e", ANY_PORT, events=events) as server:
        (port,) = ports(server)
        stop = threading.Event()
        answers: list[int] = []
        errors: list[BaseException] = []

        def client(path):
            while not stop.is_set():
                try:
                    answers.append(http_get(f"http://127.0.0.1:{port}{path}", TIMEOUT)[0])
                except OSError as exc:  # refused once the server stopped listening
                    errors.append(exc)
                    return

        threads = [
            threading.Thread(target=client, args=(path,))
            for path in ["/slow/?seconds=0.5"] * 4 + ["/"] * 4
        ]
        for thread in threads:
            thread.start()
        wait_until(lambda: kinds(events).count("slow-end") >= 4, TIMEOUT, "load")
        in_flight = lambda: kinds(events).count("slow-start") > kinds(events).count("slow-end")  # noqa: E731
        wait_until(in_flight, TIMEOUT, "a request in flight")
        started = time.monotonic()
        code = server.stop(signal.SIGTERM, TIMEOUT)
        took = time.monotonic() - started
        stop.set()
        for thread in threads:
            thread.join(TIMEOUT)
        output = server.output()
    assert code == 0, output
    recorded = kinds(events)
    assert recorded[0] == "startup"
    assert recorded[-1] == "shutdown"
    assert recorded.count("shutdown") == 1
    assert recorded.count("slow-start") == recorded.count("slow-end")  # none cut short
    assert set(answers) == {200}, answers
    assert answers.count(200) >= recorded.count("slow-end")
    # refused (urllib wraps that in URLError) or, accepted but never started, closed
    assert all(isinstance(getattr(e, "reason", e), ConnectionError) for e in errors), errors
    assert "in-flight request(s) to finish." in output
    assert took < 5.0 + 1.0 + TIMEOUT / 2  # the graceful timeout, not a hang
    assert read_events(events)[-1]["clients"] == CLOSED
    assert_clean(output)


def unix_get(path, url):
    connection = http.client.HTTPConnection("localhost", timeout=TIMEOUT)
    connection.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.sock.settimeout(TIMEOUT)
    connection.sock.connect(str(path))
    try:
        connection.request("GET", url)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_sigterm_during_startup_shuts_down_without_serving_and_exits_0(events, tmp_path):
    path = tmp_path / "daphne.sock"
    env = {"LIFESPAN_TEST_HANG": "startup", "LIFESPAN_TEST_HANG_SECONDS": "2"}
    options = ["-u", str(path)]
    with lifespan_daphne(
        *options, events=events, settings="tests.projects.faultapp.settings", env=env
    ) as server:
        wait_until(lambda: "hang-start" in kinds(events), TIMEOUT, "startup to begin")
        code = server.stop(signal.SIGTERM, TIMEOUT)
        output = server.output()
    assert code == 0, output
    assert sorted(kinds(events)) == ["hang-start", "shutdown", "startup"]
    assert kinds(events)[-1] == "shutdown"
    assert not path.exists()
    assert "Listening on" not in output
    assert_clean(output)


def test_a_port_in_use_exits_1_after_shutting_the_lifespan_down(events):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with lifespan_daphne("-b", "127.0.0.1", "-p", str(port), events=events) as server:
            code = server.wait_exit(TIMEOUT)
            output = server.output()
    assert code == 1, output
    assert f"Error: Couldn't listen on 127.0.0.1:{port}: " in output
    assert "Address already in use" in output
    assert kinds(events) == ["startup", "shutdown"]
    assert read_events(events)[1]["clients"] == CLOSED


def test_an_application_without_lifespan_gets_the_drivers_report(events, tmp_path):
    path = tmp_path / "daphne.sock"
    app = "tests.projects.commandsapp.nolifespan:no_lifespan"
    # --lifespan auto (the default) serves it without the lifespan: tests/daphne/test_contract.py
    with lifespan_daphne("--lifespan", "on", "-u", str(path), events=events, app=app) as server:
        code = server.wait_exit(TIMEOUT)
        output = server.output()
    assert code == 1, output
    headline = "Lifespan startup failed; not serving.\n\n"
    assert f"{headline}The application <function no_lifespan" in output
    assert (
        "ended during lifespan startup without replying: it raised ValueError: no lifespan here "
        "Does it speak the lifespan protocol? Wrap it in lifespan_signals.asgi.LifespanWrapper."
    ) in output
    assert not path.exists()


def test_a_bad_timeout_setting_is_a_clear_error_before_anything_runs(events, tmp_path):
    path = tmp_path / "daphne.sock"
    env = {"LIFESPAN_SIGNALS_STARTUP_TIMEOUT": "abc"}
    options = ["-u", str(path)]
    with lifespan_daphne(
        *options, events=events, settings="tests.projects.faultapp.settings", env=env
    ) as server:
        code = server.wait_exit(TIMEOUT)
        output = server.output()
    assert code == 1, output
    assert (
        "Error: lifespan_signals.E001: LIFESPAN_SIGNALS_STARTUP_TIMEOUT should be a positive "
        "number of seconds or None, not 'abc'. HINT: "
    ) in output
    assert "Traceback" not in output
    assert kinds(events) == []
    assert not path.exists()


def test_an_endpoint_that_cannot_be_parsed_is_an_error_before_startup(events):
    with lifespan_daphne("-e", "nonsense:foo", events=events) as server:
        code = server.wait_exit(TIMEOUT)
        output = server.output()
    assert code == 1, output
    assert "Error: Cannot listen on 'nonsense:foo': Unknown endpoint type: 'nonsense'" in output
    assert "Traceback" not in output
    assert kinds(events) == []  # no receiver ran: nothing was opened to close
