"""The product's URLs plus two bare views, for the benchmark only.

`bare/` is open to anyone and does nothing: the cost of Django itself (middleware,
URL resolving, a response). `bare/user/` is behind the login check like every desk
page, so a logged-in request also pays for loading the session and the user.
"""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.urls import include, path


@login_not_required
def bare(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


def bare_user(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [
    path("bench/bare/", bare, name="bench-bare"),
    path("bench/bare/user/", bare_user, name="bench-bare-user"),
    path("", include("resq.urls")),
]
