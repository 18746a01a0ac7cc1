"""Email one day's usage summary to the service's leads, once.

Run after the drop-in closes (see docs/daily-report.md for the schedule). A day already
sent is not sent again unless --force; a day with no visits still gets a short email
saying so, so that silence always means the job did not run.
"""

from __future__ import annotations

import smtplib
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.utils import timezone

from reporting.daily import daily_report_render, daily_report_send, day_summary_build
from reporting.forms import EARLIEST, LATEST, day_label


def _parse_day(raw: str | None) -> date:
    today = timezone.localdate()
    if raw is None:
        return today
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        raise CommandError(
            f"--date “{raw[:40]}” is not a real day: give it as YYYY-MM-DD, e.g. {today}."
        ) from None
    if not EARLIEST <= day <= LATEST:
        raise CommandError(f"--date must be between {EARLIEST} and {LATEST}.")
    if day > today:
        raise CommandError(
            f"--date {day} ({day_label(day)}) has not happened yet in {settings.TIME_ZONE}."
        )
    return day


def _recipients() -> list[str]:
    addresses = [a.strip() for a in settings.RESQ_DAILY_REPORT_RECIPIENTS if a.strip()]
    if not addresses:
        raise CommandError(
            "No recipients: set RESQ_DAILY_REPORT_RECIPIENTS to a comma-separated list "
            "of email addresses. Nothing was sent."
        )
    bad = []
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            bad.append(address)
    if bad:
        raise CommandError(
            f"RESQ_DAILY_REPORT_RECIPIENTS has addresses that are not valid: "
            f"{', '.join(bad)}. Nothing was sent."
        )
    return addresses


class Command(BaseCommand):
    help = (
        "Email a day's usage summary (default: today, in the service's time zone) to "
        "RESQ_DAILY_REPORT_RECIPIENTS, once per day unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--date",
            metavar="YYYY-MM-DD",
            help="The local day to report on (default: today).",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Send even if this day's report was sent already.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print the subject and plain text instead of sending; record nothing.",
        )

    def handle(self, *args, **options) -> None:
        day = _parse_day(options["date"])
        if options["dry_run"]:
            subject, text, _ = daily_report_render(day_summary_build(day=day))
            self.stdout.write(f"Subject: {subject}\n\n{text}", ending="")
            return

        recipients = _recipients()
        if not settings.RESQ_SITE_URL:
            self.stderr.write("RESQ_SITE_URL is not set: the email has no dashboard link.")
        try:
            result = daily_report_send(day=day, recipients=recipients, force=options["force"])
        except (smtplib.SMTPException, OSError) as error:
            raise CommandError(
                f"Sending the report for {day_label(day)} failed ({error}). The day is not "
                "marked as sent, so the next run will try again."
            ) from error
        self.stdout.write(result.message)
