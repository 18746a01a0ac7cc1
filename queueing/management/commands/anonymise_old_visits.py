"""Remove students' names and numbers from visits older than the retention period.

Run every night by the scheduler (deploy/scheduler/crontab), before the backup. What
stays is what the reports need: team, enquiry type, unit code, times, outcome and who on
the staff did what. The name becomes "Anonymised"; the number becomes a pseudonym, a
keyed one-way hash of it, so that "unique students" is still right for old periods (the
same number always gives the same pseudonym) while the number itself is gone.
docs/security.md ("Privacy") explains the choice.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Case, CharField, F, Q, TextField, Value, When
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import ngettext

from queueing.models import Board, CheckIn, Visit, VisitEvent

ANONYMISED_NAME = "Anonymised"
#: Every pseudonym starts with this; no student number can (the desk accepts digits).
PSEUDONYM_PREFIX = "anon-"
#: Rows read and rewritten per transaction: memory stays flat however many visits are
#: due, and on SQLite the desk waits at most one batch for the write lock.
BATCH_SIZE = 500

_ACTIVE = (Visit.Status.WAITING, Visit.Status.IN_SESSION)


def student_number_pseudonym(number: str) -> str:
    """The same number always gives the same pseudonym, which does not give the number.

    Keyed with SECRET_KEY: without the key, nobody can test a known number against a
    pseudonym (with it, someone could: an 8-digit number has only 10⁸ values). A new
    SECRET_KEY gives new pseudonyms to visits anonymised from then on.
    """
    digest = salted_hmac("resq.anonymise_old_visits", number, algorithm="sha256").hexdigest()
    field = Visit._meta.get_field("student_number")
    return PSEUDONYM_PREFIX + digest[: field.max_length - len(PSEUDONYM_PREFIX)]


def retention_cutoff(*, days: int, now: datetime | None = None) -> datetime:
    """Local midnight `days` days ago: whole local days go at once, so no day's report
    ever mixes anonymised and named visits."""
    today = timezone.localdate(now or timezone.now())
    return datetime.combine(
        today - timedelta(days=days), time.min, tzinfo=timezone.get_current_timezone()
    )


def visits_due(*, cutoff: datetime):
    return Visit.objects.filter(arrived_at__lt=cutoff).exclude(
        student_number__startswith=PSEUDONYM_PREFIX
    )


def _scrub(value: Any, replace) -> Any:
    """A detail holds [before, after] for a change, or one value."""
    if isinstance(value, list):
        return [_scrub(item, replace) for item in value]
    return value if value in (None, "") else replace(value)


def _scrub_events(visit_ids: list[int]) -> None:
    """Corrections keep the name and number before and after in their detail."""
    events = list(
        VisitEvent.objects.filter(visit_id__in=visit_ids).filter(
            Q(detail__has_key="student_name") | Q(detail__has_key="student_number")
        )
    )
    for event in events:
        detail = dict(event.detail)
        if "student_name" in detail:
            detail["student_name"] = _scrub(detail["student_name"], lambda _: ANONYMISED_NAME)
        if "student_number" in detail:
            detail["student_number"] = _scrub(
                detail["student_number"], lambda n: student_number_pseudonym(str(n))
            )
        event.detail = detail
    VisitEvent.objects.bulk_update(events, ["detail"])


def _scrub_admin_log(visit_ids: list[int]) -> None:
    """The admin's log names each visit it changed as the visit read then: its name."""
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Visit),
        object_id__in=[str(pk) for pk in visit_ids],
    ).update(
        object_repr=Concat(
            Value(f"{ANONYMISED_NAME} (visit "),
            F("object_id"),
            Value(")"),
            output_field=TextField(),
        )
    )


def visits_anonymise(*, cutoff: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Anonymises every visit that arrived before `cutoff`; returns how many changed.

    A second run finds nothing to do: anonymised visits carry a pseudonym and are not
    read again.
    """
    changed = 0
    touched_board = False
    last_pk = 0
    while True:
        with transaction.atomic():
            batch = list(
                visits_due(cutoff=cutoff)
                .filter(pk__gt=last_pk)
                .order_by("pk")
                .values_list("pk", "student_number", "status")[:batch_size]
            )
            if not batch:
                break
            ids = [pk for pk, _, _ in batch]
            pseudonyms = {number: student_number_pseudonym(number) for _, number, _ in batch}
            # One UPDATE per batch; the conditions repeat the batch's own, so a visit
            # changed in between (a correction, an earlier run) is left alone.
            changed += (
                visits_due(cutoff=cutoff)
                .filter(pk__in=ids)
                .update(
                    student_name=ANONYMISED_NAME,
                    student_number=Case(
                        *(When(student_number=n, then=Value(p)) for n, p in pseudonyms.items()),
                        default=F("student_number"),
                        output_field=CharField(),
                    ),
                )
            )
            _scrub_events(ids)
            _scrub_admin_log(ids)
            touched_board = touched_board or any(status in _ACTIVE for _, _, status in batch)
            last_pk = ids[-1]
    if touched_board:
        # A visit left open for years is still on every desk screen: redraw them.
        Board.bump()
    return changed


def forget_contact_details(*, now: datetime | None = None) -> tuple[int, int]:
    """What the students' side keeps only for the day (docs/security.md, "Privacy"):
    check-ins from before today are deleted (an accepted one lives on as its visit), and
    visits from before today that are over lose the email address their student gave
    for notices and the key to their own page. Returns (check-ins, visits)."""
    midnight = retention_cutoff(days=0, now=now)
    checkins, _ = CheckIn.objects.filter(created_at__lt=midnight).delete()
    visits = (
        Visit.objects.filter(arrived_at__lt=midnight)
        .exclude(status__in=_ACTIVE)
        .filter(~Q(student_key="") | ~Q(notify_email=""))
        .update(student_key="", notify_email="")
    )
    return checkins, visits


class Command(BaseCommand):
    help = (
        "Remove student names and numbers from visits older than RESQ_RETENTION_DAYS "
        "(default 730), and what the students' side keeps for the day only (check-ins, "
        "emails for notices, own-page keys) once the day is over. Reports stay the same."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Keep this many days instead of RESQ_RETENTION_DAYS.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count the visits that would be anonymised, and change nothing.",
        )

    def handle(self, *args: Any, days: int | None, dry_run: bool, **options: Any) -> None:
        days = settings.RESQ_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError(f"--days must be at least 1, not {days}: nothing was changed.")
        cutoff = retention_cutoff(days=days)
        before: date = cutoff.date()
        if dry_run:
            count = visits_due(cutoff=cutoff).count()
            self.stdout.write(
                f"Would anonymise {_visits(count)} from before {before} "
                f"(kept {days} days). Nothing was changed."
            )
            return
        count = visits_anonymise(cutoff=cutoff)
        self.stdout.write(f"Anonymised {_visits(count)} from before {before} (kept {days} days).")
        checkins, cleared = forget_contact_details()
        if checkins or cleared:
            self.stdout.write(
                f"Deleted {checkins} check-in(s) and cleared the email and page key of "
                f"{_visits(cleared)} from before today."
            )


def _visits(count: int) -> str:
    return ngettext("%(count)d visit", "%(count)d visits", count) % {"count": count}
