"""The daily usage email, end to end through the send_daily_report command.

The day used most is Tue 8 Oct 2024 in Perth (UTC+8, no daylight saving); its "usual"
is the Tuesdays 1 Oct, 24 Sep and 10 Sep (17 Sep had no visits, so it is left out).
Every figure below was worked out by hand from the visits made in `known_day`.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
import subprocess
import sys
import threading
import warnings
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import DEPRECATED_EMAIL_SETTINGS, settings
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django.utils.deprecation import RemovedInDjango2028Warning

from queueing.models import EnquiryType, Team, Visit
from queueing.tests.factories import VisitFactory
from reporting.daily import daily_report_send, day_summary_build
from reporting.metrics import Filter
from reporting.models import DailyReport
from resq.tests.processes import django_process
from resq.tests.smtp import free_port, smtp_mailer

pytestmark = pytest.mark.django_db

PERTH = ZoneInfo("Australia/Perth")
DAY = date(2024, 10, 8)  # a Tuesday
LEADS = ["lead@example.edu", "coordinator@example.edu"]
SITE = "https://resq.example.edu"
SUBJECT = "ResQ daily report: Tue 8 Oct 2024 · 10 visits"
DAY_LINK = f"{SITE}/reports/?view=range&start=2024-10-08&end=2024-10-08"
WEEK_LINK = f"{SITE}/reports/week/?day=2024-10-08"

#: The figures of `known_day`, each as one table row, whitespace collapsed.
EXPECTED_ROWS = [
    "Visits 10 8 ▲ 2 more (+25 %)",
    "Served 7 8 ▼ 1 fewer (−12 %)",
    "Removed (not served) 3 0 ▲ 3 more (none before)",
    "Unique students 9",
    "Median wait 10 min 9 min ▲ 1 min longer",
    "90th percentile wait 24 min",
    "Longest wait 30 min",
    "STUDYSmarter 8 5.7 ▲ 2.3 more (+41 %)",
    "Librarian 2 2.3 ▼ 0.3 fewer (−14 %)",
    "Finished 7",
    "Left before being seen 1",
    "No-show 1",
    "Out of time 1",
    "CITS3200 3",
    "MATH1001 2",
    "ECON1101 1",
    "HIST1001 1",
    "Essay 5",
    "Grammar 2",
    "Referencing 2",
    "Finding Sources 1",
]
EXPECTED_SENTENCES = [
    "10 visits, 7 of them served: ▲ 2 more (+25 %) than a usual Tuesday (8).",
    "Usual: the average of the previous 4 Tuesdays that had visits "
    "(1 Oct, 24 Sep, 10 Sep); 17 Sep had none.",
]


@pytest.fixture(autouse=True)
def _service(settings):
    # The expectations are worked out in Perth time, whatever the environment says.
    settings.TIME_ZONE = "Australia/Perth"
    settings.RESQ_DAILY_REPORT_RECIPIENTS = LEADS
    settings.RESQ_SITE_URL = SITE
    settings.DEFAULT_FROM_EMAIL = "ResQ <resq@example.edu>"


def perth(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PERTH)


def visit(
    arrived: datetime,
    *,
    wait: float | None = None,
    removed: str | None = None,
    team: str = "studysmarter",
    enquiry: str = "Essay",
    **fields: Any,
) -> Visit:
    """A finished visit (wait in minutes, then a 20-minute session) or a removed one."""
    common = {
        "arrived_at": arrived,
        "team": Team.objects.get(slug=team),
        "enquiry_type": EnquiryType.objects.get(name=enquiry),
        **fields,
    }
    if removed:
        return VisitFactory(
            **common,
            status=Visit.Status.REMOVED,
            outcome=removed,
            ended_at=arrived + timedelta(minutes=15),
        )
    started = arrived + timedelta(minutes=wait or 0)
    return VisitFactory(
        **common,
        status=Visit.Status.FINISHED,
        outcome=Visit.Outcome.FINISHED,
        started_at=started,
        ended_at=started + timedelta(minutes=20),
    )


def usual_tuesdays() -> None:
    """Three earlier Tuesdays with visits, one without: 6, 8 and 10 visits, all seen,
    waiting 6, 9 and 12 minutes. Their averages: 8 visits (STUDYSmarter 17/3, Librarian
    7/3), 8 served, none removed, a median wait of 9 minutes."""
    for day, studysmarter, librarian, wait in [
        (date(2024, 10, 1), 4, 2, 6),
        (date(2024, 9, 24), 6, 2, 9),
        (date(2024, 9, 10), 7, 3, 12),
    ]:
        for n in range(studysmarter):
            visit(perth(day, 10, n), wait=wait)
        for n in range(librarian):
            visit(perth(day, 11, n), wait=wait, team="librarian")


@pytest.fixture
def known_day() -> None:
    """Tue 8 Oct 2024: 10 visits (STUDYSmarter 8, Librarian 2), 7 served, 3 removed.

    Waits of the 7 seen, sorted: 0, 2, 5, 10, 15, 20, 30 minutes, so the median is the
    4th (10), the 90th percentile sits 0.4 of the way from 20 to 30 (24) and the longest
    is 30. Arrivals by local hour: 07:00 one, 10:00 four, 11:00 five (the peak). The first
    visit arrived at 23:30 UTC on Monday, which is 07:30 on Tuesday in Perth; a visit at
    23:30 UTC on Tuesday is Wednesday's and is not counted.
    """
    usual_tuesdays()
    regular = "21000001"  # came twice: 9 unique students
    visit(
        datetime(2024, 10, 7, 23, 30, tzinfo=UTC),
        wait=2,
        unit_code="MATH1001",
        student_number=regular,
    )
    visit(perth(DAY, 10, 0), wait=5, unit_code="CITS3200", student_number=regular)
    visit(perth(DAY, 10, 10), wait=10, unit_code="CITS3200", enquiry="Grammar")
    visit(perth(DAY, 10, 20), wait=15, unit_code="MATH1001")
    visit(perth(DAY, 10, 40), removed=Visit.Outcome.NO_SHOW, unit_code="")
    visit(perth(DAY, 11, 5), wait=30, unit_code="", enquiry="Referencing")
    visit(
        perth(DAY, 11, 10),
        removed=Visit.Outcome.CANCELLED,
        unit_code="ECON1101",
        enquiry="Grammar",
    )
    visit(
        perth(DAY, 11, 20),
        wait=0,
        team="librarian",
        unit_code="HIST1001",
        enquiry="Finding Sources",
    )
    visit(
        perth(DAY, 11, 30),
        wait=20,
        team="librarian",
        unit_code="CITS3200",
        enquiry="Referencing",
    )
    visit(perth(DAY, 11, 50), removed=Visit.Outcome.OUT_OF_TIME, unit_code="")
    # Either side of the Perth day: Monday 23:59 and Wednesday 07:30, local.
    visit(datetime(2024, 10, 7, 15, 59, tzinfo=UTC), wait=45, unit_code="LAW1001")
    visit(datetime(2024, 10, 8, 23, 30, tzinfo=UTC), wait=50, unit_code="LAW1001")


def run(*args: str) -> str:
    out = StringIO()
    call_command("send_daily_report", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def rows(text: str) -> list[str]:
    """Each line with its runs of spaces collapsed, so columns compare as words."""
    return [" ".join(line.split()) for line in text.splitlines()]


def html_rows(document: str) -> list[str]:
    """The text of each table row and paragraph of an HTML email, whitespace collapsed."""
    inline = re.sub(r"</?(?:strong|a)\b[^>]*>", "", document)
    blocks = re.split(r"</tr>|</p>|</h1>|</h2>", inline)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", block)).split()) for block in blocks]


def assert_has_the_known_figures(text: str, document: str) -> None:
    text_rows, document_rows = rows(text), html_rows(document)
    for expected in EXPECTED_ROWS:
        assert expected in text_rows, expected
        assert expected in document_rows, expected
    flat_text, flat_html = " ".join(text_rows), " ".join(document_rows)
    for sentence in EXPECTED_SENTENCES:
        assert sentence in flat_text, sentence
        assert sentence in flat_html, sentence
    # The busiest local hour: a line of its own in the text, a row of the table in HTML.
    assert "Busiest hour: 11:00–12:00 (5 arrivals)" in text_rows
    assert "Busiest hour 11:00–12:00 5 arrivals" in document_rows
    # Nothing from either side of the Perth day.
    assert "LAW1001" not in text and "LAW1001" not in document
    assert "50 min" not in text and "45 min" not in text


# --- (a) the figures, through the in-memory outbox -----------------------------------


def test_it_emails_the_days_figures_in_plain_text_and_html(known_day):
    output = run("--date", "2024-10-08")

    assert "Sent the report for Tue 8 Oct 2024 to 2 recipients" in output
    [message] = mail.outbox
    assert message.subject == SUBJECT
    assert message.to == LEADS
    assert message.from_email == "ResQ <resq@example.edu>"
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"
    [(document, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert_has_the_known_figures(message.body, document)


def test_it_links_to_the_day_on_the_dashboard(known_day, coordinator, client):
    run("--date", "2024-10-08")
    [message] = mail.outbox
    document = message.alternatives[0][0]

    assert DAY_LINK in message.body and WEEK_LINK in message.body
    assert f'href="{html.escape(DAY_LINK)}"' in document
    assert f'href="{html.escape(WEEK_LINK)}"' in document
    # The dashboard understands the link: that one day, nothing ignored.
    client.force_login(coordinator)
    response = client.get(DAY_LINK.removeprefix(SITE))
    assert response.status_code == 200
    report = response.context["report"]
    assert report.filter == Filter(DAY, DAY)
    assert report.messages == []


def test_it_leaves_the_link_out_when_the_site_address_is_not_set(known_day, settings):
    settings.RESQ_SITE_URL = ""
    err = StringIO()
    call_command("send_daily_report", "--date", "2024-10-08", stdout=StringIO(), stderr=err)

    [message] = mail.outbox
    assert "dashboard" not in message.body
    assert "/reports/" not in message.alternatives[0][0]
    assert "RESQ_SITE_URL is not set" in err.getvalue()


def test_it_records_the_figures_it_sent(known_day):
    run("--date", "2024-10-08")

    report = DailyReport.objects.get()
    assert report.day == DAY
    assert report.status == DailyReport.Status.SENT
    assert report.recipients == LEADS
    assert report.subject == SUBJECT
    assert report.times_sent == 1 and not report.forced
    assert report.sent_at is not None
    figures = report.figures
    assert (figures["visits"], figures["served"], figures["removed"]) == (10, 7, 3)
    assert figures["unique_students"] == 9
    assert figures["teams"] == [["STUDYSmarter", 8], ["Librarian", 2]]
    assert figures["wait_minutes"] == {"median": 10.0, "p90": 24.0, "max": 30.0}
    assert figures["peak_hour"] == {"hour": 11, "arrivals": 5}
    assert figures["units"][:2] == [["CITS3200", 3], ["MATH1001", 2]]
    assert figures["usual"]["days"] == ["2024-10-01", "2024-09-24", "2024-09-10"]
    assert figures["usual"]["visits"] == 8
    assert figures["usual"]["median_wait"] == 9


def test_it_costs_a_bounded_number_of_queries_whatever_the_day_holds(
    known_day, django_assert_max_num_queries
):
    # The day's metrics, the teams, the four weeks' daily counts, and one median wait
    # per averaged Tuesday: never a query per visit.
    for n in range(30):
        visit(perth(DAY, 10, n), wait=n % 7, unit_code=f"UNIT{n:04d}")
    with django_assert_max_num_queries(20):
        summary = day_summary_build(day=DAY)
    assert summary["counts"]["visits"] == 40


def test_it_says_when_there_is_no_usual_day_to_compare_with():
    visit(perth(DAY, 10), wait=4)
    run("--date", "2024-10-08")

    [message] = mail.outbox
    assert "Visits 1 — —" in rows(message.body)
    assert "No visits on the previous 4 Tuesdays to compare with." in message.body


def test_it_mentions_visits_still_open_when_it_ran():
    visit(perth(DAY, 10), wait=4)
    VisitFactory(arrived_at=perth(DAY, 11))
    run("--date", "2024-10-08")

    [message] = mail.outbox
    assert "1 visit still open (waiting or in session)" in message.body
    assert "Still open 1" in rows(message.body)


def test_it_reports_today_by_default():
    # The first second of today in Perth, whatever the clock of the machine says.
    today = timezone.localdate()
    visit(perth(today, 0), wait=1)
    run()

    [message] = mail.outbox
    assert message.subject.endswith("· 1 visit")
    assert DailyReport.objects.get().day == today


def test_it_prints_instead_of_sending_on_a_dry_run(known_day, settings):
    settings.RESQ_DAILY_REPORT_RECIPIENTS = []
    output = run("--date", "2024-10-08", "--dry-run")

    assert output.startswith(f"Subject: {SUBJECT}\n")
    assert "Visits 10 8 ▲ 2 more (+25 %)" in rows(output)
    assert mail.outbox == []
    assert not DailyReport.objects.exists()


def test_it_sends_without_deprecated_mail_settings_or_warnings(known_day):
    assert "default" in settings.MAILERS
    assert not any(settings.is_overridden(name) for name in DEPRECATED_EMAIL_SETTINGS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run("--date", "2024-10-08")
    assert [w for w in caught if issubclass(w.category, RemovedInDjango2028Warning)] == []
    assert mail.outbox[0].sent_using == "default"


# --- (b) through a real SMTP server --------------------------------------------------


def test_it_delivers_the_report_to_an_smtp_server(known_day, smtp_inbox):
    output = run("--date", "2024-10-08")

    assert "Sent the report for Tue 8 Oct 2024" in output
    assert mail.outbox == []  # it went over the wire, not to the test outbox
    [envelope] = smtp_inbox.envelopes
    assert envelope.mail_from == "resq@example.edu"
    assert envelope.rcpt_tos == LEADS
    message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert message["Subject"] == SUBJECT
    assert message["To"] == ", ".join(LEADS)
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",)).get_content()
    document = message.get_body(("html",)).get_content()
    assert_has_the_known_figures(text, document)
    assert DAY_LINK in text
    assert DailyReport.objects.get().status == DailyReport.Status.SENT


def test_it_leaves_the_day_unsent_when_the_mail_server_refuses(known_day, settings):
    settings.MAILERS = smtp_mailer(free_port())  # nothing listens there

    with pytest.raises(CommandError, match="not marked as sent, so the next run will try"):
        run("--date", "2024-10-08")
    assert not DailyReport.objects.exists()


def test_it_keeps_a_sent_day_sent_when_a_forced_resend_fails(known_day, settings):
    run("--date", "2024-10-08")
    settings.MAILERS = smtp_mailer(free_port())

    with pytest.raises(CommandError):
        run("--date", "2024-10-08", "--force")
    report = DailyReport.objects.get()
    assert report.status == DailyReport.Status.SENT
    assert report.times_sent == 1


# --- (c) once a day ------------------------------------------------------------------


def test_it_sends_a_day_once(known_day):
    run("--date", "2024-10-08")
    output = run("--date", "2024-10-08")

    assert len(mail.outbox) == 1
    assert "was already sent on" in output
    assert "nothing sent. Use --force to send it again." in output
    assert DailyReport.objects.get().times_sent == 1


def test_it_sends_again_when_forced(known_day, settings):
    run("--date", "2024-10-08")
    settings.RESQ_DAILY_REPORT_RECIPIENTS = ["lead@example.edu"]
    output = run("--date", "2024-10-08", "--force")

    assert "Sent the report for Tue 8 Oct 2024 again to 1 recipient" in output
    assert len(mail.outbox) == 2
    assert mail.outbox[1].to == ["lead@example.edu"]
    report = DailyReport.objects.get()
    assert report.times_sent == 2
    assert report.forced
    assert report.recipients == ["lead@example.edu"]


def test_it_does_not_count_forcing_a_first_send_as_a_resend(known_day):
    run("--date", "2024-10-08", "--force")

    report = DailyReport.objects.get()
    assert (report.times_sent, report.forced) == (1, False)


def test_it_sends_nothing_while_another_run_holds_the_day():
    DailyReport.objects.create(day=DAY, claimed_at=timezone.now() - timedelta(minutes=1))
    output = run("--date", "2024-10-08", "--force")

    assert "Another run is sending the report for Tue 8 Oct 2024; nothing sent." in output
    assert mail.outbox == []


def test_it_takes_over_a_claim_abandoned_by_a_run_that_died():
    DailyReport.objects.create(day=DAY, claimed_at=timezone.now() - timedelta(hours=1))
    run("--date", "2024-10-08")

    assert len(mail.outbox) == 1
    report = DailyReport.objects.get()
    assert (report.status, report.times_sent) == (DailyReport.Status.SENT, 1)


# --- (d) a day without visits ----------------------------------------------------------


def test_it_says_plainly_that_a_day_had_no_visits():
    output = run("--date", "2024-10-08")

    assert "Sent the report" in output
    [message] = mail.outbox
    assert message.subject == "ResQ daily report: Tue 8 Oct 2024 · no visits"
    assert "No visits were recorded on Tue 8 Oct 2024." in message.body
    assert "No visits were recorded on Tue 8 Oct 2024." in message.alternatives[0][0]
    assert "Median wait" not in message.body
    report = DailyReport.objects.get()
    assert report.figures["visits"] == 0
    assert report.figures["peak_hour"] is None


def test_it_points_out_an_empty_day_that_is_usually_busy():
    usual_tuesdays()
    run("--date", "2024-10-08")

    [message] = mail.outbox
    expected = "The previous Tuesdays had 8 on average."
    assert expected in message.body
    assert expected in " ".join(html_rows(message.alternatives[0][0]))


# --- (e) bad dates -----------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["2026-02-30", "tomorrow", "08/10/2024", ""])
def test_it_refuses_a_date_that_is_not_a_day(raw):
    with pytest.raises(CommandError, match="is not a real day: give it as YYYY-MM-DD"):
        run("--date", raw)
    assert mail.outbox == []
    assert not DailyReport.objects.exists()


def test_it_refuses_a_day_that_has_not_happened_yet():
    tomorrow = timezone.localdate() + timedelta(days=1)
    with pytest.raises(CommandError, match="has not happened yet in Australia/Perth"):
        run("--date", tomorrow.isoformat())


def test_it_refuses_a_day_outside_any_report():
    with pytest.raises(CommandError, match="must be between 2000-01-01 and 2099-12-31"):
        run("--date", "1999-12-31")


def test_it_answers_a_bad_date_on_the_command_line_without_a_traceback(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "manage.py", "send_daily_report", "--date", "2026-02-30"],
        cwd=Path(settings.BASE_DIR),
        env={"DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "CommandError: --date “2026-02-30” is not a real day" in result.stderr


# --- (f) nobody to send to -------------------------------------------------------------


@pytest.mark.parametrize("configured", [[], [""], [" ", ""]])
def test_it_refuses_to_run_without_recipients(known_day, settings, configured):
    settings.RESQ_DAILY_REPORT_RECIPIENTS = configured

    with pytest.raises(CommandError, match="No recipients: set RESQ_DAILY_REPORT_RECIPIENTS"):
        run("--date", "2024-10-08")
    assert mail.outbox == []
    assert not DailyReport.objects.exists()


def test_it_refuses_an_address_that_is_not_one(settings):
    settings.RESQ_DAILY_REPORT_RECIPIENTS = ["lead@example.edu", "not an address"]

    with pytest.raises(CommandError, match="not valid: not an address"):
        run("--date", "2024-10-08")
    assert mail.outbox == []


# --- the record in admin -----------------------------------------------------------------


def test_it_lets_managers_read_the_record_in_admin(known_day, manager_client):
    run("--date", "2024-10-08")
    report = DailyReport.objects.get()

    listing = manager_client.get(reverse("admin:reporting_dailyreport_changelist"))
    assert listing.status_code == 200
    assert "lead@example.edu, coordinator@example.edu" in listing.text
    detail = manager_client.get(reverse("admin:reporting_dailyreport_change", args=[report.pk]))
    assert detail.status_code == 200
    assert "&quot;unique_students&quot;: 9" in detail.text
    assert '<input type="submit"' not in detail.text  # nothing to save
    assert manager_client.get(reverse("admin:reporting_dailyreport_add")).status_code == 403


def test_it_grants_managers_only_the_view_permission():
    manager = Group.objects.get(name="Manager")
    assert manager.permissions.filter(codename="view_dailyreport").exists()
    assert (
        not Group.objects.get(name="Coordinator")
        .permissions.filter(codename__endswith="dailyreport")
        .exists()
    )


# --- two schedulers at once ----------------------------------------------------------------


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="Needs PostgreSQL: the in-memory SQLite test database is private to one thread.",
)
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_sends_once_when_two_schedulers_run_at_the_same_moment():
    schedulers = 8
    barrier = threading.Barrier(schedulers, timeout=30)
    results: list[Any] = []
    errors: list[BaseException] = []

    def scheduler() -> None:
        try:
            barrier.wait()
            results.append(daily_report_send(day=DAY, recipients=LEADS))
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=scheduler) for _ in range(schedulers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(result.sent for result in results) == 1
    assert len(mail.outbox) == 1
    assert DailyReport.objects.get().times_sent == 1


def test_it_invents_no_site_address_when_none_is_set():
    # A development server reached from elsewhere is not at 127.0.0.1:8000: without
    # RESQ_SITE_URL the email has no links (and the command says so), never wrong ones.
    result = django_process(
        "from django.conf import settings; print(repr(settings.RESQ_SITE_URL))",
        unset=("RESQ_SITE_URL",),
        DEBUG="on",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "''"
