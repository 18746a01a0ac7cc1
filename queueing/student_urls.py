"""The students' side: open without a staff login, each page by the secret in its address."""

from django.urls import path

from . import student_views as views

app_name = "students"

urlpatterns = [
    path("display/<str:token>/", views.display, name="display"),
    path("display/<str:token>/poll/", views.display_poll, name="display_poll"),
    path("display/<str:token>/poster/", views.poster, name="poster"),
    path("checkin/<str:token>/", views.checkin, name="checkin"),
    path("me/<str:key>/", views.place, name="place"),
    path("me/<str:key>/poll/", views.place_poll, name="place_poll"),
    path("me/<str:key>/leave/", views.leave, name="leave"),
]
