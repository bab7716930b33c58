"""runasgi's reloader child survives a module leaving ``sys.modules`` while Django scans them."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import autoreload

from lifespan_signals.daphne.reloader.child import survive_module_churn


class _Vanishing:
    """A ``sys.modules`` key that removes itself while Django's reloader sorts the keys.

    Django lists ``sorted(sys.modules)``, then looks each key up. A module that fails to import
    in another thread (the server thread's lazy imports) is in the list but gone at the lookup;
    this key does the same, deterministically.
    """

    def _vanish(self, other: object) -> bool:
        sys.modules.pop(self, None)  # type: ignore[call-overload]
        return False

    __lt__ = __gt__ = _vanish


@contextlib.contextmanager
def _a_module_vanishing() -> Iterator[None]:
    key = _Vanishing()
    sys.modules[key] = sys  # type: ignore[index]
    try:
        yield
    finally:
        sys.modules.pop(key, None)  # type: ignore[call-overload]


def test_django_reloader_alone_fails_when_a_listed_module_is_gone():
    # The race the child's reloader must survive. If Django fixes it, this fails, and
    # survive_module_churn can go.
    reloader = autoreload.StatReloader()
    with _a_module_vanishing(), pytest.raises(KeyError):
        list(reloader.watched_files())


def test_reloader_scans_again_when_a_listed_module_is_gone():
    reloader = autoreload.StatReloader()
    survive_module_churn(reloader)
    with _a_module_vanishing():
        files = list(reloader.watched_files())
    assert Path(__file__).resolve() in files
    assert Path(autoreload.__file__).resolve() in files


def test_reloader_gives_up_when_modules_keep_vanishing():
    # A KeyError that keeps coming is not churn: it is raised, not retried for ever.
    reloader = autoreload.StatReloader()
    scan = reloader.watched_files
    scans = 0

    def a_module_vanishes_every_time(include_globs=True):
        nonlocal scans
        scans += 1
        sys.modules[_Vanishing()] = sys  # type: ignore[index]
        return scan(include_globs)

    reloader.watched_files = a_module_vanishes_every_time
    survive_module_churn(reloader)
    with pytest.raises(KeyError):
        list(reloader.watched_files())
    assert scans == 10
