"""The two signals: the ASGI lifespan, the Django way."""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["asgi_shutdown", "asgi_startup"]

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
#: Receivers must accept ``**kwargs``. Async receivers run concurrently on the server's event
#: loop: create loop-bound objects (``aiohttp.ClientSession``, ``httpx.AsyncClient``) there.
#: Sync receivers run one after another in a worker thread with no event loop. Every receiver runs
#: even when another fails; any failure makes the server refuse to start, after ``asgi_shutdown``
#: has been sent so that what the healthy receivers opened gets closed.
asgi_startup = Signal()

#: Sent once per process when the ASGI server shuts down, after the last request; also after a
#: failed startup. Same sender and keyword arguments as :data:`asgi_startup`; ``state`` is the dict
#: startup filled. Receivers must accept ``**kwargs`` and tolerate a partly filled ``state``
#: (``if "http" in state: ...``), because startup may have failed half way. Every receiver runs
#: even when another fails; failures are reported together.
asgi_shutdown = Signal()
