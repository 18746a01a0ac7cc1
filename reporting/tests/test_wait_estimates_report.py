"""Data Analytics' Wait estimates: the estimate shown as each student joined, checked
against the wait they had."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from queueing.models import Team, Visit, WaitEstimate
from queueing.tests.factories import VisitFactory, finished_visit

pytestmark = pytest.mark.django_db

WEEK = {"view": "week", "day": "2026-08-03"}
MONDAY = datetime(2026, 8, 3, 2, tzinfo=UTC)  # 10:00 in Perth


@pytest.fixture
def coordinator_client(client, coordinator):
    client.force_login(coordinator)
    return client


def estimated(visit: Visit, low: float, median: float, high: float, *, first=True, version=1):
    WaitEstimate.objects.filter(visit=visit).update(current=False)
    WaitEstimate.objects.create(
        visit=visit, made_at=visit.arrived_at, board_version=version, first=first, ahead=0,
        staff=1, in_session=1, low_minutes=low, median_minutes=median, high_minutes=high,
    )  # fmt: skip


@pytest.fixture
def waits():
    """Three students seen, each with the estimate shown as they joined: waited 12
    (shown 5-15, median 10), 6 (shown 0-4, median 2) and 25 (shown 20-40, median 30)."""
    for minutes, (low, median, high) in [(12, (5, 10, 15)), (6, (0, 2, 4)), (25, (20, 30, 40))]:
        visit = finished_visit(MONDAY + timedelta(minutes=minutes), waited=minutes, minutes=20)
        estimated(visit, low, median, high)
        # A later estimate (their place changed) is not the one checked.
        estimated(visit, 0, 50, 60, first=False, version=2)
    # Not seen, so no wait to check; and a team the filter may leave out.
    removed = VisitFactory(
        arrived_at=MONDAY, status=Visit.Status.REMOVED, ended_at=MONDAY + timedelta(minutes=3),
        outcome=Visit.Outcome.CANCELLED,
    )  # fmt: skip
    estimated(removed, 1, 2, 3)
    librarian = Team.objects.get(slug="librarian")
    estimated(finished_visit(MONDAY, waited=1, minutes=5, team=librarian), 30, 40, 50)


def test_it_says_how_far_off_the_estimates_were_and_how_often_the_range_held(
    coordinator_client, waits
):
    page = coordinator_client.get(reverse("reporting:dashboard"), {**WEEK, "team": "studysmarter"})

    # Off by 2, 4 and 5: median 4; two of three waits inside the range shown.
    assert (
        "3 waits estimated as the student joined: median absolute error 4.0 min; 67 % inside "
        "the range shown (meant to be about 80 %)."
    ) in page.text


def test_it_downloads_the_estimates_against_the_waits_by_band(coordinator_client, waits):
    response = coordinator_client.get(
        reverse("reporting:chart_csv", args=["wait-estimates"]), {**WEEK, "team": "studysmarter"}
    )

    assert list(csv.reader(io.StringIO(response.text))) == [
        [
            "Estimate shown (min)", "Waits", "Median estimate (min)", "Median actual wait (min)",
            "Median absolute error (min)", "Inside the range shown (%)",
        ],
        ["0–5", "1", "2.0", "6.0", "4.0", "0"],
        ["10–15", "1", "10.0", "12.0", "2.0", "100"],
        ["30–45", "1", "30.0", "25.0", "5.0", "100"],
    ]  # fmt: skip


def test_it_counts_every_team_unless_one_is_chosen(coordinator_client, waits):
    page = coordinator_client.get(reverse("reporting:dashboard"), WEEK)

    assert "4 waits estimated as the student joined" in page.text


def test_it_says_plainly_when_no_estimate_was_shown(coordinator_client, waits):
    page = coordinator_client.get(
        reverse("reporting:dashboard"), {"view": "week", "day": "2031-01-06"}
    )

    assert (
        "No wait estimates in this period: the desk stores one as each student joins." in page.text
    )
