"""The weekly at-a-glance page, with figures small enough to check by hand.

Perth is UTC+8 all year, so 23:30 UTC on a Sunday is 07:30 on the Monday after.
"""

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from queueing.models import EnquiryType, Team, Visit
from queueing.tests.factories import VisitFactory
from reporting.weekly import describe_change, week_summary_build

pytestmark = pytest.mark.django_db

PERTH = ZoneInfo("Australia/Perth")
URL = reverse("reporting:weekly")
# Semester 2 2026, week 1: Monday 27 July to Sunday 2 August, across a month end.
WEEK = "2026-07-29"


def perth(*args: int) -> datetime:
    return datetime(*args, tzinfo=PERTH)


def served(arrived: datetime, *, wait: int, **fields):
    started = arrived + timedelta(minutes=wait)
    return VisitFactory(
        arrived_at=arrived,
        started_at=started,
        ended_at=started + timedelta(minutes=15),
        status=Visit.Status.FINISHED,
        outcome=Visit.Outcome.FINISHED,
        **fields,
    )


def removed(arrived: datetime, **fields):
    return VisitFactory(
        arrived_at=arrived,
        ended_at=arrived + timedelta(minutes=5),
        status=Visit.Status.REMOVED,
        outcome=Visit.Outcome.CANCELLED,
        **fields,
    )


@pytest.fixture
def visits(terms):
    grammar = EnquiryType.objects.get(name="Grammar")
    # This week: five visits by four students.
    served(
        datetime(2026, 7, 26, 23, 30, tzinfo=ZoneInfo("UTC")),  # Monday 07:30 in Perth
        wait=10,
        student_number="21000001",
    )
    served(perth(2026, 7, 28, 10, 5), wait=20, student_number="21000001")
    served(
        perth(2026, 7, 28, 10, 20),
        wait=30,
        student_number="21000002",
        unit_code="ECON1101",
        enquiry_type=grammar,
    )
    removed(perth(2026, 7, 28, 10, 40), student_number="21000003")
    served(perth(2026, 8, 1, 11, 0), wait=40, student_number="21000004", unit_code="PHYS1001")
    # Monday 00:30 in Perth (Sunday 16:30 UTC) is next week, not this one.
    served(perth(2026, 8, 3, 0, 30), wait=5, student_number="21000009")
    # The previous week: two visits, ten-minute waits.
    served(perth(2026, 7, 21, 11, 0), wait=10, student_number="21000005")
    served(perth(2026, 7, 23, 11, 0), wait=10, student_number="21000006")
    # Semester 1, week 1 (23 February to 1 March): four visits.
    for day in (23, 24, 25, 26):
        served(perth(2026, 2, day, 10, 0), wait=25, student_number=f"2100010{day % 10}")


def cells(response, label: str) -> list[str]:
    """The text of the table row headed `label`, cell by cell."""
    for row in response.context["headline"]:
        if row.label == label:
            return [row.value, row.vs_previous.text, row.vs_last_term.text]
    raise AssertionError(f"no row {label!r}")


def test_it_shows_the_week_to_a_coordinator(client, coordinator, visits):
    client.force_login(coordinator)
    response = client.get(URL, {"day": WEEK})
    assert response.status_code == 200
    assert "Week of Mon 27 Jul 2026 · Semester 2 2026, week 1" in response.text
    assert "Mon 27 Jul – Sun 2 Aug 2026" in response.text
    assert cells(response, "Visits") == ["5", "▲ 3 more (+150 %)", "▲ 1 more (+25 %)"]
    assert cells(response, "Served") == ["4", "▲ 2 more (+100 %)", "= no change"]
    assert cells(response, "Removed (not served)")[0] == "1"
    assert cells(response, "Unique students") == ["4", "▲ 2 more (+100 %)", "= no change"]
    # Waits 10, 20, 30, 40: median 25, 90th percentile 30 + 0.7 × 10.
    assert cells(response, "Median wait") == ["25 min", "▲ 15 min longer", "= no change"]
    assert cells(response, "90th percentile wait")[0] == "37 min"
    assert cells(response, "Peak hour (most arrivals)")[0] == "10:00–11:00 (3 arrivals)"
    assert cells(response, "Busiest day") == [
        "Tue 28 Jul (3 visits)",
        "Tue 21 Jul (1 visit)",
        "Mon 23 Feb (1 visit)",
    ]


def test_it_counts_a_late_utc_sunday_visit_on_the_perth_monday(client, coordinator, visits):
    client.force_login(coordinator)
    response = client.get(URL, {"day": WEEK})
    per_day = {row["day"]: row["total"] for row in response.context["days"]}
    assert per_day[date(2026, 7, 27)] == 1
    assert per_day[date(2026, 8, 2)] == 0
    assert sum(per_day.values()) == 5


def test_it_compares_units_and_outcomes_with_both_periods(coordinator, visits):
    figures = week_summary_build(day=date(2026, 7, 27))
    units, types, outcomes, _ = figures["sections"]
    assert [(r.label, r.value, r.vs_previous.text) for r in units.rows] == [
        ("CITS3200", "3", "▲ 1 (+50 %)"),
        ("ECON1101", "1", "▲ 1 (none before)"),
        ("PHYS1001", "1", "▲ 1 (none before)"),
    ]
    assert units.rows[0].vs_last_term.text == "▼ 1 (−25 %)"
    assert [(r.label, r.value) for r in types.rows] == [("Essay", "4"), ("Grammar", "1")]
    by_outcome = {r.label: r.value for r in outcomes.rows}
    assert by_outcome["Finished"] == "4"
    assert by_outcome["Left before being seen"] == "1"


def test_it_names_the_comparison_weeks(client, coordinator, visits):
    client.force_login(coordinator)
    response = client.get(URL, {"day": WEEK})
    periods = response.context["periods"]
    assert (periods["previous"].start, periods["previous"].end) == (
        date(2026, 7, 20),
        date(2026, 7, 26),
    )
    assert periods["last_term"].label == "Semester 1 2026, week 1"
    assert periods["last_term"].start == date(2026, 2, 23)
    assert "Semester 1 2026, week 1, 23 Feb 2026" in response.text


def test_it_says_when_there_is_no_earlier_term(client, coordinator, terms, visits):
    terms[0].delete()
    client.force_login(coordinator)
    response = client.get(URL, {"day": WEEK})
    assert "no earlier term" in response.text
    assert cells(response, "Visits") == ["5", "▲ 3 more (+150 %)", "—"]


def test_it_links_the_previous_and_next_weeks(client, coordinator, terms):
    client.force_login(coordinator)
    response = client.get(URL, {"day": WEEK})
    assert "?day=2026-07-20" in response.text
    assert "?day=2026-08-03" in response.text


def test_it_says_plainly_when_a_week_is_empty(client, coordinator, terms):
    client.force_login(coordinator)
    response = client.get(URL, {"day": "2026-03-11"})
    assert response.status_code == 200
    assert "No visits this week." in response.text
    assert "Semester 1 2026, week 3" in response.text
    assert "no earlier term" in response.text


def test_it_defaults_to_the_current_week(client, coordinator):
    client.force_login(coordinator)
    response = client.get(URL)
    assert response.status_code == 200
    assert response.context["monday"].weekday() == 0
    assert response.context["error"] == ""


@pytest.mark.parametrize(
    "day",
    [
        "nope",
        "2026-02-30",
        "2026-13-01",
        "9999-12-31",
        "0001-01-01",
        "1999-12-31",
        "2026-08-03T25:00",
        "-1",
        "x" * 5000,
        "2026-08-03\x00",
    ],
)
def test_it_answers_bad_days_with_a_message_and_this_week(client, coordinator, day):
    client.force_login(coordinator)
    response = client.get(URL, {"day": day})
    assert response.status_code == 200
    assert response.context["error"]
    assert "showing this week" in response.text


def test_it_filters_by_team(client, coordinator, visits):
    client.force_login(coordinator)
    response = client.get(URL, {"day": WEEK, "team": "librarian"})
    assert response.status_code == 200
    assert "Librarian only" in response.text
    assert "No visits this week." in response.text
    response = client.get(URL, {"day": WEEK, "team": "nobody"})
    assert "No such team" in response.text
    assert cells(response, "Visits")[0] == "5"


def test_it_is_never_cached(client, manager, terms):
    client.force_login(manager)
    response = client.get(URL, {"day": WEEK})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_it_forbids_student_leaders(client, leader):
    client.force_login(leader)
    assert client.get(URL).status_code == 403


def test_it_sends_anonymous_users_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


def test_it_answers_only_get(client, coordinator):
    client.force_login(coordinator)
    assert client.post(URL).status_code == 405


def test_it_links_the_print_stylesheet_without_inline_styles_or_scripts(client, coordinator):
    client.force_login(coordinator)
    response = client.get(URL)
    assert 'href="/static/css/print.css" media="print"' in response.text
    assert "style=" not in response.text
    assert "<script>" not in response.text


def _queries_for(client, n: int) -> int:
    team = Team.objects.get(slug="studysmarter")
    for i in range(n):
        monday = perth(2026, 7, 27, 10, 0)
        served(monday + timedelta(days=i % 7, minutes=i), wait=i % 30, team=team)
        served(monday - timedelta(days=7 - i % 7), wait=5, unit_code=f"UNIT{i:04d}")
    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL, {"day": WEEK}).status_code == 200
    Visit.objects.all().delete()
    return len(queries)


def test_it_takes_the_same_queries_for_5_and_50_visits(client, coordinator, terms):
    client.force_login(coordinator)
    assert _queries_for(client, 5) == _queries_for(client, 50)


def test_it_describes_changes_in_words():
    assert describe_change(72, 60, more="more", fewer="fewer").text == "▲ 12 more (+20 %)"
    assert describe_change(54, 60, more="more", fewer="fewer").text == "▼ 6 fewer (−10 %)"
    assert describe_change(5, 5).text == "= no change"
    assert describe_change(1084, 1085, more="more", fewer="fewer").text == "▼ 1 fewer (under 1 %)"
    assert describe_change(None, 5).text == "—"
    assert describe_change(5, None).text == "—"


def test_it_draws_the_week_as_small_charts_with_their_numbers(client, coordinator, visits):
    client.force_login(coordinator)
    html = client.get(URL, {"day": WEEK}).text

    for title in ("Visits per day, by team", "Arrivals by hour", "Waits before a session"):
        chart = re.search(rf"<h2 [^>]*>{title}</h2>(.*?)</section>", html, re.S)
        assert chart, f"no chart {title!r}"
        assert '<svg class="bars"' in chart.group(1)
    # Each drawing's numbers, as a table a screen reader can read.
    assert '<th scope="row">Tuesday 28 Jul</th><td>3</td><td>3</td>' in html
    assert '<th scope="row">10:00–11:00</th><td>3</td>' in html
    assert '<th scope="row">20–25 min</th><td>1</td>' in html
    units = re.search(r"<h2 [^>]*>Top 5 units</h2>(.*?)</section>", html, re.S).group(1)
    assert ">CITS3200</text>" in units
