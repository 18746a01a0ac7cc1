"""Times in the future: admin refuses them (issue 13, item 9); the old system's import
leaves such a row out (queueing/tests/test_import.py).

A manager who typed 13:20 at 13:06 as a session's end got a desk that listed the
student as "Finished at 13:20", with an Undo lasting until then.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from queueing.models import Visit
from queueing.tests.factories import VisitFactory, db_state
from queueing.tests.test_admin import change_url, edit_form, with_times

pytestmark = pytest.mark.django_db


def finished_visit(leader) -> Visit:
    arrived = timezone.now() - timedelta(minutes=30)
    return VisitFactory(
        arrived_at=arrived,
        started_at=arrived + timedelta(minutes=5),
        started_by=leader,
        ended_at=arrived + timedelta(minutes=20),
        ended_by=leader,
        status=Visit.Status.FINISHED,
        outcome=Visit.Outcome.FINISHED,
    )


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("arrived_at", "A student cannot arrive in the future"),
        ("started_at", "A session cannot start in the future"),
        ("ended_at", "A visit cannot end in the future"),
    ],
)
def test_it_refuses_a_time_in_the_future_on_its_field(manager_client, leader, field, message):
    visit = finished_visit(leader)
    data = with_times(
        edit_form(manager_client, visit), **{field: timezone.now() + timedelta(minutes=14)}
    )
    before = db_state()

    response = manager_client.post(change_url(visit), data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field]), errors
    assert db_state() == before


def test_it_allows_a_minute_of_clock_difference(manager_client, leader):
    visit = finished_visit(leader)
    # "Now" in admin takes the manager's computer's clock, which may run a little fast.
    ahead = timezone.now() + timedelta(seconds=40)
    data = with_times(edit_form(manager_client, visit), ended_at=ahead)

    response = manager_client.post(change_url(visit), data)

    assert response.status_code == 302
    visit.refresh_from_db()
    assert visit.ended_at == ahead.replace(microsecond=0)


ARRIVED = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
NOW = ARRIVED + timedelta(hours=1)
IT_IS_NOW = "it is now Mon 30 Nov, 11:00."  # NOW on the service's clock (Perth)


@pytest.mark.parametrize(
    ("times", "problems"),
    [
        ({"arrived_at": ARRIVED, "started_at": ARRIVED + timedelta(minutes=5)}, {}),
        (
            {"arrived_at": ARRIVED, "started_at": ARRIVED - timedelta(minutes=5)},
            {"started_at": ["A session cannot start before the student arrived."]},
        ),
        (
            {
                "arrived_at": ARRIVED,
                "started_at": ARRIVED + timedelta(minutes=20),
                "ended_at": ARRIVED + timedelta(minutes=10),
            },
            {"ended_at": ["A session cannot end before it started."]},
        ),
        (
            {"arrived_at": ARRIVED, "ended_at": ARRIVED - timedelta(minutes=5)},
            {"ended_at": ["A visit cannot end before the student arrived."]},
        ),
        (
            {
                "arrived_at": NOW + timedelta(hours=2),
                "started_at": NOW + timedelta(hours=1),
            },
            {
                "arrived_at": [f"A student cannot arrive in the future: {IT_IS_NOW}"],
                "started_at": [
                    f"A session cannot start in the future: {IT_IS_NOW}",
                    "A session cannot start before the student arrived.",
                ],
            },
        ),
    ],
)
def test_it_judges_a_visits_times_by_one_rule(times, problems):
    assert Visit.time_problems(times, now=NOW) == problems
