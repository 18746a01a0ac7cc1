"""The desk at the sizes it is used at: reception PCs, tablets, half a wide screen,
and a browser zoomed to 200 %.

Every width shows the same busy board (long names, a long unit and enquiry type,
several teams, sessions running, students waiting, visits just ended, a team with
every staff member busy) and nothing may stick out past the right edge.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from queueing.models import EnquiryType, Team, Visit
from queueing.tests.factories import TeamFactory, VisitFactory
from queueing.tests.test_accessibility import fill_the_desk
from queueing.tests.test_browser import counter, queue, sessions

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

pytest_plugins = ["queueing.tests.browser"]

LONG_NAME = "Nguyễn Thị Minh Khai-Worthington-Smythe the Third of Very Long Names"

# (name, CSS viewport, device pixel ratio). Chromium at 200 % zoom lays a page out in
# half as many CSS pixels, each drawn twice as large: a 1280 px window zoomed to 200 %
# is a 640 CSS px viewport at a device pixel ratio of 2, which is what is emulated.
SCREENS = [
    ("tablet portrait 768", {"width": 768, "height": 1024}, 1),
    ("800", {"width": 800, "height": 600}, 1),
    ("tablet landscape 1024", {"width": 1024, "height": 768}, 1),
    ("1100", {"width": 1100, "height": 800}, 1),
    ("1280", {"width": 1280, "height": 800}, 1),
    ("1366", {"width": 1366, "height": 768}, 1),
    ("1920", {"width": 1920, "height": 1080}, 1),
    ("1280 at 200% zoom", {"width": 640, "height": 400}, 2),
]

# What sticks out past the right edge, named for the failure message.
WIDER_THAN_THE_SCREEN = """() => [...document.querySelectorAll("body *")]
    .filter(el => el.getBoundingClientRect().right > window.innerWidth + 0.5)
    .filter(el => !el.closest(".visually-hidden, .skip-link"))
    .slice(0, 8)
    .map(el => el.tagName + (el.id ? "#" + el.id : "") + "." + el.className
         + " " + Math.round(el.getBoundingClientRect().right) + "px")"""

# Every button on the board whose box is not wholly across the screen.
ACTIONS_OFF_THE_SCREEN = """() => {
    const width = document.scrollingElement.clientWidth;
    return [...document.querySelectorAll("#board button, #board a.button, #messages button")]
        .map(el => [el.getAttribute("aria-label") || el.textContent.trim(),
                    el.getBoundingClientRect()])
        .filter(([, box]) => box.left < 0 || box.right > width + 0.5)
        .map(([name, box]) => `${name} ${Math.round(box.left)}–${Math.round(box.right)} px`);
}"""


def fill_a_busy_desk(by) -> None:
    """fill_the_desk, and more: long names, a long unit code and enquiry type, four
    teams (one with every staff member busy), and a visit just removed."""
    fill_the_desk(by=by)
    now = timezone.now()
    long_enquiry = EnquiryType.objects.create(
        name="Referencing, citation styles and academic integrity"
    )
    maths = TeamFactory(
        name="Maths and Statistics Drop-in", slug="maths", available_label="", available_staff=1
    )
    TeamFactory(name="Writing Centre", slug="writing", available_staff=3)
    studysmarter = Team.objects.get(slug="studysmarter")
    for team in (studysmarter, maths):
        VisitFactory(
            team=team,
            student_name=LONG_NAME,
            unit_code="ENVT5501ABCD",
            enquiry_type=long_enquiry,
            arrived_at=now - timedelta(minutes=14),
        )
    in_session = VisitFactory(
        team=maths,
        student_name=f"{LONG_NAME} Junior",
        unit_code="ENVT5501ABCD",
        enquiry_type=long_enquiry,
        arrived_at=now - timedelta(minutes=30),
    )
    in_session.start_session(by=by)
    VisitFactory(student_name=f"{LONG_NAME} Senior").remove(by=by, outcome=Visit.Outcome.NO_SHOW)


@pytest.mark.parametrize(
    ("viewport", "scale"),
    [pytest.param(viewport, scale, id=name) for name, viewport, scale in SCREENS],
)
def test_it_fits_the_busy_desk_to_every_screen(open_page, leader, viewport, scale):
    fill_a_busy_desk(by=leader)
    page: Page = open_page(
        reverse("queueing:desk"), user=leader, viewport=viewport, device_scale_factor=scale
    )
    expect(queue(page, "Maths and Statistics Drop-in Queue")).to_contain_text("Worthington")
    expect(counter(page, "Maths and Statistics Drop-in Available")).to_have_text("1")

    scroll_width, width = page.evaluate(
        "() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]"
    )
    assert scroll_width <= width, (
        f"the page scrolls sideways ({scroll_width} > {width} px): "
        f"{page.evaluate(WIDER_THAN_THE_SCREEN)}"
    )
    assert page.evaluate(ACTIONS_OFF_THE_SCREEN) == []
    for area in (
        page.get_by_role("heading", name="ADD TO QUEUE"),
        page.get_by_label("Student Name"),
        page.get_by_role("button", name="Add to queue"),
        sessions(page),
        queue(page, "STUDYSmarter Queue"),
        queue(page, "Librarian Queue"),
        page.get_by_role("button", name=f"Finish session for {LONG_NAME} Junior"),
        page.get_by_role("link", name=f"Remove {LONG_NAME}").first,
    ):
        area.scroll_into_view_if_needed()
        expect(area, f"{area} out of view").to_be_in_viewport()


@pytest.mark.parametrize("width", [1024, 1366, 1920])
def test_it_keeps_the_board_still_when_a_team_becomes_all_busy(open_page, leader, width):
    Team.objects.filter(slug__in=["studysmarter", "librarian"]).update(available_staff=1)
    VisitFactory(student_name="Ada Lovelace", team=Team.objects.get(slug="librarian"))
    page = open_page(
        reverse("queueing:desk"), user=leader, viewport={"width": width, "height": 800}
    )
    staffing = page.get_by_role("group", name="Staffing")
    # The message above the board moves it all down once, as any message does; the
    # jump is the staffing boxes growing a line and pushing the tables down again.
    before = staffing.bounding_box()["height"]

    page.get_by_role("button", name="Start session for Ada Lovelace").click()
    expect(staffing).to_contain_text("all busy")
    assert staffing.bounding_box()["height"] == before
