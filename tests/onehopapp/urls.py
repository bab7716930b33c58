from django.urls import path

from tests.onehopapp import views

urlpatterns = [
    path("", views.sync_view),
    path("async/", views.async_view),
    path("sleep/", views.sleep_view),
    path("async-sleep/", views.async_sleep_view),
    path("stream/", views.streaming_sync),
    path("astream/", views.streaming_async),
    path("file/", views.file_view),
    path("upload/", views.upload_sync),
    path("body/", views.body_sync),
    path("abody/", views.body_async),
    path("task/", views.task_view),
    path("health/", views.health),
]
