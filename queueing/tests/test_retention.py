"""Retention: `anonymise_old_visits` takes names and numbers out of old visits, and
leaves every report figure as it was.

"Now" is Saturday 28 November 2026, 10:00 in Perth; with the default 730 days, visits
from before Thursday 28 November 2024 (local midnight) are due.
"""

from datetime import UTC, date, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from queueing.management.commands.anonymise_old_visits import (
    ANONYMISED_NAME,
    PSEUDONYM_PREFIX,
    retention_cutoff,
    student_number_pseudonym,
    visits_anonymise,
)
from queueing.models import Board, EnquiryType, StaffingChange, Team, Visit, VisitEvent
from queueing.tests.factories import VisitFactory, finished_visit
from reporting import metrics
from reporting.export import export_rows, export_visits

pytestmark = pytest.mark.django_db

PERTH = ZoneInfo("Australia/Perth")
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=PERTH)
CUTOFF_DAY = date(2024, 11, 28)


@pytest.fixture(autouse=True)
def _perth_now(settings, monkeypatch):
    settings.TIME_ZONE = "Australia/Perth"
    settings.RESQ_RETENTION_DAYS = 730
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW.astimezone(UTC))


def perth(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PERTH)


def served(arrived: datetime, *, wait: int, session: int, **fields) -> Visit:
    return finished_visit(arrived, waited=wait, minutes=session, **fields)


def run(*args: str) -> str:
    out = StringIO()
    call_command("anonymise_old_visits", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def old_and_new():
    """Three old visits (one student twice), one on the cutoff day, one recent."""
    librarian = Team.objects.get(slug="librarian")
    referencing = EnquiryType.objects.get(name="Referencing")
    old_day = CUTOFF_DAY - timedelta(days=3)
    return {
        "old_a": served(
            perth(old_day, 10, 5), wait=7, session=12, student_name="Zoë Old",
            student_number="21234567", unit_code="CITS3200",
        ),
        "old_a_again": served(
            perth(old_day + timedelta(days=1), 11), wait=3, session=20,
            student_name="Zoë Old", student_number="21234567", unit_code="CITS3200",
            team=librarian, enquiry_type=referencing,
        ),
        "old_b": VisitFactory(
            arrived_at=perth(old_day, 11, 30), ended_at=perth(old_day, 11, 45),
            status=Visit.Status.REMOVED, outcome=Visit.Outcome.NO_SHOW,
            student_name="Sam Older", student_number="20000001", unit_code="",
        ),
        # Local midnight of the cutoff day itself: kept (it is not *before* the cutoff).
        "edge": served(
            perth(CUTOFF_DAY, 0, 0), wait=1, session=1,
            student_name="Ed Edge", student_number="22222222",
        ),
        "recent": served(
            perth(date(2026, 11, 20)), wait=5, session=5,
            student_name="Rae Recent", student_number="23333333",
        ),
    }  # fmt: skip


def report_figures(f: metrics.Filter) -> dict:
    return {
        "counts": metrics.visit_counts(f),
        "per_day": metrics.visits_per_day(f),
        "outcomes": metrics.outcomes(f),
        "waits": metrics.wait_stats(f),
        "wait_distribution": metrics.wait_distribution(f),
        "sessions": metrics.session_stats(f),
        "peak_hours": metrics.arrivals_by_weekday_hour(f),
        "wait_by_hour": metrics.wait_by_hour(f),
        "units": metrics.popular_units(f),
        "faculties": metrics.popular_faculties(f),
        "enquiry_types": metrics.enquiry_types(f),
        "teams": metrics.team_share(f),
        "utilisation": metrics.utilisation(f),
    }


# --- what changes, and what stays -----------------------------------------------------------


def test_it_removes_names_and_numbers_from_old_visits_only(old_and_new):
    output = run()

    assert output.strip() == "Anonymised 3 visits from before 2024-11-28 (kept 730 days)."
    for key in ("old_a", "old_a_again", "old_b"):
        visit = Visit.objects.get(pk=old_and_new[key].pk)
        assert visit.student_name == ANONYMISED_NAME
        assert visit.student_number.startswith(PSEUDONYM_PREFIX)
    for key, name in (("edge", "Ed Edge"), ("recent", "Rae Recent")):
        visit = Visit.objects.get(pk=old_and_new[key].pk)
        assert visit.student_name == name
        assert not visit.student_number.startswith(PSEUDONYM_PREFIX)


def test_it_keeps_everything_the_reports_read(old_and_new):
    fields = ["unit_code", "team_id", "enquiry_type_id", "status", "outcome", "arrived_at",
              "started_at", "ended_at", "added_by_id", "started_by_id", "ended_by_id"]  # fmt: skip
    before = list(Visit.objects.order_by("pk").values(*fields))

    run()

    assert list(Visit.objects.order_by("pk").values(*fields)) == before


@pytest.mark.parametrize("team", [None, "studysmarter", "librarian"])
def test_it_leaves_every_report_figure_as_it_was(old_and_new, team):
    # The old period alone, and a period that spans the cutoff.
    team = Team.objects.get(slug=team) if team else None
    StaffingChange.objects.create(
        team=Team.objects.get(slug="studysmarter"), available=2, delta=2,
        at=perth(CUTOFF_DAY - timedelta(days=10), 9),
    )  # fmt: skip
    periods = [
        metrics.Filter(CUTOFF_DAY - timedelta(days=7), CUTOFF_DAY - timedelta(days=1), team),
        metrics.Filter(CUTOFF_DAY - timedelta(days=30), date(2026, 11, 27), team),
    ]
    before = [report_figures(f) for f in periods]

    run()

    after = [report_figures(f) for f in periods]
    assert after == before
    # Unique students too: the pseudonym is the same for the same number.
    assert before[0]["counts"]["unique_students"] in (0, 1, 2)


def test_it_counts_a_returning_student_once_across_runs(old_and_new):
    f = metrics.Filter(CUTOFF_DAY - timedelta(days=7), CUTOFF_DAY - timedelta(days=1))
    # The student's first visit is anonymised one night, the second a night later.
    call_command("anonymise_old_visits", "--days", "732", stdout=StringIO())
    assert Visit.objects.filter(student_number="21234567").count() == 1

    run()

    assert metrics.visit_counts(f)["unique_students"] == 2
    numbers = set(
        Visit.objects.filter(
            pk__in=[old_and_new["old_a"].pk, old_and_new["old_a_again"].pk]
        ).values_list("student_number", flat=True)
    )
    assert numbers == {student_number_pseudonym("21234567")}


def test_it_scrubs_corrections_in_the_visits_history(old_and_new, leader):
    visit = Visit.objects.get(pk=old_and_new["old_b"].pk)
    visit.correct(by=leader, student_name="Sam Oldest", student_number="20000002")
    recent = Visit.objects.get(pk=old_and_new["recent"].pk)
    recent.correct(by=leader, student_name="Rae Recentest")

    run()

    [event] = VisitEvent.objects.filter(visit=visit, action=VisitEvent.Action.CORRECTED)
    assert event.detail == {
        "student_name": [ANONYMISED_NAME, ANONYMISED_NAME],
        "student_number": [
            student_number_pseudonym("20000001"),
            student_number_pseudonym("20000002"),
        ],
    }
    assert Visit.objects.get(pk=visit.pk).student_number == student_number_pseudonym("20000002")
    [kept] = VisitEvent.objects.filter(visit=recent, action=VisitEvent.Action.CORRECTED)
    assert kept.detail == {"student_name": ["Rae Recent", "Rae Recentest"]}


def test_it_scrubs_the_admin_log_of_the_visits_it_anonymises(old_and_new, manager):
    content_type = ContentType.objects.get_for_model(Visit)
    for visit in old_and_new.values():
        LogEntry.objects.create(
            user=manager, content_type=content_type, object_id=str(visit.pk),
            object_repr=str(visit), action_flag=CHANGE, change_message="[]",
        )  # fmt: skip

    run()

    reprs = dict(LogEntry.objects.values_list("object_id", "object_repr"))
    old = old_and_new["old_a"]
    assert reprs[str(old.pk)] == f"{ANONYMISED_NAME} (visit {old.pk})"
    assert reprs[str(old_and_new["recent"].pk)].startswith("Rae Recent")
    assert not any("Zoë" in text or "Sam Older" in text for text in reprs.values())


def test_it_exports_old_visits_without_names_or_numbers(old_and_new):
    run()

    f = metrics.Filter(CUTOFF_DAY - timedelta(days=7), CUTOFF_DAY - timedelta(days=1))
    rows = list(export_rows(export_visits(f)))
    assert rows
    assert {row[3] for row in rows} == {ANONYMISED_NAME}
    assert not any("21234567" in str(cell) for row in rows for cell in row)


# --- running it ----------------------------------------------------------------------------


def test_it_changes_nothing_on_a_dry_run(old_and_new):
    before = list(Visit.objects.order_by("pk").values())

    output = run("--dry-run")

    assert output.strip() == (
        "Would anonymise 3 visits from before 2024-11-28 (kept 730 days). Nothing was changed."
    )
    assert list(Visit.objects.order_by("pk").values()) == before


def test_it_changes_nothing_the_second_time(old_and_new):
    run()
    after_first = list(Visit.objects.order_by("pk").values())

    output = run()

    assert output.strip() == "Anonymised 0 visits from before 2024-11-28 (kept 730 days)."
    assert list(Visit.objects.order_by("pk").values()) == after_first
    assert run("--dry-run").startswith("Would anonymise 0 visits")


def test_it_reads_the_retention_period_from_settings(old_and_new, settings):
    settings.RESQ_RETENTION_DAYS = 10

    output = run()

    assert output.strip() == "Anonymised 4 visits from before 2026-11-18 (kept 10 days)."
    assert Visit.objects.get(pk=old_and_new["recent"].pk).student_name == "Rae Recent"


def test_it_takes_days_from_the_command_line(old_and_new):
    output = run("--days", "5")

    assert output.strip() == "Anonymised 5 visits from before 2026-11-23 (kept 5 days)."


@pytest.mark.parametrize("days", ["0", "-3"])
def test_it_refuses_a_period_that_would_anonymise_today(old_and_new, days):
    before = list(Visit.objects.order_by("pk").values())

    with pytest.raises(CommandError, match="at least 1"):
        run("--days", days)

    assert list(Visit.objects.order_by("pk").values()) == before


def test_it_cuts_at_local_midnight():
    cutoff = retention_cutoff(days=730)

    assert cutoff == datetime(2024, 11, 28, 0, 0, tzinfo=PERTH)


def test_it_works_in_batches_without_reading_every_visit_at_once():
    old = perth(CUTOFF_DAY - timedelta(days=40))
    for n in range(7):
        VisitFactory(
            arrived_at=old + timedelta(minutes=n), ended_at=old + timedelta(minutes=n + 1),
            status=Visit.Status.REMOVED, outcome=Visit.Outcome.CANCELLED,
        )  # fmt: skip

    with CaptureQueriesContext(connection) as queries:
        changed = visits_anonymise(cutoff=retention_cutoff(days=730), batch_size=3)

    assert changed == 7
    updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "queueing_visit"')]
    assert len(updates) == 3  # 3 + 3 + 1
    reads = [
        q["sql"]
        for q in queries
        if q["sql"].startswith("SELECT") and 'FROM "queueing_visit"' in q["sql"]
    ]
    assert reads and all("LIMIT 3" in sql for sql in reads)


def test_it_redraws_the_desk_if_an_old_visit_was_still_open():
    VisitFactory(arrived_at=perth(CUTOFF_DAY - timedelta(days=1)), student_name="Still Waiting")
    version = Board.current_version()

    run()

    assert Board.current_version() == version + 1
    assert not Visit.objects.filter(student_name="Still Waiting").exists()


def test_it_leaves_the_desk_alone_when_only_closed_visits_change(old_and_new):
    version = Board.current_version()

    run()

    assert Board.current_version() == version


# --- the pseudonym ------------------------------------------------------------------------


def test_the_pseudonym_is_stable_distinct_and_fits_the_column():
    a, b = student_number_pseudonym("21234567"), student_number_pseudonym("21234568")

    assert a == student_number_pseudonym("21234567")
    assert a != b
    assert "21234567" not in a
    assert len(a) == Visit._meta.get_field("student_number").max_length
    assert a.startswith(PSEUDONYM_PREFIX)


def test_the_pseudonym_depends_on_the_secret_key(settings):
    before = student_number_pseudonym("21234567")
    settings.SECRET_KEY = "another-key-" + "x" * 50

    assert student_number_pseudonym("21234567") != before


def test_the_desk_never_accepts_a_number_that_looks_like_a_pseudonym(leader_client):
    response = leader_client.post(
        reverse("queueing:add"),
        {
            "student_name": "Pat Tricky",
            "student_number": "anon-123",
            "team": Team.objects.get(slug="studysmarter").pk,
            "enquiry_type": EnquiryType.objects.get(name="Essay").pk,
        },
    )

    assert response.status_code == 200
    assert not Visit.objects.filter(student_number__startswith=PSEUDONYM_PREFIX).exists()
