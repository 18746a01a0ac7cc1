"""End to end in a real browser, beyond the desk flows test_browser.py drives.

test_browser.py runs a drop-in with the mouse (add, start, finish, undo, remove with a
reason, staffing, the staffing limit and its offer, closing the queue) and two screens
racing to start the same student. Here: the same desk with the keyboard alone, what a
change from another screen does to the one a person is typing on, the coordinator's
reports and export. The desk's layout at the sizes and zoom it is used at is in
test_layout.py.
"""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from queueing.models import Team, Visit
from queueing.tests.factories import VisitFactory
from queueing.tests.test_browser import (
    SYNC_WITHIN_S,
    add_with_keyboard,
    counter,
    expect_empty_add_form,
    queue,
    row,
    sessions,
    wait_for_sync,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

pytest_plugins = ["queueing.tests.browser"]

# The style of whatever has focus: an outline or a box-shadow is the visible ring.
FOCUS_STYLE = """() => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    return {
        element: el.tagName + (el.id ? "#" + el.id : "") + " "
            + (el.textContent || "").trim().slice(0, 30),
        ring: (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0)
            || style.boxShadow !== "none",
        body: el === document.body,
    };
}"""


def focused(page: Page) -> dict:
    return page.evaluate(FOCUS_STYLE)


def expect_visible_focus(page: Page) -> None:
    where = focused(page)
    assert not where["body"], "focus fell to the page's body"
    assert where["ring"], f"no visible focus indicator on {where['element']}"


def press_until_focused(page: Page, target: Locator, key: str = "Tab", most: int = 60) -> int:
    """Press Tab (or Shift+Tab) until `target` has focus, checking that every stop on
    the way shows where focus is. Returns how many presses it took."""
    for presses in range(1, most + 1):
        page.keyboard.press(key)
        expect_visible_focus(page)
        if target.evaluate("el => el === document.activeElement"):
            return presses
    raise AssertionError(f"{key} never reached {target}; focus is on {focused(page)['element']}")


def expect_focus_kept_on_the_board(page: Page) -> None:
    """After an action's swap the pressed button may have gone with its row: focus must
    land somewhere a keyboard user can carry on from, not the top of the page."""
    page.wait_for_function("() => document.activeElement !== document.body")
    in_board = page.evaluate("() => Boolean(document.activeElement.closest('#board, #add-form'))")
    assert in_board, f"focus went to {focused(page)['element']}"
    expect_visible_focus(page)


def test_it_runs_the_desk_with_the_keyboard_alone(open_page, leader):
    Team.objects.filter(slug="studysmarter").update(available_staff=1)
    VisitFactory(
        student_name="Bo Chen",
        team=Team.objects.get(slug="librarian"),
        arrived_at=timezone.now() - timedelta(minutes=4),
    )
    page = open_page(reverse("queueing:desk"), user=leader)
    studysmarter = queue(page, "STUDYSmarter Queue")

    # The add form has focus on arrival; focus comes back to it for the next student.
    add_with_keyboard(page, "Zoë Ng", "21234567", "cits3200", "STUDY", "Essay")
    expect(row(studysmarter, "Zoë Ng")).to_be_visible()
    expect_empty_add_form(page)
    expect_visible_focus(page)

    start = page.get_by_role("button", name="Start session for Zoë Ng")
    press_until_focused(page, start)
    page.keyboard.press("Enter")
    expect(row(sessions(page), "Zoë Ng")).to_be_visible()
    expect_focus_kept_on_the_board(page)

    finish = page.get_by_role("button", name="Finish session for Zoë Ng")
    press_until_focused(page, finish)
    page.keyboard.press("Enter")
    expect(row(sessions(page), "Zoë Ng")).to_have_count(0)
    expect_focus_kept_on_the_board(page)
    assert Visit.objects.get(student_name="Zoë Ng").status == Visit.Status.FINISHED

    # Back up to the form for another student.
    press_until_focused(page, page.get_by_label("Student Name"), key="Shift+Tab")
    add_with_keyboard(page, "Ana O'Brien", "01234567", "", "Lib", "Finding")
    expect(row(queue(page, "Librarian Queue"), "Ana O'Brien")).to_be_visible()
    expect_empty_add_form(page)

    # The remove dialog opens on its first button and Escape closes it, back where it
    # was opened, with nothing changed.
    remove = page.get_by_role("link", name="Remove Bo Chen")
    press_until_focused(page, remove)
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Remove Bo Chen from the Librarian Queue?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Remove from queue")).to_be_focused()
    expect_visible_focus(page)
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(remove).to_be_focused()
    expect_visible_focus(page)
    assert Visit.objects.get(student_name="Bo Chen").status == Visit.Status.WAITING


def test_it_announces_another_screens_changes_without_taking_focus(desk_page, leader, other_leader):
    Team.objects.filter(slug="librarian").update(available_staff=1)
    lee = desk_page(leader)
    sam = desk_page(other_leader)

    # Lee is half way through typing a student in when Sam counts a librarian out.
    name = lee.get_by_label("Student Name")
    name.press_sequentially("Kai Moss")
    clicked = time.monotonic()
    sam.get_by_role("button", name="One fewer: Librarians Available").click()
    expect(counter(sam, "Librarians Available")).to_have_text("0")
    delay = wait_for_sync(
        counter(lee, "Librarians Available").filter(has_text=re.compile("^0$")), clicked, "Staffing"
    )
    assert delay < SYNC_WITHIN_S

    # Heard, politely, not seen as a jump: Lee's cursor and typing are where they were.
    announcer = lee.locator("[aria-live='polite']").filter(has_text="Queue updated")
    expect(announcer).to_have_text(re.compile(r"^Queue updated: 0 waiting · 0 in session$"))
    expect(name).to_be_focused()
    expect(name).to_have_value("Kai Moss")
    lee.keyboard.type(" Jr")
    expect(name).to_have_value("Kai Moss Jr")

    # And the other way round: Lee adds, Sam's board shows it.
    lee.get_by_label("Student Number").fill("21000042")
    lee.get_by_label("Team", exact=True).select_option(label="Librarian")
    lee.get_by_label("Enquiry Type").select_option(label="Referencing")
    clicked = time.monotonic()
    lee.get_by_role("button", name="Add to queue").click()
    delay = wait_for_sync(row(queue(sam, "Librarian Queue"), "Kai Moss Jr"), clicked, "An add")
    assert delay < SYNC_WITHIN_S
    expect(sam.locator("#board-announcer")).to_have_text(re.compile("1 waiting"))


def test_it_filters_the_dashboard_and_downloads_an_export(open_page, coordinator, leader):
    # Both arrived today, in the service's time zone, even just after its midnight: the
    # export below asks for the last day.
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    VisitFactory(
        student_name="Ada Lovelace",
        arrived_at=max(timezone.now() - timedelta(minutes=30), midnight),
    )
    VisitFactory(
        student_name="Dee Park",
        team=Team.objects.get(slug="librarian"),
        arrived_at=max(timezone.now() - timedelta(minutes=20), midnight),
    )
    page = open_page(reverse("reporting:dashboard"), user=coordinator)
    heading = page.get_by_role("heading", level=2, name=re.compile(r"· all teams$"))
    expect(heading).to_be_visible()
    visits = page.get_by_role("term").filter(has_text=re.compile("^Visits$"))
    expect(visits.locator("xpath=following-sibling::dd[1]")).to_have_text("2")

    # A filter changes the report in place (htmx), and the address, so it can be shared.
    page.get_by_role("combobox", name="Team").select_option(label="Librarian")
    expect(page.get_by_role("heading", level=2, name=re.compile(r"· Librarian$"))).to_be_visible()
    expect(visits.locator("xpath=following-sibling::dd[1]")).to_have_text("1")
    expect(page).to_have_url(re.compile(r"team=librarian"))
    expect(page.get_by_role("heading", name="Data Analytics", level=1)).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Export Data").click()
    page.get_by_role("radio", name=re.compile("^Last Day")).check()
    page.get_by_role("combobox", name="Team").select_option(label="STUDYSmarter")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    download = download_info.value
    today = timezone.localdate().isoformat()
    assert download.suggested_filename == f"resq-visits-studysmarter-{today}-to-{today}.csv"
    text = download.path().read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["Student Name"] for r in rows] == ["Ada Lovelace"]
    assert rows[0]["Team"] == "STUDYSmarter"
