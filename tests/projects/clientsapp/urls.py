from django.urls import path

from tests.projects.clientsapp import views

urlpatterns = [
    path("", views.index),
    path("sync/", views.sync_index),
    path("health/", views.health),
]
