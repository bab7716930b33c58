"""System checks: one test per id, and manage.py check failing on a bad setting."""

from __future__ import annotations

import sys
import types

from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import SimpleTestCase, override_settings

from lifespan_signals.checks import check_asgi_application, check_middleware, check_settings

MIDDLEWARE = "lifespan_signals.middleware.LifespanStateMiddleware"


def fake_module(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


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

    @override_settings(LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT=True)
    def test_e002_shutdown_timeout(self):
        [error] = check_settings()
        self.assertEqual(error.id, "lifespan_signals.E002")
        self.assertIn("not True", error.msg)

    @override_settings(LIFESPAN_SIGNALS_STARTUP_TIMEOUT="30")
    def test_manage_py_check_fails_on_a_bad_setting(self):
        with self.assertRaisesMessage(SystemCheckError, "lifespan_signals.E001"):
            call_command("check")


class MiddlewareChecksTests(SimpleTestCase):
    @override_settings(MIDDLEWARE=[MIDDLEWARE, MIDDLEWARE])
    def test_w003_listed_twice(self):
        [warning] = check_middleware()
        self.assertEqual(warning.id, "lifespan_signals.W003")
        self.assertIn("should be listed once in MIDDLEWARE, not 2 times", warning.msg)

    def test_listed_once_passes(self):
        self.assertEqual(check_middleware(), [])


class ApplicationChecksTests(SimpleTestCase):
    def test_no_asgi_application_found_passes(self):
        self.assertEqual(check_asgi_application(), [])  # tests.settings has no asgi.py

    def check(self, application):
        fake_module("tests._fake_asgi", application=application)
        with override_settings(ASGI_APPLICATION="tests._fake_asgi.application"):
            return check_asgi_application()

    def test_lifespan_handler_passes(self):
        from lifespan_signals.asgi import LifespanMiddleware, get_asgi_application

        self.assertEqual(self.check(get_asgi_application()), [])
        self.assertEqual(self.check(LifespanMiddleware(object())), [])

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

    def test_unknown_application_passes(self):
        async def app(scope, receive, send):
            pass

        self.assertEqual(self.check(app), [])

    def test_static_files_wrapper_is_looked_through(self):
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
        from django.core.asgi import get_asgi_application

        with override_settings(
            INSTALLED_APPS=["django.contrib.staticfiles", "lifespan_signals"], STATIC_URL="/static/"
        ):
            [warning] = self.check(ASGIStaticFilesHandler(get_asgi_application()))
        self.assertEqual(warning.id, "lifespan_signals.W001")

    def test_e003_state_middleware_used_as_the_asgi_application(self):
        from lifespan_signals.middleware import LifespanStateMiddleware

        [error] = self.check(LifespanStateMiddleware(lambda request: None))
        self.assertEqual(error.id, "lifespan_signals.E003")
        self.assertIn("should be an ASGI application, not LifespanStateMiddleware", error.msg)

    @override_settings(ASGI_APPLICATION="tests.nowhere.application")
    def test_w002_unimportable_application(self):
        [warning] = check_asgi_application()
        self.assertEqual(warning.id, "lifespan_signals.W002")
        self.assertIn("importing it raised ModuleNotFoundError", warning.msg)

    @override_settings(SETTINGS_MODULE="tests.plainasgi.settings")
    def test_project_asgi_module_next_to_settings_is_found(self):
        [warning] = check_asgi_application()
        self.assertEqual(warning.id, "lifespan_signals.W001")
        self.assertIn("'tests.plainasgi.asgi.application'", warning.msg)


class FindApplicationTests(SimpleTestCase):
    @override_settings(ROOT_URLCONF="tests.urls")  # SETTINGS_MODULE is None in here
    def test_works_under_override_settings(self):
        from django.conf import settings

        from lifespan_signals.asgi import find_application

        self.assertIsNone(settings.SETTINGS_MODULE)
        self.assertIsNone(find_application())  # tests.settings → tests.asgi, which doesn't exist
        self.assertEqual(check_asgi_application(), [])
