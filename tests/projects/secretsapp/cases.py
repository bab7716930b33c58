"""Malformed ``LIFESPAN_SIGNALS_CLIENTS`` values that carry a marker secret, one for each way the
setting can be refused: each check id, and a library's own error at startup. The marker is in
values only: keys are names (an option the backend does not accept is named, on purpose). The
sweep (``tests/clients/test_secrets.py``) asserts the marker is printed nowhere."""

from __future__ import annotations

from typing import Any

MARKER = "s3cr3t-MARKER-7f3a9"
BEARER = f"Bearer {MARKER}"
HEADERS = {"Authorization": BEARER, "X-Token": MARKER}

# name -> (the setting, the check id manage.py check reports, or None: only startup refuses it)
CASES: dict[str, tuple[Any, str | None]] = {
    "E010-list": ([{"BACKEND": "httpx.AsyncClient", "OPTIONS": {"headers": HEADERS}}], "E010"),
    "E010-str": (BEARER, "E010"),
    "E011-entry": ({"api": BEARER}, "E011"),
    "E011-backend": ({"api": {"BACKEND": MARKER}}, "E011"),
    "E011-backend-dict": ({"api": {"BACKEND": {"headers": HEADERS}}}, "E011"),
    "E011-options": ({"api": {"BACKEND": "httpx.AsyncClient", "OPTIONS": [BEARER]}}, "E011"),
    "E011-alias": ({(BEARER,): {"BACKEND": "httpx.AsyncClient"}}, "E011"),
    "E012": (
        {"api": {"BACKEND": "nosuchpackage.Client", "OPTIONS": {"auth": ("user", MARKER)}}},
        "E012",
    ),
    "E013": ({"api": {"BACKEND": "tests.projects.secretsapp.cases.MARKER"}}, "E013"),
    "E014": (
        {
            "api": {
                "BACKEND": "httpx.AsyncClient",
                "OPTIONS": {"base_ur": f"https://user:{MARKER}@example.com", "headers": HEADERS},
            }
        },
        "E014",
    ),
    "E015-timeout": (
        {"api": {"BACKEND": "httpx.AsyncClient", "OPTIONS": {"timeout": MARKER}}},
        "E015",
    ),
    "E015-nested": (
        {"api": {"BACKEND": "httpx.AsyncClient", "OPTIONS": {"timeout": {"connect": BEARER}}}},
        "E015",
    ),
    "E015-aiohttp": (
        {"api": {"BACKEND": "aiohttp.ClientSession", "OPTIONS": {"timeout": {"total": MARKER}}}},
        "E015",
    ),
    # Accepted by the checks; httpx itself refuses it, quoting it: 'Invalid "auth" argument'.
    "library-auth": ({"api": {"BACKEND": "httpx.AsyncClient", "OPTIONS": {"auth": BEARER}}}, None),
    "library-proxy": (
        {"api": {"BACKEND": "httpx.AsyncClient", "OPTIONS": {"proxy": f"ftp://u:{MARKER}@x"}}},
        None,
    ),
}
