from __future__ import annotations

from django.urls import path

from bench import views

urlpatterns = [
    path("hello/", views.hello),
    path("aiohttp/shared/", views.aiohttp_shared),
    path("aiohttp/per-request/", views.aiohttp_per_request),
    path("aiohttp/global/", views.aiohttp_global),
    path("aiohttp/declared/", views.aiohttp_declared),
    path("httpx/shared/", views.httpx_shared),
    path("httpx/per-request/", views.httpx_per_request),
]
