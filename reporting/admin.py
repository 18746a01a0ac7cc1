from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from .models import DailyReport, Term, TermBreak


class TermBreakInline(admin.TabularInline):
    model = TermBreak
    extra = 0


@admin.register(Term)
class TermAdmin(admin.ModelAdmin):
    list_display = ["name", "first_day", "last_day"]
    date_hierarchy = "first_day"
    inlines = [TermBreakInline]


@admin.register(DailyReport)
class DailyReportAdmin(admin.ModelAdmin):
    """Read-only: the send_daily_report command writes these, one per day sent."""

    list_display = ["day", "status", "visits", "sent", "times_sent", "forced", "to"]
    list_filter = ["status", "forced"]
    date_hierarchy = "day"
    fields = [
        "day",
        "status",
        "subject",
        "to",
        "sent",
        "claimed_at",
        "times_sent",
        "forced",
        "figures_as_sent",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Visits")
    def visits(self, report: DailyReport) -> Any:
        return report.figures.get("visits", "—")

    @admin.display(description="Sent at", ordering="sent_at")
    def sent(self, report: DailyReport) -> str:
        if report.sent_at is None:
            return "—"
        moment = timezone.localtime(report.sent_at)
        return f"{moment:%a} {moment.day} {moment:%b %Y}, {moment:%H:%M}"

    @admin.display(description="Recipients")
    def to(self, report: DailyReport) -> str:
        return ", ".join(report.recipients) or "—"

    @admin.display(description="Figures as sent")
    def figures_as_sent(self, report: DailyReport) -> str:
        # No inline style: the admin pages are under the same strict CSP.
        return format_html(
            "<pre>{}</pre>", json.dumps(report.figures, indent=2, ensure_ascii=False)
        )
