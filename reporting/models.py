"""The academic calendar that reports compare by: any date maps to "Semester 2, week 5".

Reporting reads the queueing app's visits and staffing history; it owns only the
calendar.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


class Term(models.Model):
    name = models.CharField(max_length=60, unique=True, help_text='e.g. "Semester 2 2026"')
    first_day = models.DateField(help_text="The Monday of teaching week 1.")
    last_day = models.DateField(help_text="The last day of the term, inclusive.")

    class Meta:
        ordering = ["-first_day"]
        permissions = [("view_reports", "Can view usage reports (Data Analytics)")]
        constraints = [
            models.CheckConstraint(
                name="term_days_in_order",
                condition=Q(last_day__gte=models.F("first_day")),
                violation_error_message="The last day must be on or after the first day.",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.first_day and self.last_day and self.last_day < self.first_day:
            raise ValidationError({"last_day": "The last day must be on or after the first day."})
        if self.first_day and self.last_day:
            overlapping = Term.objects.filter(
                first_day__lte=self.last_day, last_day__gte=self.first_day
            ).exclude(pk=self.pk)
            if overlapping.exists():
                raise ValidationError(f"This term overlaps {overlapping.first()}.")

    @classmethod
    def for_date(cls, day: date) -> Term | None:
        return cls.objects.filter(first_day__lte=day, last_day__gte=day).first()

    def contains(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day

    def break_weeks(self) -> set[date]:
        """Mondays of the calendar weeks that are not teaching weeks."""
        mondays: set[date] = set()
        for brk in self.breaks.all():
            monday = brk.first_day - timedelta(days=brk.first_day.weekday())
            while monday <= brk.last_day:
                mondays.add(monday)
                monday += timedelta(days=7)
        return mondays

    def teaching_weeks(self) -> list[tuple[int, date]]:
        """(week number, Monday) for each teaching week; breaks have no number."""
        breaks = self.break_weeks()
        weeks: list[tuple[int, date]] = []
        monday = self.first_day - timedelta(days=self.first_day.weekday())
        number = 0
        while monday <= self.last_day:
            if monday not in breaks:
                number += 1
                weeks.append((number, monday))
            monday += timedelta(days=7)
        return weeks

    def week_of(self, day: date) -> int | None:
        """The teaching week a day falls in, or None (outside the term, or a break)."""
        if not self.contains(day):
            return None
        monday = day - timedelta(days=day.weekday())
        return next((n for n, start in self.teaching_weeks() if start == monday), None)

    def week_start(self, number: int) -> date | None:
        return next((start for n, start in self.teaching_weeks() if n == number), None)


class TermBreak(models.Model):
    """A non-teaching stretch inside a term, such as the mid-semester study break."""

    term = models.ForeignKey(Term, on_delete=models.CASCADE, related_name="breaks")
    name = models.CharField(max_length=60, default="Study break")
    first_day = models.DateField()
    last_day = models.DateField()

    class Meta:
        ordering = ["first_day"]

    def __str__(self) -> str:
        return f"{self.name} ({self.first_day:%d %b}–{self.last_day:%d %b})"

    def clean(self) -> None:
        if self.first_day and self.last_day and self.last_day < self.first_day:
            raise ValidationError({"last_day": "The last day must be on or after the first day."})
