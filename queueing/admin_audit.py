"""The admin's own log (who changed what in admin, and when), for managers to read.

Every change made in admin (a corrected visit, a renamed team, a new account, an
import) is written by Django to its LogEntry table; nothing in ResQ showed it. What
happens to a visit on the desk is its VisitEvent history, shown on the visit's page.

Registered from queueing/admin.py, the module Django's autodiscovery imports.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

#: Who may read the log: whoever may correct visit records (the Manager role) may see
#: who corrected what. Django's own `admin.view_logentry`, granted to anyone, works too.
AUDIT_PERMISSIONS = ("admin.view_logentry", "queueing.change_visit")


@admin.register(LogEntry)
class LogEntryAdmin(admin.ModelAdmin):
    """Read-only: an audit log that could be edited would prove nothing."""

    list_display = ["action_time", "user", "action", "content_type", "object", "change"]
    list_filter = ["action_flag", "content_type", ("action_time", admin.DateFieldListFilter)]
    list_select_related = ["user", "content_type"]
    search_fields = ["object_repr", "user__username", "user__first_name"]
    date_hierarchy = "action_time"
    ordering = ["-action_time", "-pk"]
    fields = [
        "action_time",
        "user",
        "action",
        "content_type",
        "object_id",
        "object",
        "change",
    ]
    readonly_fields = fields

    def has_module_permission(self, request: HttpRequest) -> bool:
        return any(request.user.has_perm(perm) for perm in AUDIT_PERMISSIONS)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[LogEntry]:
        return super().get_queryset(request).select_related("user", "content_type")

    @admin.display(description="Action", ordering="action_flag")
    def action(self, entry: LogEntry) -> str:
        if entry.is_addition():
            return "Added"
        if entry.is_deletion():
            return "Deleted"
        return "Changed"

    @admin.display(description="Record", ordering="object_repr")
    def object(self, entry: LogEntry) -> str:
        # A deleted record has no page to link to; its name as it was stays.
        url = None if entry.is_deletion() else entry.get_admin_url()
        if url:
            return format_html('<a href="{}">{}</a>', url, entry.object_repr)
        return entry.object_repr

    @admin.display(description="What changed")
    def change(self, entry: LogEntry) -> str:
        return entry.get_change_message() or "—"
