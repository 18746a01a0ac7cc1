"""The academic calendar that reports compare by: any date maps to "Semester 2, week 5".

Reporting reads the queueing app's visits and staffing history; it owns only the
calendar and the record of which daily usage emails went out.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
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


class DailyReport(models.Model):
    """One row per local day whose usage email went out (or is going out right now).

    The unique day is the claim: a run inserts the row before it sends, so a second
    scheduler running at the same moment finds the day taken and sends nothing. The
    claim is committed on its own, not held open in a transaction across the SMTP
    conversation: on SQLite that transaction would hold the database's single write
    lock for as long as the mail server takes, and every desk write would wait on it.
    """

    class Status(models.TextChoices):
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"

    #: A claim older than this belongs to a run that died mid-send (the SMTP timeout is
    #: far shorter); the next run may take the day over.
    CLAIM_EXPIRES = timedelta(minutes=15)

    day = models.DateField(unique=True, help_text="The local day the report covers.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SENDING)
    claimed_at = models.DateTimeField(help_text="When a run last took the day to send it.")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When it last went out.")
    recipients = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    figures = models.JSONField(
        default=dict, blank=True, encoder=DjangoJSONEncoder, help_text="The figures as sent."
    )
    times_sent = models.PositiveIntegerField(default=0)
    forced = models.BooleanField(default=False, help_text="The last send was asked for again.")

    class Meta:
        ordering = ["-day"]
        # Written only by the send_daily_report command; admin shows it read-only.
        default_permissions = ("view",)
        constraints = [
            models.CheckConstraint(
                name="dailyreport_sent_when_and_how_often",
                condition=Q(status="sending") | Q(sent_at__isnull=False, times_sent__gte=1),
                violation_error_message="A sent report needs its time and a send count.",
            )
        ]

    def __str__(self) -> str:
        return f"Daily report {self.day:%a %d %b %Y}"

    @classmethod
    def claim(
        cls, day: date, *, now: datetime, force: bool = False
    ) -> tuple[DailyReport | None, str]:
        """Take the day for this run: (the row to send under, "") when this run may send;
        otherwise the reason it may not, "sent" (with the row that says when) unless
        forced, or "sending" (None) while another run holds a fresh claim."""
        try:
            with transaction.atomic():
                return cls.objects.create(day=day, claimed_at=now), ""
        except IntegrityError:
            pass
        current = cls.objects.get(day=day)
        if current.status == cls.Status.SENDING and current.claimed_at > now - cls.CLAIM_EXPIRES:
            return None, "sending"
        if current.status == cls.Status.SENT and not force:
            return current, "sent"
        # Re-taking a sent day (forced) or an abandoned claim: a conditional write, so of
        # two runs re-taking it at once exactly one wins.
        taken = cls.objects.filter(
            pk=current.pk, status=current.status, claimed_at=current.claimed_at
        ).update(status=cls.Status.SENDING, claimed_at=now)
        if not taken:
            return None, "sending"
        current.status, current.claimed_at = cls.Status.SENDING, now
        return current, ""

    def release(self) -> None:
        """Give the day back after a failed send: a day never sent has no row again; a
        day sent before (a forced resend that failed) is still the day that was sent."""
        mine = DailyReport.objects.filter(
            pk=self.pk, status=self.Status.SENDING, claimed_at=self.claimed_at
        )
        if self.times_sent:
            mine.update(status=self.Status.SENT)
        else:
            mine.delete()

    def mark_sent(
        self,
        *,
        at: datetime,
        recipients: list[str],
        subject: str,
        figures: dict,
        forced: bool,
    ) -> None:
        DailyReport.objects.filter(pk=self.pk).update(
            status=self.Status.SENT,
            sent_at=at,
            recipients=recipients,
            subject=subject,
            figures=figures,
            forced=forced,
            times_sent=models.F("times_sent") + 1,
        )
        self.refresh_from_db()
