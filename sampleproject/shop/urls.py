from __future__ import annotations

from django.urls import path

from sampleproject.shop import views

app_name = "shop"

urlpatterns = [
    path("", views.home, name="home"),
    path("health/", views.health, name="health"),
    path("services/promotions/", views.promotions, name="promotions"),
    path("services/recommendations/", views.recommendations, name="recommendations"),
]
