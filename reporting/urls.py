from django.urls import path

from . import export, staffing, views, weekly

app_name = "reporting"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("charts/<slug:name>.csv", views.chart_csv, name="chart_csv"),
    path("week/", weekly.week_summary, name="weekly"),
    path("staffing/", staffing.staffing_page, name="staffing"),
    path("staffing.csv", staffing.staffing_csv, name="staffing_csv"),
    path("export/", export.export_page, name="export"),
    path("export/visits.csv", export.export_csv, name="export_csv"),
    path("dictionary/", export.data_dictionary, name="data_dictionary"),
]
