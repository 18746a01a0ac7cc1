from django.urls import path

from . import views, weekly

app_name = "reporting"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("charts/<slug:name>.csv", views.chart_csv, name="chart_csv"),
    path("week/", weekly.week_summary, name="weekly"),
]
