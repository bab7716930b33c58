"""The ASGI contract of ``runasgi`` and ``lifespan-daphne``: ``--lifespan auto|on|off`` with
uvicorn's meanings, Daphne's ``server_class`` honoured, every address form runserver accepts.

Real servers on port 0, through the harness (``serve``, ``ServerProcess``).
"""

from __future__ import annotations

import re
import signal
import socket
import sys

import pytest

from lifespan_signals.daphne import LifespanCommandLineInterface, LifespanServer
from lifespan_signals.daphne.server import DEFAULT_BACKSTOPS
from tests.harness.catalogue import LIFESPAN_DAPHNE, PYTHON, RUNASGI
from tests.harness.servers import ServerProcess, http_get, read_events

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

TIMEOUT = 20.0
SERVERS = [RUNASGI.param(), LIFESPAN_DAPHNE.param()]
SETTINGS = "tests.projects.faultapp.settings"  # serves LIFESPAN_TEST_ASGI_APPLICATION
RAW = "tests.projects.faultapp.rawapps"
UNSUPPORTED = "ASGI 'lifespan' protocol appears unsupported by "
NOT_SPEAKING = [
    "http_raises_on_lifespan",
    "http_returns_on_lifespan",
    "http_answers_lifespan_with_http",
]


def start(serve, server, app, *options, **env):
    """``server`` serving ``app`` (a dotted path; runasgi reads it from the settings)."""
    env = {"LIFESPAN_TEST_ASGI_APPLICATION": app, **env}
    module, name = app.rsplit(".", 1)
    return serve(server, *options, settings=SETTINGS, app=f"{module}:{name}", env=env)


def kinds(events):
    return [event["event"] for event in read_events(events)]


# -- --lifespan ---------------------------------------------------------------------------------


@pytest.mark.parametrize("app", NOT_SPEAKING)
@pytest.mark.parametrize("server", SERVERS)
def test_auto_serves_an_application_that_does_not_speak_lifespan_with_one_warning(
    serve, server, app
):
    proc = start(serve, server, f"{RAW}.{app}")
    proc.wait_ready("/", TIMEOUT)
    status, body = http_get(proc.url("/"))
    assert (status, body) == (200, b"no state")  # no lifespan, so no state
    assert proc.stop(signal.SIGTERM, TIMEOUT) == 0
    output = proc.output()
    assert output.count(UNSUPPORTED) == 1, output
    assert f"{UNSUPPORTED}{RAW}.{app}; serving without the lifespan" in output
    assert "Traceback" not in output
    assert "Lifespan startup failed" not in output


@pytest.mark.parametrize("app", NOT_SPEAKING)
@pytest.mark.parametrize("server", SERVERS)
def test_on_refuses_an_application_that_does_not_speak_lifespan(serve, server, app):
    proc = start(serve, server, f"{RAW}.{app}", "--lifespan", "on")
    code = proc.wait_exit(TIMEOUT)
    output = proc.output()
    assert code == 1, output
    assert "Does it speak the lifespan protocol?" in output
    assert UNSUPPORTED not in output
    assert "Listening on" not in output
    assert "Starting ASGI" not in output


@pytest.mark.parametrize("server", SERVERS)
def test_off_never_runs_the_lifespan(serve, server, events):
    app = "tests.projects.serverapp.asgi.application"
    proc = start(serve, server, app, "--lifespan", "off")
    proc.wait_ready("/health/", TIMEOUT)
    assert proc.stop(signal.SIGTERM, TIMEOUT) == 0
    output = proc.output()
    assert kinds(events) == []  # neither asgi_startup nor asgi_shutdown ran
    assert "Lifespan startup" not in output
    assert "LifespanWrapper" not in output
    assert "Traceback" not in output


@pytest.mark.parametrize("server", SERVERS)
def test_auto_still_runs_the_lifespan_of_an_application_that_speaks_it(serve, server, events):
    proc = start(serve, server, "tests.projects.serverapp.asgi.application")
    proc.wait_ready("/health/", TIMEOUT)
    assert proc.stop(signal.SIGTERM, TIMEOUT) == 0
    assert kinds(events) == ["startup", "shutdown"], proc.output()
    assert UNSUPPORTED not in proc.output()


def test_a_bad_lifespan_mode_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        LifespanCommandLineInterface().run(["--lifespan", "maybe", "daphne:__version__"])
    assert caught.value.code == 2
    assert "argument --lifespan: invalid choice: 'maybe'" in capsys.readouterr().err


def test_the_server_has_a_startup_backstop_without_any_settings():
    startup, shutdown = DEFAULT_BACKSTOPS
    assert startup is not None
    assert shutdown is not None
    server = LifespanServer(application=None, endpoints=["tcp:port=0"])
    assert (server.driver.startup_timeout, server.driver.shutdown_timeout) == DEFAULT_BACKSTOPS


# -- server_class -------------------------------------------------------------------------------


class _Recorded:
    abort_start = False

    def __init__(self, **kwargs):
        self.init_kwargs = kwargs

    def run(self):
        pass


def test_a_subclass_server_class_is_honoured_with_daphnes_arguments_only():
    class CLI(LifespanCommandLineInterface):
        server_class = _Recorded

    cli = CLI()
    cli.run(["-b", "10.0.0.1", "-p", "8123", "daphne:__version__"])
    assert isinstance(cli.server, _Recorded)
    assert cli.server.init_kwargs["endpoints"] == ["tcp:port=8123:interface=10.0.0.1"]
    assert "lifespan" not in cli.server.init_kwargs


def test_a_lifespan_server_subclass_also_gets_the_lifespan_options():
    class Server(LifespanServer):
        def run(self):
            pass

    class CLI(LifespanCommandLineInterface):
        server_class = Server

    cli = CLI()
    cli.run(["--lifespan", "off", "--graceful-timeout", "2", "daphne:__version__"])
    assert type(cli.server) is Server
    assert (cli.server.lifespan, cli.server.graceful_timeout) == ("off", 2.0)
    assert LifespanCommandLineInterface.server_class is LifespanServer


# -- runasgi's address forms ----------------------------------------------------------------------

_BANNER = re.compile(r"server with lifespan at http://(\S+):(\d+)/")


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.servers
@pytest.mark.parametrize(
    ("arguments", "banner", "connect"),
    [
        (["0"], "127.0.0.1", "127.0.0.1"),
        (["127.0.0.1:0"], "127.0.0.1", "127.0.0.1"),
        (["0:0"], "0.0.0.0", "127.0.0.1"),
        (["localhost:0"], "localhost", "127.0.0.1"),
        pytest.param(["[::1]:0"], "[::1]", "::1", marks=pytest.mark.skipif(
            not _ipv6_loopback(), reason="no IPv6 loopback")),
        pytest.param(["-6", "0"], "[::1]", "::1", marks=pytest.mark.skipif(
            not _ipv6_loopback(), reason="no IPv6 loopback")),
    ],
)  # fmt: skip
def test_every_address_form_runserver_accepts(events, arguments, banner, connect):
    args = [PYTHON, "manage.py", "runasgi", "--noreload", *arguments]
    env = {"LIFESPAN_TEST_EVENTS": str(events)}
    settings = "tests.projects.serverapp.settings"
    with ServerProcess(args, settings=settings, env=env, reports_port=_BANNER) as proc:
        proc._wait(lambda: _BANNER.search(proc.output()) is not None, TIMEOUT, "banner")
        host, port = _BANNER.search(proc.output()).groups()
        assert host == banner
        url = f"http://{'[::1]' if connect == '::1' else connect}:{port}/health/"
        assert http_get(url, TIMEOUT)[0] == 200
        assert proc.stop(signal.SIGTERM, TIMEOUT) == 0, proc.output()
        output = proc.output()
    assert "Error" not in output, output
    assert kinds(events) == ["startup", "shutdown"]
