from django.urls import path

from tests.projects.threadapp import views

urlpatterns = [
    path("", views.sync_view),
    path("health/", views.health),
    path("report/", views.report),
    path("db/", views.db_view),
]
