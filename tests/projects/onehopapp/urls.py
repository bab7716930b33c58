from django.urls import path

from tests.projects.onehopapp import views
from tests.projects.threadapp import views as thread_views

urlpatterns = [
    # threadapp's, for the servers' tests (the exclusivity contract of request threads)
    path("", thread_views.sync_view),
    path("health/", thread_views.health),
    path("report/", thread_views.report),
    path("db/", thread_views.db_view),
    path("pool/", views.pool_view),
    path("pool-stats/", views.pool_stats),
    # the one-hop path's own
    path("sync/", views.sync_view),
    path("async/", views.async_view),
    path("sleep/", views.sleep_view),
    path("async-sleep/", views.async_sleep_view),
    path("stream/", views.streaming_sync),
    path("astream/", views.streaming_async),
    path("file/", views.file_view),
    path("big/", views.big_view),
    path("upload/", views.upload_sync),
    path("body/", views.body_sync),
    path("abody/", views.body_async),
    path("task/", views.task_view),
]
