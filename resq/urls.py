from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("accounts.urls")),
    # allauth's password, two-factor and session pages, after accounts.urls: both
    # serve /accounts/login/, and the first (accounts:login) answers it.
    path("accounts/", include("accounts.allauth_urls")),
    path("desk/", include("queueing.urls")),
    path("reports/", include("reporting.urls")),
    # The students' side: the room's display, check-in, a student's own page.
    path("", include("queueing.student_urls")),
    # One login page for everyone: the admin's own form would sit beside it, outside
    # the login throttling and the two-factor step that protect accounts:login.
    path(
        "admin/login/",
        login_not_required(RedirectView.as_view(pattern_name="accounts:login", query_string=True)),
        name="admin_login_redirect",
    ),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico when a page names no icon (the database-unavailable
    # page, a file opened directly): the icon every page links, at its unhashed name, which
    # stays the same when the file changes.
    path(
        "favicon.ico",
        login_not_required(
            RedirectView.as_view(
                url=f"{settings.STATIC_URL}favicon.svg",
                permanent=True,
                http_method_names=["get", "head"],
            )
        ),
        name="favicon",
    ),
]

# A lost database answers 503, not 500: see views.server_error.
handler500 = views.server_error
