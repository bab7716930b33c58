"""System checks: one test per id, and manage.py check failing on a bad setting."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import SimpleTestCase, override_settings

from lifespan_signals.asgi import LifespanWrapper
from lifespan_signals.checks import check_asgi_application, check_middleware, check_settings
from tests.harness.catalogue import (
    GRANIAN,
    GUNICORN,
    HYPERCORN,
    LIFESPAN_DAPHNE,
    RUNASGI,
    UVICORN,
)
from tests.harness.in_process import fake_module
from tests.harness.servers import traceback_exceptions
from tests.projects.badsettings.settings import BAD

BAD_SETTINGS = "tests.projects.badsettings.settings"

MIDDLEWARE = "lifespan_signals.middleware.LifespanStateMiddleware"


class SettingsChecksTests(SimpleTestCase):
    def test_valid_and_default_settings_pass(self):
        self.assertEqual(check_settings(), [])
        with override_settings(
            LIFESPAN_SIGNALS_STARTUP_TIMEOUT=None, LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT=2
        ):
            self.assertEqual(check_settings(), [])

    @override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT=0)
    def test_e001_startup_timeout(self):
        [error] = check_settings()
        self.assertEqual(error.id, "lifespan_signals.E001")
        self.assertEqual(
            error.msg,
            "LIFESPAN_SIGNALS_STARTUP_TIMEOUT should be a positive number of seconds or None, "
            "not 0.",
        )
        self.assertIn("None for no limit", error.hint)

    def test_e001_infinite_or_nan_is_not_a_number_of_seconds(self):
        for value in (float("inf"), float("nan"), -1, 10**400):  # 10**400: too large for a float
            with (
                self.subTest(value=value),
                override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT=value),
            ):
                [error] = check_settings()
                self.assertEqual(error.id, "lifespan_signals.E001")
                self.assertIn(f"not {value!r}.", error.msg)

    @override_settings(LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT=True)
    def test_e002_shutdown_timeout(self):
        [error] = check_settings()
        self.assertEqual(error.id, "lifespan_signals.E002")
        self.assertIn("not True", error.msg)

    @override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT="30")
    def test_manage_py_check_fails_on_a_bad_setting(self):
        with self.assertRaisesMessage(SystemCheckError, "lifespan_signals.E001"):
            # Our checks only: daphne's own check, registered once another test imported
            # daphne.checks, returns None (a TypeError) when daphne is not in INSTALLED_APPS.
            call_command("check", tags=["lifespan_signals"])


class MiddlewareChecksTests(SimpleTestCase):
    @override_settings(MIDDLEWARE=[MIDDLEWARE, MIDDLEWARE])
    def test_w004_listed_twice(self):
        [warning] = check_middleware()
        self.assertEqual(warning.id, "lifespan_signals.W004")
        self.assertIn("should be listed once in MIDDLEWARE, not 2 times", warning.msg)

    def test_listed_once_passes(self):
        self.assertEqual(check_middleware(), [])

    @override_settings(MIDDLEWARE=["django.middleware.common.CommonMiddleware"])
    def test_w003_missing(self):
        [warning] = check_middleware()
        self.assertEqual(warning.id, "lifespan_signals.W003")
        self.assertEqual(
            warning.msg,
            f"{MIDDLEWARE} should be in MIDDLEWARE: without it, views have no request.state "
            "(AttributeError: 'ASGIRequest' object has no attribute 'state').",
        )
        self.assertEqual(warning.hint, f"Add {MIDDLEWARE!r} to MIDDLEWARE (near the top).")


class ApplicationChecksTests(SimpleTestCase):
    def test_no_asgi_application_found_passes(self):
        self.assertEqual(check_asgi_application(), [])  # tests.settings has no asgi.py

    def check(self, application):
        fake_module("tests._fake_asgi", application=application)
        with override_settings(ASGI_APPLICATION="tests._fake_asgi.application"):
            return check_asgi_application()

    def test_lifespan_handler_passes(self):
        from lifespan_signals.asgi import LifespanWrapper, get_asgi_application

        self.assertEqual(self.check(get_asgi_application()), [])
        self.assertEqual(self.check(LifespanWrapper(object())), [])

    def test_w001_plain_django_handler(self):
        from django.core.asgi import get_asgi_application

        [warning] = self.check(get_asgi_application())
        self.assertEqual(warning.id, "lifespan_signals.W001")
        self.assertIn(
            "The ASGI application 'tests._fake_asgi.application' should speak the ASGI lifespan "
            "protocol, but django.core.handlers.asgi.ASGIHandler does not",
            warning.msg,
        )
        self.assertIn("lifespan_signals.asgi.get_asgi_application()", warning.hint)

    def test_w001_channels_router_without_lifespan(self):
        from channels.routing import ProtocolTypeRouter
        from django.core.asgi import get_asgi_application

        [warning] = self.check(ProtocolTypeRouter({"http": get_asgi_application()}))
        self.assertEqual(warning.id, "lifespan_signals.W001")
        self.assertIn("lifespan_signals.channels.ProtocolTypeRouter", warning.hint)

    def test_w005_an_application_that_cannot_be_told_is_named(self):
        async def app(scope, receive, send):
            pass

        [warning] = self.check(app)
        self.assertEqual(warning.id, "lifespan_signals.W005")
        self.assertIn(
            "The ASGI application 'tests._fake_asgi.application' should speak the ASGI lifespan "
            "protocol, but whether tests.test_checks.ApplicationChecksTests."
            "test_w005_an_application_that_cannot_be_told_is_named.<locals>.app does cannot be "
            "told",
            warning.msg,
        )
        self.assertIn("LifespanWrapper(application)", warning.hint)
        self.assertIn("SILENCED_SYSTEM_CHECKS = ['lifespan_signals.W005']", warning.hint)

    def test_sentry_and_opentelemetry_middleware_are_looked_through(self):
        from django.core.asgi import get_asgi_application as djangos
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from sentry_sdk.integrations.asgi import SentryAsgiMiddleware

        from lifespan_signals.asgi import get_asgi_application, speaks_lifespan, with_lifespan

        for wrap in (
            SentryAsgiMiddleware,
            OpenTelemetryMiddleware,
            lambda app: SentryAsgiMiddleware(OpenTelemetryMiddleware(app)),
        ):
            with self.subTest(wrap):
                plain = wrap(djangos())
                self.assertIs(speaks_lifespan(plain), False)
                [warning] = self.check(plain)
                self.assertEqual(warning.id, "lifespan_signals.W001")
                self.assertIn("but django.core.handlers.asgi.ASGIHandler (inside ", warning.msg)
                self.assertIsInstance(with_lifespan(plain)[0], LifespanWrapper)  # runasgi wraps
                ours = wrap(get_asgi_application())
                self.assertIs(speaks_lifespan(ours), True)
                self.assertEqual(self.check(ours), [])

    def test_starlette_speaks_lifespan(self):
        from starlette.applications import Starlette

        from lifespan_signals.asgi import speaks_lifespan

        self.assertIs(speaks_lifespan(Starlette()), True)
        self.assertEqual(self.check(Starlette()), [])

    def test_a_wrapper_cycle_is_not_followed_for_ever(self):
        from lifespan_signals.asgi import speaks_lifespan

        class Middleware:
            def __init__(self, app=None):
                self.app = app

            async def __call__(self, scope, receive, send):
                pass

        first, second = Middleware(), Middleware()
        first.app, second.app = second, first
        self.assertIsNone(speaks_lifespan(first))
        [warning] = self.check(first)
        self.assertEqual(warning.id, "lifespan_signals.W005")

    def test_static_files_wrapper_is_looked_through(self):
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
        from django.core.asgi import get_asgi_application

        # The wrapper is an ASGIHandler itself: only what it wraps tells. Around an application
        # that cannot be told, a check that stopped at the wrapper would say W001, not W005.
        async def app(scope, receive, send):
            pass

        with override_settings(
            INSTALLED_APPS=["django.contrib.staticfiles", "lifespan_signals"], STATIC_URL="/static/"
        ):
            [unknown] = self.check(ASGIStaticFilesHandler(app))
            [warning] = self.check(ASGIStaticFilesHandler(get_asgi_application()))
        self.assertEqual(unknown.id, "lifespan_signals.W005")  # what it wraps cannot be told
        self.assertIn(
            ".<locals>.app (inside django.contrib.staticfiles.handlers.ASGIStaticFilesHandler)",
            unknown.msg,
        )
        self.assertEqual(warning.id, "lifespan_signals.W001")

    def test_static_files_wrapper_around_ours_passes(self):
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        from lifespan_signals.asgi import get_asgi_application, speaks_lifespan

        with override_settings(
            INSTALLED_APPS=["django.contrib.staticfiles", "lifespan_signals"], STATIC_URL="/static/"
        ):
            app = ASGIStaticFilesHandler(get_asgi_application())
            self.assertIs(speaks_lifespan(app), True)
            self.assertEqual(self.check(app), [])

    def test_e004_a_string_is_not_an_application(self):
        [error] = self.check("mysite.asgi.application")
        self.assertEqual(error.id, "lifespan_signals.E004")
        self.assertEqual(
            error.msg,
            "The ASGI application 'tests._fake_asgi.application' (from ASGI_APPLICATION) should "
            "be an ASGI application, but it is str 'mysite.asgi.application', which cannot be "
            "called.",
        )
        self.assertIn("application = lifespan_signals.asgi.get_asgi_application()", error.hint)

    def test_e005_a_wsgi_application(self):
        from django.core.wsgi import get_wsgi_application

        def wsgi_function(environ, start_response):
            return []

        for app in (get_wsgi_application(), wsgi_function):
            with self.subTest(app=app):
                [error] = self.check(app)
                self.assertEqual(error.id, "lifespan_signals.E005")
                self.assertIn(
                    "is a WSGI application (it takes environ and start_response)", error.msg
                )
                self.assertIn("Keep the WSGI application in wsgi.py", error.hint)

    def test_manage_py_check_fails_on_a_wsgi_application(self):
        from django.core.wsgi import get_wsgi_application

        fake_module("tests._fake_asgi", application=get_wsgi_application())
        with (
            override_settings(ASGI_APPLICATION="tests._fake_asgi.application"),
            self.assertRaisesMessage(SystemCheckError, "lifespan_signals.E005"),
        ):
            call_command("check", tags=["lifespan_signals"])

    @override_settings(ASGI_APPLICATION="tests.nowhere.application")
    def test_w002_unimportable_application(self):
        [warning] = check_asgi_application()
        self.assertEqual(warning.id, "lifespan_signals.W002")
        self.assertIn("importing it raised ModuleNotFoundError", warning.msg)

    @override_settings(SETTINGS_MODULE="tests.projects.plainasgi.settings")
    def test_project_asgi_module_next_to_settings_is_found(self):
        [warning] = check_asgi_application()
        self.assertEqual(warning.id, "lifespan_signals.W001")
        self.assertIn("'tests.projects.plainasgi.asgi.application'", warning.msg)


class FindApplicationTests(SimpleTestCase):
    @override_settings(SETTINGS_MODULE="tests.projects.splitproject.settings.production")
    def test_split_settings_find_the_asgi_module_above(self):
        from lifespan_signals.asgi import find_application
        from tests.projects.splitproject.asgi import application

        self.assertEqual(
            find_application(), ("tests.projects.splitproject.asgi.application", application)
        )

    @override_settings(ROOT_URLCONF="tests.urls")  # SETTINGS_MODULE is None in here
    def test_works_under_override_settings(self):
        from django.conf import settings

        from lifespan_signals.asgi import find_application

        self.assertIsNone(settings.SETTINGS_MODULE)
        self.assertIsNone(find_application())  # tests.settings → tests.asgi, which doesn't exist
        self.assertEqual(check_asgi_application(), [])


# -- every bad setting, refused at startup on every server ------------------------------------

SERVERS = [UVICORN, HYPERCORN, GRANIAN, GUNICORN, RUNASGI, LIFESPAN_DAPHNE]


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("server", [server.param() for server in SERVERS])
def test_every_bad_setting_is_refused_at_startup_with_the_check_s_message(server, case, serve):
    _, _, check_id, message = BAD[case]
    proc = serve(server, settings=BAD_SETTINGS, env={"LIFESPAN_TEST_BAD_SETTING": case})
    returncode = proc.wait_exit(30)
    output = proc.output()

    assert returncode in server.failed_exits, output
    # The check's id and message (runasgi's own system checks print it as manage.py check does,
    # before startup), once per process that ran the lifespan, and no traceback of ours.
    assert f"lifespan_signals.{check_id}" in output, output
    assert 1 <= output.count(message) <= server.processes, output
    exceptions = traceback_exceptions(output)
    assert [line for line in exceptions if not line.startswith(server.failure_tracebacks)] == []
    # And W002 does not blame the application for a bad setting.
    assert "lifespan_signals.W002" not in output, output
