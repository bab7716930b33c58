from django.urls import path

from tests.projects.serverapp import views

urlpatterns = [
    path("", views.index),
    path("health/", views.health),
    path("slow/", views.slow),
    path("slow-sync/", views.slow_sync),
]
