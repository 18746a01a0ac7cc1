"""Times in the future: admin and the visit import refuse them (issue 13, item 9).

A manager who typed 13:20 at 13:06 as a session's end got a desk that listed the
student as "Finished at 13:20", with an Undo lasting until then.
"""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from queueing.models import Visit, VisitEvent
from queueing.tests.factories import VisitFactory, db_state
from queueing.tests.test_admin import change_url, edit_form, with_times
from queueing.tests.test_import import RESQ, export, problems, upload

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


def test_it_refuses_an_imported_correction_to_a_time_in_the_future(manager_client, manager, leader):
    manager.user_permissions.add(Permission.objects.get(codename="export_visits"))
    visit = finished_visit(leader)
    [row] = csv.DictReader(io.StringIO(export(manager_client, "visit").decode()))
    row["ended_at"] = timezone.localtime(timezone.now() + timedelta(minutes=14)).isoformat()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(row))
    writer.writeheader()
    writer.writerow(row)
    before = db_state()

    text = problems(upload(manager_client, "visit", out.getvalue().encode(), layout=RESQ))

    assert "A visit cannot end in the future" in text
    assert db_state() == before
    assert not VisitEvent.objects.filter(visit=visit).exists()
