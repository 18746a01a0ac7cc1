from django.urls import path

from . import views

app_name = "queueing"

urlpatterns = [
    path("", views.desk, name="desk"),
    path("poll/", views.poll, name="poll"),
    path("visits/add/", views.add_visit, name="add"),
    path("visits/<int:pk>/start/", views.start_session, name="start"),
    path("visits/<int:pk>/finish/", views.finish_session, name="finish"),
    path("visits/<int:pk>/undo-start/", views.undo_start, name="undo_start"),
    path("visits/<int:pk>/undo-end/", views.undo_end, name="undo_end"),
    path("visits/<int:pk>/remove/", views.remove_visit, name="remove"),
    path("visits/<int:pk>/edit/", views.edit_visit, name="edit"),
    path("teams/<slug:slug>/staffing/", views.change_staffing, name="staffing"),
    path("close/", views.close_queue, name="close"),
    path("students/lookup/", views.student_lookup, name="student_lookup"),
    path("visits/<int:pk>/pass/", views.student_pass, name="pass"),
    path("checkins/<int:pk>/accept/", views.accept_checkin, name="accept_checkin"),
    path("checkins/<int:pk>/dismiss/", views.dismiss_checkin, name="dismiss_checkin"),
]
