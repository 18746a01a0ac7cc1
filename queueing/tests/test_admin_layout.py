"""Admin in a real browser, at the width of the commonest laptop screen."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from queueing.models import Team, Visit
from queueing.tests.factories import VisitFactory

pytestmark = [
    pytest.mark.browser,
    # The live server needs committed data; serialized rollback puts the seeded teams,
    # enquiry types and roles back after each test flushes the tables.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

pytest_plugins = ["queueing.tests.browser"]

LAPTOP = {"width": 1366, "height": 768}

#: How far the visit table reaches, and how far the box that shows it does.
REACH = """table => {
    const box = table.closest(".results");
    return {
        table: Math.round(table.getBoundingClientRect().right),
        box: Math.round(box.getBoundingClientRect().left + box.clientWidth),
        screen: document.documentElement.clientWidth,
    };
}"""


def test_it_shows_every_column_of_the_visit_list_on_a_laptop(open_page, manager):
    arrived = timezone.now() - timedelta(hours=1)
    VisitFactory(
        student_name="Maximiliana Featherstonehaugh-Worthington",
        team=Team.objects.get(slug="librarian"),
        arrived_at=arrived,
        started_at=arrived + timedelta(minutes=12),
        ended_at=arrived + timedelta(minutes=40),
        status=Visit.Status.FINISHED,
        outcome=Visit.Outcome.FINISHED,
    )
    page = open_page(
        reverse("admin:queueing_visit_changelist"), user=manager, two_factor=True, viewport=LAPTOP
    )
    table = page.locator("#result_list")
    expect(table.get_by_role("columnheader", name="Session (min)")).to_be_visible()
    # The last column is on screen without scrolling the list sideways: a scroll bar
    # at the foot of a hundred rows is one nobody finds.
    reach = table.evaluate(REACH)
    assert reach["table"] <= min(reach["box"], reach["screen"]), reach

    # The navigation closed to make room, and opens again when asked, for good.
    teams = page.get_by_role("link", name="Teams", exact=True)
    expect(teams).to_be_hidden()
    page.get_by_role("button", name="Toggle navigation").click()
    expect(teams).to_be_visible()
    page.reload()
    expect(teams).to_be_visible()


def test_it_keeps_the_import_preview_of_a_long_old_name_within_a_tablet_screen(
    open_page, manager, tmp_path
):
    # The old system accepted anything: 200 letters without a space, kept as written.
    export = tmp_path / "old.csv"
    export.write_text(
        "id,studentName,studentNumber,unitCode,enquiry,queue,status,"
        "enterQueueTime,changeSessionTime,exitSessionTime\n"
        f"101,{'x' * 200},21234567,CITS3200,Essay,STUDYSmarter,Completed,"
        "2021-10-18 02:05:07,2021-10-18 02:15:00,2021-10-18 02:40:30\n",
        encoding="utf-8",
    )
    page = open_page(
        reverse("admin:queueing_visit_import"),
        user=manager,
        two_factor=True,
        viewport={"width": 1024, "height": 768},
    )
    page.set_input_files("input[type=file]", export)
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("heading", name="Kept as written")).to_be_visible()

    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width
