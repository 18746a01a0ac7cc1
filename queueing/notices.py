"""Emails to students who asked for them: "you're next" and "your session is starting".

A notice is a row (StudentNotice) written with the change that calls for it: the start
of a session in the start's transaction, "you're next" when a board shows the student
at the head of their queue. Sending never happens on the desk's request: once the change
commits, the row is handed to one background thread of the process, which sends what is
due; the scheduler's `manage.py send_student_emails` runs every minute and picks up what
a failure, a restart or a busy mail server left behind. Each attempt is claimed with a
conditional update, so two senders never send one notice twice; after MAX_ATTEMPTS
failures the notice is given up, and every outcome stays on the row (shown with the
visit in admin).
"""

from __future__ import annotations

import logging
import smtplib
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import close_old_connections, connections, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .models import StudentNotice, Visit

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
#: The wait before another attempt grows with each failure: 1, 2, 4, 8 minutes.
RETRY_AFTER = timedelta(minutes=1)
#: A notice not sent by then is of no use to the student: it is given up.
TOO_LATE = timedelta(hours=2)

_sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="resq-notices")
# The (visit, kind) pairs this process has already written, so that a student at the
# head of a queue for many board versions is not written again for each.
_written: set[tuple[int, str]] = set()
WRITTEN_KEPT = 10_000


def queue(visit_ids: list[int], kind: str) -> None:
    """Write a notice for each visit (at most one of each kind ever), and send them
    once the current transaction commits."""
    new = [pk for pk in visit_ids if (pk, kind) not in _written]
    if not new:
        return
    if len(_written) > WRITTEN_KEPT:
        _written.clear()  # only a saving: the database's constraint decides
    StudentNotice.objects.bulk_create(
        [StudentNotice(visit_id=pk, kind=kind) for pk in new], ignore_conflicts=True
    )
    _written.update((pk, kind) for pk in new)
    transaction.on_commit(send_soon)


def send_soon() -> None:
    """Send what is due in the background thread, never on the caller's request."""
    _sender.submit(_send_in_thread)


def _send_in_thread() -> None:
    close_old_connections()
    try:
        send_due()
    except Exception:
        logger.exception("Sending students' emails failed; the scheduler will retry")
    finally:
        # The thread's own database connection: closed, not left for the next run.
        connections.close_all()


def send_due(*, now=None) -> int:
    """Send every notice that is due; returns how many were sent."""
    now = now or timezone.now()
    StudentNotice.objects.filter(
        status=StudentNotice.Status.PENDING, created_at__lt=now - TOO_LATE
    ).update(status=StudentNotice.Status.FAILED, last_error="Not sent in time; given up.")
    sent = 0
    due = StudentNotice.objects.filter(status=StudentNotice.Status.PENDING).filter(
        Q(last_attempt_at__isnull=True) | Q(last_attempt_at__lte=now - RETRY_AFTER)
    )
    for notice in due.select_related("visit__team").order_by("created_at", "pk")[:100]:
        if notice.attempts and notice.last_attempt_at > now - RETRY_AFTER * 2 ** (
            notice.attempts - 1
        ):
            continue
        # Claimed, as of the claim (not the start of this run: sending what came before
        # may have taken a while): another sender that read the same row finds it taken.
        claimed = StudentNotice.objects.filter(
            pk=notice.pk, status=StudentNotice.Status.PENDING, attempts=notice.attempts
        ).update(attempts=F("attempts") + 1, last_attempt_at=max(now, timezone.now()))
        if not claimed:
            continue
        sent += _send(notice, now=now)
    return sent


def _send(notice: StudentNotice, *, now) -> int:
    visit = notice.visit
    if not visit.notify_email or not _still_wanted(notice):
        StudentNotice.objects.filter(pk=notice.pk).update(
            status=StudentNotice.Status.FAILED, last_error="No longer needed; not sent."
        )
        return 0
    try:
        message(notice).send()
    except Exception as exc:
        failed = notice.attempts + 1 >= MAX_ATTEMPTS
        logger.warning("Email to a student not sent (%s)", type(exc).__name__)
        StudentNotice.objects.filter(pk=notice.pk).update(
            status=StudentNotice.Status.FAILED if failed else StudentNotice.Status.PENDING,
            last_error=failure(exc),
        )
        return 0
    StudentNotice.objects.filter(pk=notice.pk).update(
        status=StudentNotice.Status.SENT, sent_at=timezone.now(), last_error=""
    )
    return 1


def failure(exc: Exception) -> str:
    """Why a send failed, for the record: the kind of failure and the mail server's
    reply codes, never its words (a refusal quotes the address it refused)."""
    codes = []
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [str(code) for code, _ in exc.recipients.values()]
    elif isinstance(exc, smtplib.SMTPResponseException):
        codes = [str(exc.smtp_code)]
    return f"{type(exc).__name__} ({', '.join(codes)})" if codes else type(exc).__name__


def _still_wanted(notice: StudentNotice) -> bool:
    """ "You're next" is for a student still waiting; a session that has ended needs
    no "starting" email."""
    status = notice.visit.status
    if notice.kind == StudentNotice.Kind.NEXT:
        return status == Visit.Status.WAITING
    return status == Visit.Status.IN_SESSION


def message(notice: StudentNotice) -> EmailMessage:
    visit = notice.visit
    context = {
        "visit": visit,
        "kind": notice.kind,
        "page_url": student_page_url(visit),
    }
    subject = {
        StudentNotice.Kind.NEXT: f"You're next: {visit.ticket} at {visit.team.name}",
        StudentNotice.Kind.STARTED: f"Please come to the desk: {visit.ticket}",
    }[notice.kind]
    body = render_to_string("students/email/notice.txt", context)
    return EmailMessage(subject=subject, body=body, to=[visit.notify_email])


def student_page_url(visit: Visit) -> str:
    if not visit.student_key:
        return ""
    path = reverse("students:place", args=[visit.student_key])
    return f"{settings.RESQ_SITE_URL.rstrip('/')}{path}" if settings.RESQ_SITE_URL else ""


def forget_in_process() -> None:
    _written.clear()
