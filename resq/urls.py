from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView

from . import views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="queueing:desk"), name="home"),
    path("accounts/", include("accounts.urls")),
    path("desk/", include("queueing.urls")),
    path("reports/", include("reporting.urls")),
    # One login page for everyone: the admin's own form would sit beside it, outside
    # whatever protects accounts:login.
    path(
        "admin/login/",
        login_not_required(RedirectView.as_view(pattern_name="accounts:login", query_string=True)),
        name="admin_login_redirect",
    ),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
]
