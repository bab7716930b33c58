"""The two signals: the ASGI lifespan, the Django way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.dispatch import Signal

__all__ = ["LifespanSignal", "asgi_shutdown", "asgi_startup"]


class LifespanSignal(Signal):
    """A ``Signal`` whose ``connect()`` holds receivers strongly by default (``weak=False``).

    Django's signals hold weak references by default: a nested function, lambda or bound method
    of a temporary object connected in ``AppConfig.ready()`` would be garbage-collected, and with
    ``DEBUG=False`` silently never run. Lifespan receivers are few and live as long as the process,
    so ours keep them. Pass ``weak=True`` to get Django's behaviour back.
    """

    def connect(
        self,
        receiver: Callable[..., Any],
        sender: object | None = None,
        weak: bool = False,
        dispatch_uid: object | None = None,
    ) -> None:
        super().connect(receiver, sender, weak, dispatch_uid)


#: Sent once per process when the ASGI server starts, before it serves anything.
#:
#: Sender: the class of the application that handled the lifespan scope (for example
#: ``lifespan_signals.asgi.LifespanASGIHandler``). Keyword arguments:
#:
#: - ``scope``: the ASGI ``lifespan`` scope;
#: - ``state``: the lifespan state dict. What a receiver puts in it reaches every request as
#:   ``request.state``, every Channels consumer as ``scope["state"]``, and other code through
#:   :func:`lifespan_signals.get_state`.
#:
#: Receivers must accept ``**kwargs``. They are held strongly (see :class:`LifespanSignal`): a
#: nested function or lambda connected in ``ready()`` stays connected. Async receivers run
#: concurrently on the server's event loop: create loop-bound objects (``aiohttp.ClientSession``,
#: ``httpx.AsyncClient``) there. Sync receivers run one after another in a worker thread with no
#: event loop. Every receiver runs even when another fails; any failure makes the server refuse to
#: start, after ``asgi_shutdown`` has been sent so that what the healthy receivers opened gets
#: closed. A failure is anything a receiver raises, ``BaseException`` included (``SystemExit``,
#: ``KeyboardInterrupt``), or running past ``LIFESPAN_SIGNALS_STARTUP_TIMEOUT``.
asgi_startup = LifespanSignal()

#: Sent once per process when the ASGI server shuts down, after the last request; also after a
#: failed startup. Same sender and keyword arguments as :data:`asgi_startup`; ``state`` is the dict
#: startup filled. Receivers must accept ``**kwargs`` and tolerate a partly filled ``state``
#: (``if "http" in state: ...``), because startup may have failed half way. Every receiver runs
#: even when another fails; failures are reported together.
asgi_shutdown = LifespanSignal()
