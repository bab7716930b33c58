"""Django middleware that gives each request its lifespan state as ``request.state``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from lifespan_signals.state import RequestState

__all__ = ["LifespanStateMiddleware"]

GetResponse = Callable[[HttpRequest], Any]


class LifespanStateMiddleware:
    """Set ``request.state`` to the request's lifespan state (see :class:`RequestState`)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self.__acall__(request)
        _attach(request)
        response: HttpResponseBase = self.get_response(request)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        _attach(request)
        response: HttpResponseBase = await self.get_response(request)
        return response


def _attach(request: HttpRequest) -> None:
    scope = getattr(request, "scope", None)  # only ASGI requests have one
    request.state = RequestState(scope.get("state") if scope else None)  # type: ignore[attr-defined]
