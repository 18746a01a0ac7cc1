"""Every metric against hand-computed numbers, in Perth time (UTC+8, no daylight saving).

The week used most is Mon 28 Sep – Sun 4 Oct 2026, which crosses a month.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from queueing.models import EnquiryType, StaffingChange, Team, Visit
from queueing.tests.factories import TeamFactory, VisitFactory
from reporting import metrics
from reporting.metrics import Filter
from reporting.models import Term, TermBreak

pytestmark = pytest.mark.django_db

PERTH = ZoneInfo("Australia/Perth")
WEEK = Filter(date(2026, 9, 28), date(2026, 10, 4))  # Monday to Sunday, Sep into Oct


@pytest.fixture(autouse=True)
def _perth(settings):
    # The expectations below are worked out in Perth time, whatever the environment says.
    settings.TIME_ZONE = "Australia/Perth"


def perth(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=PERTH)


def visit(
    arrived: datetime,
    *,
    wait: timedelta | None = None,
    session: timedelta | None = None,
    removed: str | None = None,
    **fields: Any,
) -> Visit:
    """A visit in a consistent state: waiting, in session (wait), finished (wait and
    session) or removed (a removal outcome, never started)."""
    started = arrived + wait if wait is not None else None
    if removed:
        return VisitFactory(
            arrived_at=arrived,
            status=Visit.Status.REMOVED,
            outcome=removed,
            ended_at=arrived + timedelta(minutes=20),
            **fields,
        )
    if started and session is not None:
        return VisitFactory(
            arrived_at=arrived,
            started_at=started,
            ended_at=started + session,
            status=Visit.Status.FINISHED,
            outcome=Visit.Outcome.FINISHED,
            **fields,
        )
    if started:
        return VisitFactory(
            arrived_at=arrived, started_at=started, status=Visit.Status.IN_SESSION, **fields
        )
    return VisitFactory(arrived_at=arrived, **fields)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


@pytest.fixture
def studysmarter() -> Team:
    return Team.objects.get(slug="studysmarter")


@pytest.fixture
def librarian() -> Team:
    return Team.objects.get(slug="librarian")


@pytest.fixture
def mixed_week(librarian) -> None:
    """Mon: 2 finished (one student twice), 1 removed (no-show). Thu 1 Oct: 1 removed
    (left), 1 in session. Sun 4 Oct: 1 waiting in Librarian."""
    mon, thu, sun = date(2026, 9, 28), date(2026, 10, 1), date(2026, 10, 4)
    visit(perth(mon, 10), wait=minutes(5), session=minutes(20), student_number="21000001")
    visit(perth(mon, 14), wait=minutes(10), session=minutes(30), student_number="21000001")
    visit(perth(mon, 15), removed=Visit.Outcome.NO_SHOW)
    visit(perth(thu, 11), removed=Visit.Outcome.CANCELLED)
    visit(perth(thu, 12), wait=minutes(15))
    visit(perth(sun, 9), team=librarian)


# --- Filter ------------------------------------------------------------------------


def test_it_lists_the_days_of_a_week_that_crosses_a_month():
    assert WEEK.days == [
        date(2026, 9, 28),
        date(2026, 9, 29),
        date(2026, 9, 30),
        date(2026, 10, 1),
        date(2026, 10, 2),
        date(2026, 10, 3),
        date(2026, 10, 4),
    ]
    assert WEEK.previous() == Filter(date(2026, 9, 21), date(2026, 9, 27))
    assert WEEK.shifted(7) == Filter(date(2026, 10, 5), date(2026, 10, 11))


def test_it_keeps_the_team_when_moving_a_filter(studysmarter):
    f = Filter(date(2026, 9, 28), date(2026, 9, 30), studysmarter)
    assert f.previous() == Filter(date(2026, 9, 25), date(2026, 9, 27), studysmarter)
    assert f.shifted(-1).team == studysmarter


def test_it_refuses_a_range_that_ends_before_it_starts():
    with pytest.raises(ValueError):
        Filter(date(2026, 10, 4), date(2026, 9, 28))


def test_it_bounds_the_visits_by_local_midnight():
    # Perth midnight on Mon 28 Sep is 16:00 UTC on Sun 27 Sep.
    before = visit(datetime(2026, 9, 27, 15, 59, 59, tzinfo=UTC))
    first = visit(datetime(2026, 9, 27, 16, 0, tzinfo=UTC))
    last = visit(datetime(2026, 10, 4, 15, 59, 59, tzinfo=UTC))
    after = visit(datetime(2026, 10, 4, 16, 0, tzinfo=UTC))
    ids = set(WEEK.visits().values_list("pk", flat=True))
    assert ids == {first.pk, last.pk}
    assert before.pk not in ids and after.pk not in ids


def test_it_filters_visits_by_team(studysmarter, librarian):
    ours = visit(perth(date(2026, 9, 29), 10))
    visit(perth(date(2026, 9, 29), 11), team=librarian)
    f = Filter(WEEK.start, WEEK.end, studysmarter)
    assert list(f.visits().values_list("pk", flat=True)) == [ours.pk]


# --- counts, days, outcomes --------------------------------------------------------


def test_it_counts_visits_without_counting_removed_as_served(mixed_week):
    assert metrics.visit_counts(WEEK) == {
        "visits": 6,
        "served": 2,
        "removed": 2,
        "open": 2,
        "unique_students": 5,
    }


def test_it_counts_only_the_filtered_team(mixed_week, librarian):
    counts = metrics.visit_counts(Filter(WEEK.start, WEEK.end, librarian))
    assert counts == {"visits": 1, "served": 0, "removed": 0, "open": 1, "unique_students": 1}


def test_it_counts_zero_in_an_empty_period():
    assert metrics.visit_counts(WEEK) == {
        "visits": 0,
        "served": 0,
        "removed": 0,
        "open": 0,
        "unique_students": 0,
    }


def test_it_gives_every_day_of_the_week_with_zeros(mixed_week):
    rows = metrics.visits_per_day(WEEK)
    assert [row["day"] for row in rows] == WEEK.days
    zero = {"served": 0, "removed": 0, "open": 0, "total": 0}
    assert rows[0] == {"day": date(2026, 9, 28), "served": 2, "removed": 1, "open": 0, "total": 3}
    assert rows[1] == {"day": date(2026, 9, 29), **zero}
    assert rows[3] == {"day": date(2026, 10, 1), "served": 0, "removed": 1, "open": 1, "total": 2}
    assert rows[6] == {"day": date(2026, 10, 4), "served": 0, "removed": 0, "open": 1, "total": 1}
    assert sum(row["total"] for row in rows) == 6


def test_it_puts_a_visit_at_2330_utc_on_the_next_perth_day():
    # 23:30 UTC on Saturday 1 August is 07:30 on Sunday 2 August in Perth.
    visit(datetime(2026, 8, 1, 23, 30, tzinfo=UTC), wait=minutes(6), session=minutes(10))
    rows = metrics.visits_per_day(Filter(date(2026, 8, 1), date(2026, 8, 2)))
    assert [(row["day"], row["total"]) for row in rows] == [
        (date(2026, 8, 1), 0),
        (date(2026, 8, 2), 1),
    ]
    assert metrics.visit_counts(Filter(date(2026, 8, 1), date(2026, 8, 1)))["visits"] == 0
    grid = metrics.arrivals_by_weekday_hour(Filter(date(2026, 7, 27), date(2026, 8, 2)))
    assert grid["weekdays"] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sun"]
    assert grid["hours"] == [7]
    assert grid["counts"] == [[0], [0], [0], [0], [0], [1]]
    assert grid["median_wait"][5] == [6.0]


def test_it_lists_outcomes_in_order_with_zero_rows(mixed_week):
    assert metrics.outcomes(WEEK) == [
        ("Finished", 2),
        ("Left before being seen", 1),
        ("No-show", 1),
        ("Out of time", 0),
        ("Still open", 2),
    ]


def test_it_lists_outcomes_of_an_empty_period_as_zeros():
    assert [n for _, n in metrics.outcomes(WEEK)] == [0, 0, 0, 0, 0]


# --- waits and sessions ------------------------------------------------------------


@pytest.fixture
def four_waits() -> None:
    """Waits of 5, 10, 15 and 40 minutes (one still in session); two never started."""
    tue = date(2026, 9, 29)
    visit(perth(tue, 10), wait=minutes(5), session=minutes(10))
    visit(perth(tue, 10, 30), wait=minutes(40), session=minutes(10))
    visit(perth(tue, 11), wait=minutes(15), session=minutes(10))
    visit(perth(tue, 12), wait=minutes(10))
    visit(perth(tue, 13), removed=Visit.Outcome.OUT_OF_TIME)
    visit(perth(tue, 14))


def test_it_computes_wait_median_p90_and_max(four_waits):
    # Sorted 5, 10, 15, 40. Median at position 0.5 × 3 = 1.5: (10 + 15) / 2 = 12.5.
    # p90 at 0.9 × 3 = 2.7: 15 + 0.7 × (40 − 15) = 32.5.
    assert metrics.wait_stats(WEEK) == {"count": 4, "median": 12.5, "p90": 32.5, "max": 40.0}


def test_it_keeps_seconds_in_wait_stats():
    # 2:30 and 3:45: median (150 + 225) / 2 = 187.5 s = 3.125 min, shown as 3.1.
    visit(perth(date(2026, 9, 29), 10), wait=timedelta(minutes=2, seconds=30))
    visit(perth(date(2026, 9, 29), 11), wait=timedelta(minutes=3, seconds=45))
    assert metrics.wait_stats(WEEK) == {"count": 2, "median": 3.1, "p90": 3.6, "max": 3.8}


def test_it_gives_no_wait_stats_without_sessions():
    visit(perth(date(2026, 9, 29), 10))
    assert metrics.wait_stats(WEEK) == {"count": 0, "median": None, "p90": None, "max": None}


def test_it_buckets_waits_in_five_minutes():
    tue = date(2026, 9, 29)
    for n, wait in enumerate(
        [timedelta(0), timedelta(minutes=4, seconds=59), minutes(5), minutes(12), minutes(60)]
    ):
        visit(perth(tue, 9, n), wait=wait)
    visit(perth(tue, 10), wait=minutes(75), session=minutes(5))
    visit(perth(tue, 11))  # never started: no wait to count
    distribution = metrics.wait_distribution(WEEK)
    assert [label for label, _ in distribution] == [
        "0–5",
        "5–10",
        "10–15",
        "15–20",
        "20–25",
        "25–30",
        "30–35",
        "35–40",
        "40–45",
        "45–50",
        "50–55",
        "55–60",
        "60+",
    ]
    counts = dict(distribution)
    assert (counts["0–5"], counts["5–10"], counts["10–15"], counts["60+"]) == (2, 1, 1, 2)
    assert sum(counts.values()) == 6


def test_it_buckets_nothing_in_an_empty_period():
    distribution = metrics.wait_distribution(WEEK)
    assert len(distribution) == 13 and all(n == 0 for _, n in distribution)


def test_it_computes_session_lengths_of_finished_visits_only():
    tue = date(2026, 9, 29)
    visit(perth(tue, 10), wait=minutes(1), session=minutes(10))
    visit(perth(tue, 11), wait=minutes(1), session=minutes(30))
    visit(perth(tue, 12), wait=minutes(1), session=minutes(20))
    visit(perth(tue, 13), wait=minutes(1))  # in session: no length yet
    visit(perth(tue, 14), removed=Visit.Outcome.NO_SHOW)
    # Sorted 10, 20, 30: median 20; p90 at 0.9 × 2 = 1.8: 20 + 0.8 × 10 = 28.
    assert metrics.session_stats(WEEK) == {"count": 3, "median": 20.0, "p90": 28.0, "max": 30.0}
    empty = metrics.session_stats(WEEK.shifted(7))
    assert empty == {"count": 0, "median": None, "p90": None, "max": None}


# --- by weekday and hour -----------------------------------------------------------


@pytest.fixture
def peak_hours() -> None:
    mon, thu = date(2026, 9, 28), date(2026, 10, 1)
    visit(perth(mon, 10, 15), wait=minutes(10), session=minutes(5))
    visit(perth(mon, 10, 45), wait=minutes(20))
    visit(perth(mon, 13, 5), removed=Visit.Outcome.CANCELLED)
    visit(perth(thu, 11, 30), wait=minutes(4), session=minutes(5))


def test_it_counts_arrivals_by_weekday_and_hour(peak_hours):
    assert metrics.arrivals_by_weekday_hour(WEEK) == {
        "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri"],
        "hours": [10, 11, 12, 13],
        "counts": [[2, 0, 0, 1], [0] * 4, [0] * 4, [0, 1, 0, 0], [0] * 4],
        "median_wait": [
            [15.0, None, None, None],
            [None] * 4,
            [None] * 4,
            [None, 4.0, None, None],
            [None] * 4,
        ],
    }


def test_it_gives_an_empty_weekday_grid_default_hours():
    assert metrics.arrivals_by_weekday_hour(WEEK) == {
        "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri"],
        "hours": [10, 11],
        "counts": [[0, 0]] * 5,
        "median_wait": [[None, None]] * 5,
    }


def test_it_gives_waits_by_local_hour(peak_hours):
    # 10:00: waits 10 and 20 -> median 15, p90 10 + 0.9 × 10 = 19.
    assert metrics.wait_by_hour(WEEK) == [
        {"hour": 10, "arrivals": 2, "median_wait": 15.0, "p90_wait": 19.0},
        {"hour": 11, "arrivals": 1, "median_wait": 4.0, "p90_wait": 4.0},
        {"hour": 13, "arrivals": 1, "median_wait": None, "p90_wait": None},
    ]
    assert metrics.wait_by_hour(WEEK.shifted(7)) == []


# --- units, enquiries, teams -------------------------------------------------------


@pytest.fixture
def units() -> None:
    wed = date(2026, 9, 30)
    grammar = EnquiryType.objects.get(name="Grammar")
    for n, code in enumerate(["CITS3200"] * 3 + ["CITS1401", "ECON1101", "ECON1101", "", ""]):
        visit(perth(wed, 10, n), unit_code=code)
    visit(perth(wed, 11), unit_code="LAW2201", enquiry_type=grammar)
    visit(perth(wed, 12), unit_code="CITS3200", enquiry_type=grammar, removed="no_show")


def test_it_ranks_units_without_blanks(units):
    assert metrics.popular_units(WEEK) == [
        ("CITS3200", 4),
        ("ECON1101", 2),
        ("CITS1401", 1),
        ("LAW2201", 1),
    ]
    assert metrics.popular_units(WEEK, limit=2) == [("CITS3200", 4), ("ECON1101", 2)]


def test_it_ranks_faculties_by_unit_prefix(units):
    assert metrics.popular_faculties(WEEK) == [("CITS", 5), ("ECON", 2), ("LAW", 1)]
    assert metrics.popular_faculties(WEEK, limit=1) == [("CITS", 5)]
    assert metrics.popular_faculties(WEEK.shifted(7)) == []


def test_it_ranks_enquiry_types(units):
    assert metrics.enquiry_types(WEEK) == [("Essay", 8), ("Grammar", 2)]
    assert metrics.enquiry_types(WEEK.shifted(7)) == []


def test_it_shares_visits_between_active_teams_whatever_the_filter_team(librarian):
    closed = TeamFactory(name="Closed", slug="closed", is_active=False)
    wed = date(2026, 9, 30)
    visit(perth(wed, 10))
    visit(perth(wed, 11), removed="cancelled")
    visit(perth(wed, 12), team=librarian)
    visit(perth(wed, 13), team=closed)
    visit(perth(date(2026, 10, 5), 10), team=librarian)  # the week after
    expected = [("STUDYSmarter", 2), ("Librarian", 1)]
    assert metrics.team_share(WEEK) == expected
    assert metrics.team_share(Filter(WEEK.start, WEEK.end, librarian)) == expected
    assert metrics.team_share(WEEK.previous()) == [("STUDYSmarter", 0), ("Librarian", 0)]


# --- utilisation -------------------------------------------------------------------


def change(team: Team, at: datetime, available: int, delta: int) -> None:
    StaffingChange.objects.create(team=team, at=at, available=available, delta=delta)


THU = date(2026, 10, 1)
THURSDAY = Filter(THU, THU)


def test_it_integrates_staffing_with_a_change_mid_period(studysmarter):
    change(studysmarter, perth(date(2026, 9, 30), 17), available=1, delta=-1)
    change(studysmarter, perth(THU, 10), available=2, delta=1)
    change(studysmarter, perth(THU, 14), available=0, delta=-2)
    change(studysmarter, perth(date(2026, 10, 2), 9), available=3, delta=3)  # the next day
    # Sessions: 10 minutes of one that began before midnight, 30 and 45 minutes inside.
    visit(perth(date(2026, 9, 30), 23, 40), wait=minutes(10), session=minutes(20))
    visit(perth(THU, 8, 50), wait=minutes(10), session=minutes(30))
    visit(perth(THU, 13, 20), wait=minutes(10), session=minutes(45))
    visit(perth(THU, 15), removed="no_show")
    # Staffed: 1 × 10 h (00:00–10:00) + 2 × 4 h (10:00–14:00) + 0 = 1080 minutes.
    # Sessions: 10 + 30 + 45 = 85 minutes; 85 / 1080 = 0.0787.
    assert metrics.utilisation(Filter(THU, THU, studysmarter)) == [
        {
            "team": "STUDYSmarter",
            "staffed_minutes": 1080.0,
            "session_minutes": 85.0,
            "utilisation": 0.079,
        }
    ]


def test_it_infers_the_staffing_at_the_start_from_the_first_later_change(studysmarter, librarian):
    # No history before Thursday: Librarian went 2 -> 3 at 12:00, so it had 2 before.
    change(librarian, perth(THU, 12), available=3, delta=1)
    visit(perth(THU, 12), wait=minutes(0), session=minutes(60), team=librarian)
    # 2 × 12 h + 3 × 12 h = 60 h = 3600 minutes; 60 / 3600 = 0.0167.
    rows = {row["team"]: row for row in metrics.utilisation(THURSDAY)}
    assert rows["Librarian"] == {
        "team": "Librarian",
        "staffed_minutes": 3600.0,
        "session_minutes": 60.0,
        "utilisation": 0.017,
    }
    # STUDYSmarter has no history at all: its current count applies, here none.
    Team.objects.filter(pk=studysmarter.pk).update(available_staff=0)
    rows = {row["team"]: row for row in metrics.utilisation(THURSDAY)}
    assert rows["STUDYSmarter"] == {
        "team": "STUDYSmarter",
        "staffed_minutes": 0.0,
        "session_minutes": 0.0,
        "utilisation": None,
    }
    assert list(rows) == ["STUDYSmarter", "Librarian"]


def test_it_counts_staffing_and_sessions_only_up_to_now(studysmarter, monkeypatch):
    now = perth(THU, 12)
    monkeypatch.setattr(timezone, "now", lambda: now)
    change(studysmarter, perth(date(2026, 9, 30), 17), available=1, delta=1)
    change(studysmarter, perth(THU, 10), available=2, delta=1)
    visit(perth(THU, 11, 20), wait=minutes(10))  # in session since 11:30
    # Staffed 1 × 10 h + 2 × 2 h = 840 minutes; 30 minutes in session; 30 / 840 = 0.0357.
    assert metrics.utilisation(Filter(THU, date(2026, 10, 2), studysmarter)) == [
        {
            "team": "STUDYSmarter",
            "staffed_minutes": 840.0,
            "session_minutes": 30.0,
            "utilisation": 0.036,
        }
    ]
    future = metrics.utilisation(Filter(date(2026, 10, 5), date(2026, 10, 5), studysmarter))
    assert future[0]["staffed_minutes"] == 0.0 and future[0]["utilisation"] is None


# --- weekly trend ------------------------------------------------------------------


@pytest.fixture
def semester() -> Term:
    # Teaching from Monday 27 July; the study break 28 Sep – 2 Oct has no week number.
    term = Term.objects.create(
        name="Semester 2 2026", first_day=date(2026, 7, 27), last_day=date(2026, 11, 6)
    )
    TermBreak.objects.create(term=term, first_day=date(2026, 9, 28), last_day=date(2026, 10, 2))
    return term


def test_it_counts_visits_per_teaching_week(semester, librarian):
    visit(perth(date(2026, 7, 27), 10))
    visit(perth(date(2026, 7, 31), 15), removed="cancelled")
    # 23:30 UTC on Sunday 2 Aug is Monday 3 Aug in Perth: week 2, not week 1.
    visit(datetime(2026, 8, 2, 23, 30, tzinfo=UTC))
    visit(perth(date(2026, 9, 30), 10))  # the study break
    visit(perth(date(2026, 10, 4), 10))  # Sunday of the break week
    visit(perth(date(2026, 10, 5), 10), team=librarian)  # week 10
    visit(perth(date(2026, 11, 9), 10))  # after the term
    trend = metrics.weekly_trend(semester)
    assert [n for n, _ in trend] == list(range(1, 15))
    assert trend[0] == (1, 2)
    assert trend[1] == (2, 1)
    assert trend[9] == (10, 1)
    assert sum(n for _, n in trend) == 4
    assert metrics.weekly_trend(semester, librarian)[9] == (10, 1)
    assert sum(n for _, n in metrics.weekly_trend(semester, librarian)) == 1


# --- query counts ------------------------------------------------------------------


def _dataset(size: int, librarian: Team) -> None:
    days = [date(2026, 9, 28) + timedelta(days=n) for n in range(7)]
    for n in range(size):
        arrived = perth(days[n % 7], 9 + n % 8, n % 60)
        fields = {
            "unit_code": ["CITS3200", "ECON1101", "", "LAW2201"][n % 4],
            "team": librarian if n % 3 == 0 else Team.objects.get(slug="studysmarter"),
        }
        match n % 4:
            case 0:
                visit(arrived, wait=minutes(n % 50), session=minutes(5 + n % 30), **fields)
            case 1:
                visit(arrived, removed="no_show", **fields)
            case 2:
                visit(arrived, wait=minutes(n % 20), **fields)
            case _:
                visit(arrived, **fields)
        if n % 10 == 0:
            change(fields["team"], arrived, available=1 + n % 3, delta=1)


QUERIES: list[tuple[str, Callable[[Term], Any], int]] = [
    ("visit_counts", lambda term: metrics.visit_counts(WEEK), 2),
    ("visits_per_day", lambda term: metrics.visits_per_day(WEEK), 1),
    ("outcomes", lambda term: metrics.outcomes(WEEK), 1),
    ("wait_stats", lambda term: metrics.wait_stats(WEEK), 1),
    ("wait_distribution", lambda term: metrics.wait_distribution(WEEK), 1),
    ("session_stats", lambda term: metrics.session_stats(WEEK), 1),
    ("arrivals_by_weekday_hour", lambda term: metrics.arrivals_by_weekday_hour(WEEK), 1),
    ("wait_by_hour", lambda term: metrics.wait_by_hour(WEEK), 1),
    ("popular_units", lambda term: metrics.popular_units(WEEK), 1),
    ("popular_faculties", lambda term: metrics.popular_faculties(WEEK), 1),
    ("enquiry_types", lambda term: metrics.enquiry_types(WEEK), 1),
    ("team_share", lambda term: metrics.team_share(WEEK), 2),
    ("utilisation", lambda term: metrics.utilisation(WEEK), 3),
    ("weekly_trend", lambda term: metrics.weekly_trend(term), 2),
]


@pytest.mark.parametrize("size", [5, 50])
@pytest.mark.parametrize(("name", "run", "queries"), QUERIES, ids=[q[0] for q in QUERIES])
def test_it_uses_the_same_few_queries_however_many_visits(
    name, run, queries, size, librarian, semester, django_assert_num_queries
):
    _dataset(size, librarian)
    with django_assert_num_queries(queries):
        result = run(semester)
    assert result is not None


def test_it_shares_a_query_between_figures_within_one_report(django_assert_num_queries):
    f = metrics.Filter(date(2026, 8, 3), date(2026, 8, 9))
    with django_assert_num_queries(2):
        metrics.wait_stats(f)
        metrics.wait_distribution(f)
    with metrics.shared_results(), django_assert_num_queries(2):
        metrics.wait_stats(f)
        metrics.wait_distribution(f)
        metrics.outcomes(f)
        metrics.arrivals_by_weekday_hour(f)
        metrics.wait_by_hour(f)
        metrics.popular_units(f)
        metrics.popular_faculties(f)
    # Results never outlive the report: the next one reads the database again.
    with django_assert_num_queries(1):
        metrics.wait_stats(f)


def test_it_reads_the_hourly_waits_from_the_grid_within_one_report(django_assert_num_queries):
    f = metrics.Filter(date(2026, 8, 3), date(2026, 8, 9))
    with metrics.shared_results(), django_assert_num_queries(1):
        metrics.arrivals_by_weekday_hour(f)
        metrics.wait_by_hour(f)


def test_it_reads_counts_outcomes_and_waits_from_one_query_within_one_report(
    django_assert_num_queries,
):
    f = metrics.Filter(date(2026, 8, 3), date(2026, 8, 9))
    # The unique students are their own query; everything else is one pass.
    with metrics.shared_results(), django_assert_num_queries(2):
        metrics.visit_counts(f)
        metrics.outcomes(f)
        metrics.wait_stats(f)
        metrics.wait_distribution(f)


def test_it_reads_days_teams_and_the_term_trend_from_one_query_within_one_report(
    semester, studysmarter, django_assert_num_queries
):
    weeks = semester.teaching_weeks()
    f = metrics.Filter(weeks[0][1], semester.last_day)
    with metrics.shared_results(), django_assert_num_queries(3):
        metrics.visits_per_day(f)
        metrics.visits_per_day(metrics.Filter(f.start, f.end, studysmarter))
        metrics.team_share(f)  # and its list of teams
        metrics.weekly_trend(semester)  # and the term's breaks
