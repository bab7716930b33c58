"""System checks of LIFESPAN_SIGNALS_CLIENTS: E010-E015."""

from __future__ import annotations

import sys
from unittest import mock

from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import SimpleTestCase, override_settings

from lifespan_signals.checks import check_clients

HTTPX = {"BACKEND": "httpx.AsyncClient"}


def problems(value):
    with override_settings(LIFESPAN_SIGNALS_CLIENTS=value):
        return [(error.id, error.msg, error.hint) for error in check_clients()]


class CheckTests(SimpleTestCase):
    def test_valid_settings_pass(self):
        self.assertEqual(check_clients(), [])  # not set
        valid = {
            "default": {"BACKEND": "httpx.AsyncClient", "OPTIONS": {"timeout": 10, "limits": {}}},
            "github": {
                "BACKEND": "aiohttp.ClientSession",
                "OPTIONS": {
                    "base_url": "http://x",
                    "timeout": {"total": 5},
                    "connector": {"limit": 5},
                },
            },
            "custom": {"BACKEND": "tests.clients.backends.Recorder", "OPTIONS": {"anything": 1}},
            "no signature": {"BACKEND": "builtins.dict", "OPTIONS": {"anything": 1}},
        }
        self.assertEqual(problems(valid), [])

    def test_e010_not_a_dict(self):
        [(check_id, message, hint)] = problems([HTTPX])
        self.assertEqual(check_id, "lifespan_signals.E010")
        self.assertEqual(
            message,
            "LIFESPAN_SIGNALS_CLIENTS should be a dict of aliases to dicts, not a list of 1 dict.",
        )
        self.assertIn('"default": {"BACKEND": "httpx.AsyncClient"', hint)

    def test_e011_an_entry_of_the_wrong_shape(self):
        for entry, text in [
            ("httpx.AsyncClient", "LIFESPAN_SIGNALS_CLIENTS['a'] should be a dict with"),
            (
                {**HTTPX, "OPTION": {}},
                "should have only the keys 'BACKEND' and 'OPTIONS', not ['OPTION']",
            ),
            (
                {"OPTIONS": {}},
                "LIFESPAN_SIGNALS_CLIENTS['a']['BACKEND'] should be a dotted path "
                "(module.attribute), not None",
            ),
            (
                {**HTTPX, "OPTIONS": ["x"]},
                "['OPTIONS'] should be a dict of keyword arguments, not a list of 1 str.",
            ),
        ]:
            with self.subTest(entry):
                [(check_id, message, _)] = problems({"a": entry})
                self.assertEqual(check_id, "lifespan_signals.E011")
                self.assertIn(text, message)
        [(check_id, message, _)] = problems({1: HTTPX})
        self.assertEqual(
            (check_id, message),
            (
                "lifespan_signals.E011",
                "LIFESPAN_SIGNALS_CLIENTS's aliases should be non-empty strings, not an int.",
            ),
        )

    def test_e012_backend_not_importable_with_the_extra_to_install(self):
        # Not installed (a None in sys.modules makes the import fail and find_spec say so).
        for package in ("httpx", "aiohttp"):
            with mock.patch.dict(sys.modules, {package: None}):
                [(check_id, message, hint)] = problems({"a": {"BACKEND": f"{package}.X"}})
            self.assertEqual(check_id, "lifespan_signals.E012")
            self.assertIn("LIFESPAN_SIGNALS_CLIENTS['a']['BACKEND'] should be importable", message)
            self.assertEqual(hint, f"Install it: pip install 'lifespan-signals[{package}]'.")
        # Installed, with a typo in the class name: installing is not the fix.
        [(check_id, _, hint)] = problems({"a": {"BACKEND": "httpx.AsyncClent"}})
        self.assertEqual(check_id, "lifespan_signals.E012")
        self.assertIn("Check the dotted path", hint)

    def test_e012_a_path_import_string_cannot_even_parse_is_a_check_error_not_a_crash(self):
        for path in (".x", "x", ""):
            with self.subTest(path):
                [(check_id, message, _)] = problems({"a": {"BACKEND": path}})
                self.assertIn(check_id, ("lifespan_signals.E011", "lifespan_signals.E012"))
                self.assertIn("LIFESPAN_SIGNALS_CLIENTS['a']['BACKEND']", message)
        [(_, _, hint)] = problems({"a": {"BACKEND": "nosuchpackage.Client"}})
        self.assertEqual(
            hint, "Check the dotted path (module.attribute), and that its package is installed."
        )

    def test_e013_backend_not_callable(self):
        [(check_id, message, _)] = problems({"a": {"BACKEND": "tests.settings.SECRET_KEY"}})
        self.assertEqual(check_id, "lifespan_signals.E013")
        self.assertEqual(
            message,
            "LIFESPAN_SIGNALS_CLIENTS['a']['BACKEND'] should name a class or factory, not a str.",
        )

    def test_e014_an_option_the_backend_does_not_accept(self):
        [(check_id, message, hint)] = problems({"a": {**HTTPX, "OPTIONS": {"base_ur": "http://x"}}})
        self.assertEqual(check_id, "lifespan_signals.E014")
        self.assertEqual(
            message,
            "LIFESPAN_SIGNALS_CLIENTS['a']['OPTIONS'] should hold keyword arguments of "
            "httpx.AsyncClient, which does not accept 'base_ur'.",
        )
        self.assertTrue(
            hint.startswith("Did you mean 'base_url'? Accepted: auth, base_url, "), hint
        )
        aiohttp = {"BACKEND": "aiohttp.ClientSession", "OPTIONS": {"conector": {}}}
        [(check_id, _, hint)] = problems({"a": aiohttp})
        self.assertTrue(hint.startswith("Did you mean 'connector'?"), hint)

    def test_e015_values_that_cannot_be_converted(self):
        aiohttp, httpx = "aiohttp.ClientSession", "httpx.AsyncClient"
        for backend, options, text in [
            ("httpx.AsyncClient", {"timeout": -1}, "['timeout'] should be convertible for "
             "httpx.AsyncClient, but an int is not: seconds should be positive and finite"),
            ("httpx.AsyncClient", {"timeout": float("nan")}, "but a float is not"),
            ("httpx.AsyncClient", {"timeout": float("inf")}, "but a float is not"),
            ("httpx.AsyncClient", {"timeout": 0}, "but an int is not"),
            (httpx, {"timeout": 10**400}, "seconds should be positive and finite"),
            (httpx, {"timeout": "10"}, "but a str is not: seconds should be a number"),
            ("httpx.AsyncClient", {"timeout": True}, "seconds should be a number"),
            (httpx, {"limits": {"keepalive_expiry": -5}}, "seconds should be positive"),
            ("httpx.AsyncClient", {"limits": {"max_conections": 5}}, "max_conections"),
            ("httpx.AsyncClient", {"limits": 5}, "a dict of keyword arguments is needed"),
            (aiohttp, {"timeout": -1}, "for aiohttp.client.ClientSession, but an int is not"),
            (aiohttp, {"timeout": {"total": 0}}, "seconds should be positive"),
            (aiohttp, {"connector": {"limt": 5}}, "aiohttp.TCPConnector does not accept ['limt']"),
        ]:  # fmt: skip
            with self.subTest(options):
                found = problems({"a": {"BACKEND": backend, "OPTIONS": options}})
                self.assertEqual([check_id for check_id, _, _ in found], ["lifespan_signals.E015"])
                self.assertIn(text, found[0][1])
                self.assertIn("positive numbers of seconds (or None for no limit)", found[0][2])

    @override_settings(LIFESPAN_SIGNALS_CLIENTS={"a": {**HTTPX, "OPTIONS": {"base_ur": "x"}}})
    def test_manage_py_check_fails_on_a_bad_setting(self):
        with self.assertRaisesMessage(SystemCheckError, "(lifespan_signals.E014)"):
            call_command("check", tags=["lifespan_signals"])
