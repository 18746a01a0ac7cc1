"""The students' side: open without a staff login, each page by the secret in its address."""

from django.urls import path, register_converter

from . import student_views as views


class SecretConverter:
    """A token or key as ResQ makes them (URL-safe base64): anything else is not found
    before a view or the database sees it."""

    regex = r"[A-Za-z0-9_-]{20,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(SecretConverter, "secret")

app_name = "students"

urlpatterns = [
    path("display/<secret:token>/", views.display, name="display"),
    path("display/<secret:token>/poll/", views.display_poll, name="display_poll"),
    path("display/<secret:token>/poster/", views.poster, name="poster"),
    path("checkin/<secret:token>/", views.checkin, name="checkin"),
    path("me/<secret:key>/", views.place, name="place"),
    path("me/<secret:key>/poll/", views.place_poll, name="place_poll"),
    path("me/<secret:key>/leave/", views.leave, name="leave"),
]
