"""Run Django's own ASGI handler tests with ``LifespanASGIHandler`` in place of Django's.

``python -m tests.django_asgi_suite [--threads N] [--one-hop] [labels]`` (``make
django-asgi-suite`` runs it with the request threads off, on, and with the one-hop path). It
fetches the source distribution of the Django installed here (``pip download``, cached in
``.cache/``), then runs its ``tests/runtests.py`` on the labels (default: ``asgi``) with
``django.core.asgi.get_asgi_application`` and ``django.core.handlers.asgi.ASGIHandler`` replaced
by this package's, and ``LIFESPAN_SIGNALS_REQUEST_THREADS`` set to N (default: None).

``--one-hop`` sets ``LIFESPAN_SIGNALS_ONE_HOP = True`` too, and sends the requests of Django's
``AsyncClient`` (the ``handlers``, ``middleware``, ``middleware_exceptions`` and ``async`` tests)
down the one-hop chain: the sync middleware chain, run in one hop to a request thread, with
async middleware and views reached from it on the test's loop.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

import django

from tests.harness.sdist import release_tests


def django_tests() -> Path:
    """The ``tests`` directory of the installed Django's source distribution."""
    return release_tests("django", django.__version__, "runtests.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="request threads to keep")
    parser.add_argument("--one-hop", action="store_true", help="the one-hop request path")
    parser.add_argument("labels", nargs="*", default=["asgi"], help="test labels (asgi)")
    options = parser.parse_args()
    if options.one_hop and options.threads is None:
        parser.error("--one-hop needs --threads N")
    tests = django_tests()
    settings = tests / "lifespan_signals_settings.py"
    settings.write_text(
        "from test_sqlite import *  # noqa: F403\n\n"
        f"LIFESPAN_SIGNALS_REQUEST_THREADS = {options.threads!r}\n"
        f"LIFESPAN_SIGNALS_ONE_HOP = {options.one_hop!r}\n"
    )

    import django.core.asgi
    import django.core.handlers.asgi

    from lifespan_signals import asgi, threads

    # Django's tests subclass ASGIHandler and call get_asgi_application(): both become ours.
    django.core.handlers.asgi.ASGIHandler = asgi.LifespanASGIHandler  # type: ignore[misc]
    django.core.asgi.get_asgi_application = asgi.get_asgi_application  # type: ignore[assignment]
    if options.one_hop:
        _one_hop_client(options.threads)
        _expect_one_hop_differences()
    print(f"Django {django.__version__} {' '.join(options.labels)}: LifespanASGIHandler, "
          f"LIFESPAN_SIGNALS_REQUEST_THREADS = {options.threads!r}, "
          f"LIFESPAN_SIGNALS_ONE_HOP = {options.one_hop!r}", flush=True)  # fmt: skip
    sys.path.insert(0, str(tests))
    sys.argv = [str(tests / "runtests.py"), "--settings=lifespan_signals_settings",
                "--parallel=1", "-v", "2", *options.labels]  # fmt: skip
    code: object = 0
    try:
        runpy.run_path(str(tests / "runtests.py"), run_name="__main__")
    except SystemExit as exit:  # runtests exits 1 on failures
        code = exit.code
    started = next(threads._names) - 1
    print(f"Request threads started: {started}", flush=True)
    if options.threads is not None and not started:
        sys.exit("The request threads were not used: the substitution did not take.")
    sys.exit(code)


def _one_hop_client(size: int) -> None:
    """Make Django's AsyncClient run its requests' middleware and views down the one-hop chain."""
    import asyncio

    from django.test import client

    from lifespan_signals import _one_hop
    from lifespan_signals.threads import RequestThreads

    pool = RequestThreads(size)

    async def never() -> dict[str, str]:
        await asyncio.Future()  # the test client's "connection" never goes away
        raise AssertionError

    class OneHopClientHandler(client.AsyncClientHandler):  # type: ignore[misc]
        async def get_response_async(self, request):  # type: ignore[no-untyped-def]
            chain = _one_hop.SyncChain()  # MIDDLEWARE may be overridden test by test
            thread = pool.acquire()
            serving = _one_hop._Request(asyncio.get_running_loop(), never, thread.thread)

            def respond():  # type: ignore[no-untyped-def]
                token = _one_hop._serving.set(serving)
                try:
                    return chain.get_response(request)
                finally:
                    _one_hop._serving.reset(token)

            try:
                return await _one_hop._hop(thread, respond)
            finally:
                if serving.listener is not None:
                    serving.listener.cancel()
                pool.release(thread)

    client.AsyncClientHandler = OneHopClientHandler  # type: ignore[misc]


# Tests of Django's that cannot pass on the one-hop path, by design: expected failures there
# (an unexpected success fails the run). docs/howto/request-threads.md explains each.
ONE_HOP_DIFFERENCES = {
    # No listener for http.disconnect while sync work runs: the path reads nothing from the
    # connection after the body then, so an invalid message there goes unnoticed...
    "asgi.tests.ASGITest.test_assert_in_listen_for_disconnect",
    # ...and a disconnect that came with the body is not looked for: the response of the sync
    # view is sent (servers drop it), where Django's handler sends nothing.
    "asgi.tests.ASGITest.test_disconnect_with_body",
    # A TemplateResponse whose render() is async needs Django's async chain; the sync chain
    # calls render() and does not await it.
    "middleware_exceptions.tests.AsyncMiddlewareTests"
    ".test_exception_in_async_render_passed_to_process_exception",
}


def _expect_one_hop_differences() -> None:
    """Mark ``ONE_HOP_DIFFERENCES`` as expected failures as unittest loads them."""
    import unittest

    load = unittest.TestLoader.loadTestsFromTestCase

    def loading(self: unittest.TestLoader, case: type[unittest.TestCase]) -> unittest.TestSuite:
        suite = load(self, case)
        for test in suite:
            if test.id() in ONE_HOP_DIFFERENCES:
                # On the instance: Django replaces an async test method by a sync wrapper.
                setattr(test, "__unittest_expecting_failure__", True)  # noqa: B010
        return suite

    unittest.TestLoader.loadTestsFromTestCase = loading  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
