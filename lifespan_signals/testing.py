"""Test helpers: run the ASGI lifespan in tests, with clients whose requests carry its state.

::

    from lifespan_signals.testing import AsyncClient, lifespan

    async def test_home():
        async with lifespan() as state:
            response = await AsyncClient().get("/")

Also :func:`in_lifespan`, :class:`LifespanTestMixin` for Django test cases, and, with Channels
installed, ``HttpCommunicator`` and ``WebsocketCommunicator``: made on first import, and left out
of ``__all__``, so that this module works without Channels. pytest: :mod:`.pytest_plugin`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django import test
from django.test import override_settings

from lifespan_signals._registry import registry
from lifespan_signals.asgi import project_application
from lifespan_signals.clients import UnknownClient
from lifespan_signals.conf import settings, timeout_value_problem
from lifespan_signals.lifespan.app import LifespanApp
from lifespan_signals.lifespan.driver import LifespanDriver, LifespanFailed
from lifespan_signals.lifespan.host import backstop_timeouts
from lifespan_signals.state import get_state

__all__ = [
    "AsyncClient",
    "LifespanFailed",
    "LifespanTestMixin",
    "in_lifespan",
    "lifespan",
    "override_clients",
    "project_app",
]

F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger(__name__)

# How much longer than the timeout given the helpers wait for an application that is not ours.
FOREIGN_GRACE = 1.0


def project_app() -> Any:
    """The project's application, as :func:`lifespan` runs it by default (``lifespan_app``)."""
    found = project_application()
    if found.path is None:
        logger.info(
            "lifespan(): no ASGI_APPLICATION setting and no asgi module at or above the settings "
            "module: running lifespan_signals.asgi.get_asgi_application(). Pass app=... to run "
            "another."
        )
    else:
        logger.info("lifespan(): running %s", found.path)
    return found.application


def _timeout(name: str, given: float | None, setting: float | None, default: float) -> float:
    if given is None:
        return setting or default
    problem = timeout_value_problem(name, given)
    if problem:
        raise ValueError(f"lifespan(): {problem}")
    return given


def _driver_timeouts(app: Any, startup: float, shutdown: float) -> tuple[float, float]:
    """The driver waits for ours as long as they may take; for other applications, the timeout
    given plus :data:`FOREIGN_GRACE`."""
    if isinstance(app, LifespanApp) and app.sends_signals:
        backstops = backstop_timeouts(startup, shutdown)
        return cast(tuple[float, float], backstops)
    return startup + FOREIGN_GRACE, shutdown + FOREIGN_GRACE


def _copy_for_scope(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """A shallow copy of ``state``, else of the running lifespan's; None when there is neither."""
    if state is None and (running := registry.current()) is not None:
        state = running.state
    return None if state is None else state.copy()


@contextlib.asynccontextmanager
async def lifespan(
    app: Any = None,
    *,
    state: dict[str, Any] | None = None,
    startup_timeout: float | None = None,
    shutdown_timeout: float | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Run ``app``'s ASGI lifespan around a block, which gets the state (also from ``get_state()``).

    ``app``: the project's application by default (``ASGI_APPLICATION``, else ``asgi.py`` next to
    the settings, else lifespan_signals' handler). Startup on enter, shutdown on exit, also when
    the block raises; a failure raises :class:`LifespanFailed` with the report naming receivers.
    Timeouts (seconds, positive) default to the ``LIFESPAN_SIGNALS_*_TIMEOUT`` settings, or
    30 s / 10 s where those are None: a hanging receiver fails the test, never hangs it. An
    application that is not lifespan_signals' gets the timeout given plus 1 s to reply.
    """
    startup = _timeout("startup_timeout", startup_timeout, settings.STARTUP_TIMEOUT, 30.0)
    shutdown = _timeout("shutdown_timeout", shutdown_timeout, settings.SHUTDOWN_TIMEOUT, 10.0)
    app = project_app() if app is None else app
    # lifespan_signals applications read their budgets from settings when a phase starts.
    budgets = override_settings(
        LIFESPAN_SIGNALS_STARTUP_TIMEOUT=startup, LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT=shutdown
    )
    startup_backstop, shutdown_backstop = _driver_timeouts(app, startup, shutdown)
    driver = LifespanDriver(
        app, state, startup_timeout=startup_backstop, shutdown_timeout=shutdown_backstop
    )
    with budgets:
        await driver.startup()
    try:
        with driver.registered() as current:
            yield current
    except BaseException as exc:
        try:
            with budgets:
                await driver.shutdown()
        except LifespanFailed as failed:  # the block's exception is the one to report
            if hasattr(exc, "add_note"):  # Python 3.11+
                exc.add_note(f"Lifespan shutdown failed too: {failed.message}")
        raise
    else:
        with budgets:
            await driver.shutdown()


def in_lifespan(app: Any = None, **options: Any) -> Callable[[F], F]:
    """Decorate a test function, async or sync, to run inside :func:`lifespan`.

    An async function gets the lifespan on the loop that runs it, so what receivers open there
    (an ``aiohttp.ClientSession``) is used and closed on its own loop. A sync function runs in its
    thread, in a new loop that runs the lifespan too; its ``async_to_sync`` calls run there.
    """

    def decorate(func: F) -> F:
        if iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with lifespan(app, **options):
                    return await func(*args, **kwargs)

            return cast(F, run_async)

        async def run_in_loop(*args: Any, **kwargs: Any) -> Any:
            async with lifespan(app, **options):
                return await sync_to_async(func)(*args, **kwargs)

        @functools.wraps(func)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            return async_to_sync(run_in_loop)(*args, **kwargs)

        return cast(F, run_sync)

    return decorate


class AsyncClient(test.AsyncClient):
    """Django's ``AsyncClient`` whose requests carry a shallow copy of the lifespan state.

    ``state``: the state to copy; by default, that of the lifespan running at request time (none
    running: no state). Requests go through Django's handler, not the project's ASGI application.
    """

    def __init__(self, *args: Any, state: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lifespan_state = state

    # Django 5.2 to 6.1 build every request's scope here; a request keyword would become a header.
    def _base_scope(self, **request: Any) -> dict[str, Any]:
        scope: dict[str, Any] = super()._base_scope(**request)  # type: ignore[misc]
        if (state := _copy_for_scope(self.lifespan_state)) is not None:
            scope["state"] = state
        return scope


if TYPE_CHECKING:
    _TestCase = test.SimpleTestCase
else:
    _TestCase = object


class LifespanTestMixin(_TestCase):
    """Run the lifespan around each test of a Django test case, on the test's own event loop.

    ``class MyTests(LifespanTestMixin, TestCase)``: each test, async or sync, runs in
    :func:`lifespan` of ``lifespan_app`` (default: the project's application), with the state in
    ``self.lifespan_state`` and ``self.async_client`` carrying it; ``setUp``/``tearDown`` do not.
    """

    lifespan_app: Any = None
    async_client_class = AsyncClient

    @property
    def lifespan_state(self) -> dict[str, Any]:
        return get_state()

    def _callTestMethod(self, method: Callable[[], Any]) -> None:  # noqa: N802 - unittest's
        # Django has wrapped an async test in async_to_sync, which would start its loop after we
        # could start the lifespan; take the test as written, so that both share one loop.
        test_method = getattr(type(self), self._testMethodName).__get__(self, type(self))
        run = in_lifespan(type(self).lifespan_app)(test_method)
        run_here = async_to_sync(run) if iscoroutinefunction(run) else run
        super()._callTestMethod(run_here)  # type: ignore[misc]  # not in typeshed


class _StateInScope:
    """Put a shallow copy of the lifespan state in a Channels communicator's scope."""

    scope: dict[str, Any]

    def __init__(self, *args: Any, state: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if (copy := _copy_for_scope(state)) is not None:
            self.scope["state"] = copy


def _communicators() -> dict[str, type]:
    try:
        from channels import testing
    except ImportError as exc:
        raise ImportError(
            "lifespan_signals.testing.HttpCommunicator and WebsocketCommunicator need Channels: "
            "pip install 'lifespan-signals[channels]'."
        ) from exc

    class HttpCommunicator(_StateInScope, testing.HttpCommunicator):  # type: ignore[misc]
        """Channels' ``HttpCommunicator``; ``state=`` as for :class:`AsyncClient`."""

    class WebsocketCommunicator(_StateInScope, testing.WebsocketCommunicator):  # type: ignore[misc]
        """Channels' ``WebsocketCommunicator``; ``state=`` as for :class:`AsyncClient`."""

    for cls in (HttpCommunicator, WebsocketCommunicator):
        cls.__module__, cls.__qualname__ = __name__, cls.__name__
    return {"HttpCommunicator": HttpCommunicator, "WebsocketCommunicator": WebsocketCommunicator}


def __getattr__(name: str) -> Any:
    if name in ("HttpCommunicator", "WebsocketCommunicator"):
        globals().update(_communicators())
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class override_clients(test.utils.TestContextDecorator):  # noqa: N801 - like override_settings
    """Replace declared clients for a block, a test function (sync or async) or a test case.

    ``override_clients(default=httpx.AsyncClient(transport=httpx.MockTransport(handler)))``:
    ``clients["default"]`` returns the replacement, inside a lifespan or not; the lifespan still
    opens and closes the declared clients, and never closes a replacement (the test owns it).
    """

    def __init__(self, **replacements: Any) -> None:
        self.replacements = replacements
        self._pushed: list[dict[str, Any]] = []
        super().__init__()

    def enable(self) -> None:
        declared = list(settings.CLIENTS)
        if unknown := sorted(set(self.replacements) - set(declared)):
            raise UnknownClient(
                f"override_clients() got aliases that LIFESPAN_SIGNALS_CLIENTS does not declare: "
                f"{unknown!r} (declared: {declared!r}). Declare them in the test settings, or "
                "fix the names."
            )
        # One pushed dict per entry: the same instance may be entered again while it is active.
        self._pushed.append(dict(self.replacements))
        registry.add_override(self._pushed[-1])

    def disable(self) -> None:
        registry.remove_override(self._pushed.pop())
