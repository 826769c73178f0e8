"""The wiki at /, its notifications, and /health for Phoenix's health check."""

from django.db import connection
from django.http import HttpResponse
from django.urls import include, path


def health(request):
    """200 once the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok\n", content_type="text/plain")


urlpatterns = [
    path("health", health),
    path("notifications/", include("django_nyt.urls")),
    path("", include("wiki.urls")),
]
