from django.http import HttpRequest, JsonResponse
from django.urls import path

from tests.projects.tasksapp.tasks import fetch


def enqueue(request: HttpRequest) -> JsonResponse:
    """Enqueue ``?count=`` tasks (a sync view, as most that enqueue are)."""
    ids = [fetch.enqueue(number).id for number in range(int(request.GET.get("count", "1")))]
    return JsonResponse({"enqueued": ids})


urlpatterns = [path("enqueue/", enqueue)]
