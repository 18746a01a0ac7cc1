"""The desk when its session runs out, when the server cannot be reached, and small
keyboard and wording matters, in a real browser.

The idle time is shortened through the settings (the live server runs in this
process), so a "30-minute" logout takes a second or two.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from accounts.tests.helpers import PASSWORD
from queueing.models import Team, Visit
from queueing.tests.factories import VisitFactory
from queueing.tests.test_accessibility import AXE_CONTEXT, Audit

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

pytest_plugins = ["queueing.tests.browser"]

POLL = re.compile(re.escape(reverse("queueing:poll")))
# The desk warns this long before the idle logout (resq.js).
WARNING_S = 120


def screenshot(page: Page, path) -> None:
    page.screenshot(path=path)
    print(f"Screenshot: {path}")


def idle_warning(page: Page):
    return page.get_by_role("alert").filter(has_text="Still there?")


def unreachable_banner(page: Page):
    return page.get_by_role("alert").filter(has_text="Cannot reach the server")


def logged_out(page: Page):
    return page.get_by_role("heading", name="Logged out")


def test_it_warns_before_the_idle_logout_and_stays_logged_in(desk_page, leader, settings, tmp_path):
    # The warning is due a few seconds after logging in.
    settings.RESQ_SESSION_IDLE_TIMEOUT = WARNING_S + 5
    page = desk_page(leader)
    page.set_viewport_size({"width": 1024, "height": 768})

    expect(idle_warning(page)).to_be_visible(timeout=10_000)
    expect(idle_warning(page)).to_contain_text(re.compile(r"logged out at \d\d:\d\d"))
    screenshot(page, tmp_path / "desk-idle-warning-1024.png")
    stay = page.get_by_role("button", name="Stay logged in")
    # Reachable from the keyboard, as the first thing on the page after the header.
    page.get_by_label("Student Name").focus()
    page.keyboard.press("Shift+Tab")
    expect(stay).to_be_focused()

    with page.expect_response(reverse("accounts:stay")) as stayed:
        page.keyboard.press("Enter")
    assert stayed.value.status == 204
    expect(idle_warning(page)).to_have_count(0)
    expect(page.get_by_role("button", name="Stay logged in")).to_be_hidden()
    expect(page.locator("#board-announcer")).to_have_text("You are still logged in.")


def test_it_says_on_the_board_when_it_logged_out_and_keeps_what_was_typed(
    desk_page, leader, settings, tmp_path
):
    VisitFactory(student_name="Cy Tran")
    page = desk_page(leader)
    page.set_viewport_size({"width": 1024, "height": 768})
    page.get_by_label("Student Name").fill("Ada Lovelace")
    page.get_by_label("Unit Code").fill("cits1001")
    page.get_by_label("Team", exact=True).select_option(label="Librarian")

    settings.RESQ_SESSION_IDLE_TIMEOUT = 1
    expect(logged_out(page)).to_be_visible(timeout=6_000)
    expect(page.get_by_role("alert")).to_have_text(
        "You were logged out after 1 minute without activity."
    )
    # No student is left on the screen of a desk nobody is at.
    expect(page.get_by_text("Cy Tran")).to_have_count(0)
    expect(page.get_by_text("Ada Lovelace")).to_have_count(0)
    expect(page.get_by_text("kept in this browser tab")).to_be_visible()
    screenshot(page, tmp_path / "desk-logged-out-1024.png")

    settings.RESQ_SESSION_IDLE_TIMEOUT = 30 * 60
    page.get_by_role("link", name="Log in again").click()
    page.get_by_label("Username").fill(leader.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", name="ADD TO QUEUE")).to_be_visible()
    expect(page.get_by_text("Restored what you were typing")).to_be_visible()
    expect(page.get_by_label("Student Name")).to_have_value("Ada Lovelace")
    expect(page.get_by_label("Unit Code")).to_have_value("cits1001")
    expect(page.get_by_label("Team", exact=True)).to_have_value(
        str(Team.objects.get(slug="librarian").pk)
    )
    screenshot(page, tmp_path / "desk-restored-1024.png")

    page.get_by_label("Student Number").fill("21234567")
    page.get_by_label("Enquiry Type").select_option(label="Essay")
    page.get_by_role("button", name="Add to queue").click()
    expect(page.get_by_role("region", name="Librarian Queue")).to_contain_text("Ada Lovelace")
    expect(page.get_by_text("Restored what you were typing")).to_have_count(0)

    # Added: nothing comes back any more.
    page.reload()
    expect(page.get_by_label("Student Name")).to_have_value("")
    expect(page.get_by_text("Restored what you were typing")).to_have_count(0)


def test_it_shows_the_server_is_unreachable_at_the_top_and_marks_the_timers(
    desk_page, leader, tmp_path
):
    for n in range(30):
        VisitFactory(student_name=f"Student {chr(65 + n % 26)}{'a' * (n // 26 + 1)}")
    page = desk_page(leader)
    page.set_viewport_size({"width": 1024, "height": 768})
    with page.expect_response(POLL):
        pass
    timer = page.locator(".timer").last

    page.route(POLL, lambda route: route.abort())
    expect(unreachable_banner(page)).to_be_visible(timeout=5_000)
    expect(timer).to_have_class(re.compile(r"\bstale\b"))
    # Where the leader is looking: at the bottom of a long queue it is still in view.
    timer.scroll_into_view_if_needed()
    box = unreachable_banner(page).bounding_box()
    assert box is not None and box["height"] > 20 and 0 <= box["y"] < 50, box
    screenshot(page, tmp_path / "desk-unreachable-1024.png")

    page.unroute(POLL)
    expect(timer).not_to_have_class(re.compile(r"\bstale\b"), timeout=5_000)
    expect(unreachable_banner(page)).to_have_count(0)


def test_it_adds_with_enter_on_the_enquiry_type_list(desk_page, leader):
    page = desk_page(leader)
    page.get_by_label("Student Name").fill("Bo Chen")
    page.get_by_label("Student Number").fill("21234567")
    page.get_by_label("Team", exact=True).select_option(label="STUDYSmarter")
    page.get_by_label("Enquiry Type").select_option(label="Essay")

    page.get_by_label("Enquiry Type").press("Enter")

    expect(page.get_by_role("region", name="STUDYSmarter Queue")).to_contain_text("Bo Chen")
    assert Visit.objects.filter(student_name="Bo Chen").exists()


def test_it_tells_the_last_sync_in_24_hour_time(desk_page, leader):
    page = desk_page(leader)

    expect(page.locator("#sync-status")).to_have_text(
        re.compile(r"^Live · last synced \d\d:\d\d:\d\d$")
    )


def test_it_drops_the_duplicate_warning_once_the_student_is_started(desk_page, leader):
    Team.objects.filter(slug="studysmarter").update(available_staff=1)
    ada = VisitFactory(student_name="Ada Lovelace")
    page = desk_page(leader)
    page.get_by_label("Student Name").fill("Ada Lovelace")
    page.get_by_label("Student Number").fill(ada.student_number)
    page.get_by_label("Team", exact=True).select_option(label="STUDYSmarter")
    page.get_by_label("Enquiry Type").select_option(label="Essay")
    page.get_by_role("button", name="Add to queue").click()
    warning = page.get_by_text("is already waiting")
    expect(warning).to_be_visible()

    page.get_by_role("button", name="Start session for Ada Lovelace").click()

    expect(page.get_by_role("region", name="Current Sessions")).to_contain_text("Ada Lovelace")
    expect(warning).to_have_count(0)
    expect(page.get_by_role("button", name="Add anyway")).to_have_count(0)
    # What was typed stays, for a second enquiry.
    expect(page.get_by_label("Student Number")).to_have_value(ada.student_number)


def test_it_finds_no_accessibility_problems_in_the_warnings(open_page, leader, settings):
    VisitFactory(student_name="Cy Tran")
    settings.RESQ_SESSION_IDLE_TIMEOUT = WARNING_S + 3
    audit = Audit()
    page = open_page(reverse("queueing:desk"), user=leader, **AXE_CONTEXT)
    page.set_viewport_size({"width": 1024, "height": 768})
    expect(idle_warning(page)).to_be_visible(timeout=10_000)
    audit(page, "desk, idle warning")

    page.route(POLL, lambda route: route.abort())
    expect(unreachable_banner(page)).to_be_visible()
    audit(page, "desk, server unreachable")
    page.unroute(POLL)
    expect(unreachable_banner(page)).to_have_count(0)

    settings.RESQ_SESSION_IDLE_TIMEOUT = 1
    expect(logged_out(page)).to_be_visible(timeout=6_000)
    audit(page, "desk, logged out")
    audit.assert_clean()
