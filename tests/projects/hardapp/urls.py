from django.urls import path

from tests.projects.hardapp import views
from tests.projects.serverapp.urls import urlpatterns as server_urlpatterns

urlpatterns = [
    *server_urlpatterns,
    path("rotate/", views.rotate),
    path("attribute/", views.attribute),
]
