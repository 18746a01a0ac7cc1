"""The columns the reports group by, kept by the database from a visit's times."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.test import override_settings

from queueing.checks import check_local_columns_zone
from queueing.models import Visit
from queueing.tests.factories import VisitFactory

pytestmark = pytest.mark.django_db


def columns(visit: Visit) -> tuple:
    return (
        Visit.objects.filter(pk=visit.pk)
        .values_list("local_day", "hour_of_week", "wait_seconds", "session_seconds")
        .get()
    )


def test_a_visit_at_23_30_utc_is_on_the_next_perth_day_and_hour():
    # Sunday 1 November 23:30 UTC is Monday 2 November 07:30 in Perth: hour 7 of the week.
    visit = VisitFactory(arrived_at=datetime(2026, 11, 1, 23, 30, tzinfo=UTC))
    assert columns(visit) == (date(2026, 11, 2), 7, None, None)


def test_sunday_evening_is_the_last_hour_of_the_week():
    # Sunday 8 November 23:59 in Perth is 15:59 UTC.
    visit = VisitFactory(arrived_at=datetime(2026, 11, 8, 15, 59, tzinfo=UTC))
    assert columns(visit)[:2] == (date(2026, 11, 8), 167)


def test_the_wait_and_session_follow_the_desk_to_the_nearest_second(leader):
    arrived = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    visit = VisitFactory(arrived_at=arrived)
    Visit.objects.filter(pk=visit.pk).update(
        status=Visit.Status.IN_SESSION, started_at=arrived + timedelta(minutes=12, seconds=5.6)
    )
    assert columns(visit)[2:] == (726, None)

    Visit.objects.filter(pk=visit.pk).update(
        status=Visit.Status.FINISHED,
        outcome=Visit.Outcome.FINISHED,
        ended_at=arrived + timedelta(minutes=42, seconds=5.4),
    )
    assert columns(visit)[2:] == (726, 1800)


def test_a_started_and_finished_visit_has_both(leader):
    visit = VisitFactory()
    visit.start_session(by=leader, add_staff=True)
    visit.refresh_from_db()
    visit.finish(by=leader)
    visit.refresh_from_db()
    expected_wait = round((visit.started_at - visit.arrived_at).total_seconds())
    expected_session = round((visit.ended_at - visit.started_at).total_seconds())
    assert columns(visit)[2:] == (expected_wait, expected_session)


def test_correcting_the_arrival_moves_the_day_and_hour():
    visit = VisitFactory(arrived_at=datetime(2026, 11, 2, 2, 0, tzinfo=UTC))  # Mon 10:00
    assert columns(visit)[:2] == (date(2026, 11, 2), 10)
    Visit.objects.filter(pk=visit.pk).update(arrived_at=datetime(2026, 11, 3, 23, 0, tzinfo=UTC))
    assert columns(visit)[:2] == (date(2026, 11, 4), 48 + 7)  # Wed 07:00


def test_the_check_passes_in_the_zone_the_columns_were_built_in():
    assert check_local_columns_zone(databases=["default"]) == []


@override_settings(TIME_ZONE="Europe/London")
def test_the_check_says_when_time_zone_no_longer_matches_the_columns():
    (error,) = check_local_columns_zone(databases=["default"])
    assert error.id == "queueing.E001"
    assert "Europe/London" in error.msg
    assert "migrate queueing 0005" in error.hint
