"""``manage.py runserver``: lifespan_signals' own when ``INSTALLED_APPS`` lists it first, Daphne's
or Django's otherwise (``lifespan_signals.W020`` says so); ``--noasgi``; a broken ``apps.py`` at the
very first start. Real subprocesses on loopback port 0, stopped with SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import sys
from io import StringIO
from unittest import mock

import pytest
from django.core.checks import Warning
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from django.test import override_settings

from lifespan_signals.checks import check_runserver
from lifespan_signals.management.commands.runserver import Command
from lifespan_signals.signals import asgi_startup
from tests.daphne.test_stress import BROKEN_APP, GOOD_APP, _write
from tests.harness.catalogue import CLOSED, RUNSERVER, assert_clean
from tests.harness.in_process import connected
from tests.harness.servers import (
    REPO_ROOT,
    ServerProcess,
    get_json,
    http_get,
    read_events,
    traceback_exceptions,
    wait_until,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")

TIMEOUT = 20.0
SETTINGS = "tests.projects.runserverapp.settings"
STATIC = "django.contrib.staticfiles"


def kinds(events):
    return [event["event"] for event in read_events(events)]


def runserver(serve, order, *options, **env):
    env = {"LIFESPAN_TEST_APPS_ORDER": order, **env}
    return serve(RUNSERVER, *options, settings=SETTINGS, env=env)


# -- lifespan_signals' runserver wins when it is listed first ------------------------------------


@pytest.mark.parametrize(
    "order",
    [
        "lifespan_signals",
        f"lifespan_signals,{STATIC}",
        f"lifespan_signals,daphne,{STATIC}",
    ],
    ids=["alone", "before-staticfiles", "before-daphne"],
)
def test_runserver_runs_the_lifespan_when_listed_first(serve, events, order):
    server = runserver(serve, order)
    server.wait_ready("/health/", TIMEOUT)
    first, second = get_json(server.url("/")), get_json(server.url("/"))
    assert (first["httpx"], first["aiohttp"]) == (second["httpx"], second["aiohttp"])
    assert second["state_keys"] == ["aiohttp", "httpx"]
    assert server.stop(signal.SIGTERM, TIMEOUT) == 0
    output = server.output()
    assert kinds(events) == ["startup", "shutdown"], output
    assert read_events(events)[1]["clients"] == CLOSED
    assert "Starting ASGI/Daphne version" in output
    assert "server with lifespan at" in output
    assert "lifespan_signals.W020" not in output
    assert_clean(output, "Traceback")


def test_runserver_serves_static_files_like_staticfiles_runserver(serve, events):
    # The test projects run with DEBUG False: --insecure, as with staticfiles' runserver.
    server = runserver(serve, f"lifespan_signals,{STATIC}", "--insecure", "--noreload")
    server.wait_ready("/health/", TIMEOUT)
    status, body = http_get(server.url("/static/runserverapp/hello.txt"))
    assert (status, body) == (200, b"hello from runserver\n")
    assert server.stop(signal.SIGTERM, TIMEOUT) == 0
    assert kinds(events) == ["startup", "shutdown"]


# -- another runserver wins: it runs no lifespan, and W020 says so -------------------------------

# Django's WSGI runserver: "Starting development server at" (5.2, 6.0), "Starting WSGI
# development server at" (6.1).
DJANGOS_BANNER = r"Starting (WSGI )?development server at"


@pytest.mark.servers
@pytest.mark.parametrize(
    ("order", "banner"),
    [
        (f"daphne,lifespan_signals,{STATIC}", "Starting ASGI/Daphne version"),
        (f"{STATIC},lifespan_signals", DJANGOS_BANNER),
    ],
    ids=["after-daphne", "after-staticfiles"],
)
def test_another_runserver_runs_no_lifespan_and_the_check_says_so(events, order, banner):
    env = {"LIFESPAN_TEST_APPS_ORDER": order, "LIFESPAN_TEST_EVENTS": str(events)}
    args = [sys.executable, "manage.py", "runserver", "--noreload", "127.0.0.1:0"]
    with ServerProcess(args, settings=SETTINGS, env=env) as server:
        server.wait_ready("/health/", TIMEOUT)
        status, _ = http_get(server.url("/"))
        output = server.output()
    assert status == 500  # the view reads request.state: nothing put the clients there
    assert re.search(banner, output), output
    assert "with lifespan" not in output
    assert "lifespan_signals.W020" in output, output
    assert "List 'lifespan_signals' in INSTALLED_APPS before" in output
    assert not events.exists() or kinds(events) == []


@pytest.mark.servers
def test_noasgi_runs_djangos_wsgi_runserver(events):
    env = {"LIFESPAN_TEST_APPS_ORDER": "lifespan_signals", "LIFESPAN_TEST_EVENTS": str(events)}
    args = [sys.executable, "manage.py", "runserver", "--noasgi", "--noreload", "127.0.0.1:0"]
    with ServerProcess(args, settings=SETTINGS, env=env) as server:
        server.wait_ready("/health/", TIMEOUT)
        status, _ = http_get(server.url("/"))
        output = server.output()
    assert status == 500
    assert re.search(DJANGOS_BANNER, output), output
    assert not events.exists() or kinds(events) == []


# -- runserver's recovery from a broken apps.py, from the very first start -----------------------


def _extra_app(tmp_path, text):
    package = tmp_path / "extraapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    _write(package / "apps.py", text)
    return package / "apps.py", {
        "LIFESPAN_TEST_EXTRA_APP": "extraapp",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(tmp_path)]),
    }


def test_broken_apps_py_at_first_start_is_shown_then_fixed(serve, events, tmp_path):
    apps_py, env = _extra_app(tmp_path, BROKEN_APP)
    server = runserver(serve, "lifespan_signals", **env)

    def watching():  # how many times a reloader started watching apps.py
        return server.stderr().count("extraapp/apps.py first seen with mtime")

    wait_until(lambda: "SyntaxError" in server.stderr(), TIMEOUT, "the error")
    wait_until(lambda: watching() == 1, TIMEOUT, "the broken child watching apps.py")
    assert server.returncode is None, server.output()  # still watching, as runserver does
    _write(apps_py, GOOD_APP)
    server.wait_ready("/health/", TIMEOUT)
    assert kinds(events) == ["startup"]
    assert get_json(server.url("/"))["state_keys"] == ["aiohttp", "httpx"]
    assert server.stop(signal.SIGTERM, TIMEOUT) == 0
    # Django's reloader started this session (runserver's first start was broken); the serving
    # process shuts down when it is gone.
    wait_until(lambda: kinds(events) == ["startup", "shutdown"], TIMEOUT, "the shutdown")
    output = server.output()
    assert read_events(events)[1]["clients"] == CLOSED
    assert traceback_exceptions(output) == ["SyntaxError: expected ':'"], output


def test_apps_py_broken_while_serving_is_shown_then_fixed(serve, events, tmp_path):
    apps_py, env = _extra_app(tmp_path, GOOD_APP)
    server = runserver(serve, "lifespan_signals", **env)
    server.wait_ready("/health/", TIMEOUT)
    _write(apps_py, BROKEN_APP)
    wait_until(lambda: "SyntaxError" in server.stderr(), TIMEOUT, "the error")
    wait_until(
        lambda: server.stderr().count("extraapp/apps.py first seen with mtime") == 2,
        TIMEOUT,
        "the broken child watching apps.py",
    )
    _write(apps_py, GOOD_APP)
    wait_until(lambda: len(server.ports()) == 2, TIMEOUT, "the fixed child's banner")
    server.wait_ready("/health/", TIMEOUT)
    assert server.stop(signal.SIGTERM, TIMEOUT) == 0
    output = server.output()
    assert kinds(events) == ["startup", "shutdown"] * 2, output
    assert traceback_exceptions(output) == ["SyntaxError: expected ':'"], output


# -- in process: the command, which runserver runs, the check ----------------------------------


def test_without_daphne_the_error_says_what_to_install_and_how_to_do_without():
    # None in sys.modules makes the import fail, as when Daphne is not installed.
    with (
        mock.patch.dict(sys.modules, {"daphne": None}),
        pytest.raises(CommandError) as caught,
    ):
        call_command("runserver", "--noreload", "--skip-checks", "127.0.0.1:0")
    message = str(caught.value)
    assert message.startswith("runserver runs the lifespan with Daphne, which is not installed (")
    assert message.endswith(
        "Install it: pip install 'lifespan-signals[daphne]'. Or run Django's WSGI runserver, "
        "without the lifespan: manage.py runserver --noasgi."
    )


def test_help_documents_every_option():
    parser = Command().create_parser("manage.py", "runserver")
    assert "--noasgi" in parser.format_help()
    assert "--graceful-timeout" in parser.format_help()  # runasgi's options
    for action in parser._actions:
        assert action.help, f"{action.option_strings or action.dest} has no help"


def test_messages_name_the_command_the_user_typed():
    with pytest.raises(CommandError, match=r"^runserver found no ASGI application\."):
        Command().get_application({})


# -- which runserver runs, in process; the check -----------------------------------------------


def _apps(*first):
    return [*first, "django.contrib.contenttypes", "django.contrib.auth"]


@pytest.mark.parametrize(
    ("installed", "winner"),
    [
        (_apps("lifespan_signals"), "lifespan_signals"),
        (_apps("lifespan_signals", "daphne", STATIC), "lifespan_signals"),
        (_apps("daphne", "lifespan_signals", STATIC), "daphne"),
        (_apps(STATIC, "lifespan_signals"), STATIC),
    ],
)
def test_the_application_listed_first_gives_runserver(installed, winner):
    with override_settings(INSTALLED_APPS=installed, STATIC_URL="/static/"):
        assert get_commands()["runserver"] == winner
        assert get_commands()["runasgi"] == "lifespan_signals"


def _check(installed, **settings):
    with override_settings(INSTALLED_APPS=installed, STATIC_URL="/static/", **settings):
        return check_runserver()


CLIENTS = {"LIFESPAN_SIGNALS_CLIENTS": {"default": {"BACKEND": "httpx.AsyncClient"}}}


def test_w020_when_daphnes_runserver_runs_in_a_project_with_clients():
    messages = _check(_apps("daphne", "lifespan_signals", STATIC), **CLIENTS)
    assert messages == [
        Warning(
            "manage.py runserver should run the ASGI lifespan, but it is Daphne's runserver, "
            "which runs none: declared clients are not opened, asgi_startup receivers do not "
            "run, and views that use them fail.",
            hint="List 'lifespan_signals' in INSTALLED_APPS before 'daphne' and "
            "'django.contrib.staticfiles': runserver is then lifespan_signals' own, which runs "
            "the lifespan (or serve with 'manage.py runasgi'). For a runserver without the "
            "lifespan, add 'lifespan_signals.W020' to SILENCED_SYSTEM_CHECKS.",
            id="lifespan_signals.W020",
        )
    ]


def test_w020_when_staticfiles_runserver_runs_in_a_project_with_receivers():
    async def receiver(**kwargs):
        pass

    with connected(asgi_startup, receiver):
        (message,) = _check(_apps(STATIC, "lifespan_signals"))
    assert message.id == "lifespan_signals.W020"
    assert "it is staticfiles' runserver (Django's WSGI runserver), which" in message.msg
    assert "before 'django.contrib.staticfiles'" in message.hint


def test_no_w020_when_lifespan_signals_runserver_runs():
    assert _check(_apps("lifespan_signals", "daphne", STATIC), **CLIENTS) == []


def test_no_w020_when_nothing_needs_the_lifespan():
    assert _check(_apps("daphne", "lifespan_signals", STATIC)) == []


def _other_apps_runserver(base):
    """whitenoise's runserver_nostatic, say: a runserver that subclasses the next one."""
    wrapper = type("Command", (base,), {"__module__": "whitenoise.runserver_nostatic"})
    app = "whitenoise.runserver_nostatic"
    return (
        mock.patch("django.core.management.get_commands", return_value={"runserver": app}),
        mock.patch("django.core.management.load_command_class", return_value=wrapper()),
    )


def test_no_w020_for_a_wrapper_of_lifespan_signals_runserver():
    commands, load = _other_apps_runserver(Command)
    with commands, load:
        assert _check(_apps("lifespan_signals"), **CLIENTS) == []


def test_w020_for_a_wrapper_of_another_runserver():
    from django.core.management.commands.runserver import Command as DjangoRunserver

    commands, load = _other_apps_runserver(DjangoRunserver)
    with commands, load:
        (message,) = _check(_apps("lifespan_signals"), **CLIENTS)
    assert "it is the runserver of 'whitenoise.runserver_nostatic', which" in message.msg
    assert "before 'whitenoise.runserver_nostatic'" in message.hint


def test_manage_py_check_shows_w020():
    with override_settings(
        INSTALLED_APPS=_apps("daphne", "lifespan_signals", STATIC), STATIC_URL="/static/", **CLIENTS
    ):
        err = StringIO()
        call_command("check", stderr=err)
    assert "lifespan_signals.W020" in err.getvalue()


def test_no_w020_when_another_apps_runserver_cannot_be_loaded():
    # Its own import error is for manage.py to report, not this check.
    with (
        mock.patch("django.core.management.get_commands", return_value={"runserver": "broken"}),
        mock.patch("django.core.management.load_command_class", side_effect=ImportError("x")),
    ):
        assert _check(_apps("lifespan_signals"), **CLIENTS) == []


@pytest.mark.parametrize(
    ("installed", "options", "static"),
    [
        (_apps("lifespan_signals", STATIC), {"insecure_serving": True}, True),
        (_apps("lifespan_signals", STATIC), {"use_static_handler": False}, False),
        (_apps("lifespan_signals", STATIC), {}, False),  # DEBUG is False
        (_apps("lifespan_signals"), {"insecure_serving": True}, False),
    ],
)
def test_noasgi_serves_static_files_as_staticfiles_runserver_does(installed, options, static):
    from django.contrib.staticfiles.handlers import StaticFilesHandler

    with override_settings(INSTALLED_APPS=installed, STATIC_URL="/static/"):
        handler = Command().get_handler(**options)
    assert isinstance(handler, StaticFilesHandler) is static
