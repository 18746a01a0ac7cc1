"""The students' side in a real browser: a whole arrival from a phone, the room's display
over a day of polls, and axe on each of the three pages."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from queueing import notices
from queueing.models import Board, CheckIn, Display, Team, Visit
from queueing.qr import qr_svg
from queueing.tests.factories import VisitFactory, finished_visit
from queueing.tests.test_accessibility import AXE_CONTEXT, Audit

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

pytest_plugins = ["queueing.tests.browser"]

PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}
TV = {"viewport": {"width": 1280, "height": 720}}
FULL_HD = {"viewport": {"width": 1920, "height": 1080}}


@pytest.fixture
def screen():
    return Display.objects.create(name="Entrance TV")


@pytest.fixture
def advisers():
    """STUDYSmarter with one adviser free, and yesterday's sessions for estimates."""
    team = Team.objects.get(slug="studysmarter")
    Team.objects.filter(pk=team.pk).update(available_staff=1)
    for hours in (1, 2, 3):
        finished_visit(timezone.now() - timedelta(days=1, hours=hours), waited=4, minutes=15)
    return team


def path_data(svg: str) -> str:
    return re.search(r' d="([^"]+)"', svg)[1]


def emails_to(inbox, address: str, *, count: int, seconds: float = 10) -> list:
    """The messages sent to `address`, once there are `count`. The scheduler's job sends
    whatever the background sender has not (on in-memory SQLite, the sender's own thread
    cannot reach the test's database)."""
    deadline = time.monotonic() + seconds
    while True:
        notices.send_due()
        found = [m for m in inbox.messages() if m["To"] == address]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_student_arrives_from_their_phone_and_is_called(
    open_page, desk_page, leader, screen, advisers, smtp_inbox, settings, desk_server
):
    settings.RESQ_SITE_URL = desk_server.url
    checkin_path = reverse("students:checkin", args=[screen.checkin_token])
    display = open_page(reverse("students:display", args=[screen.token]), **FULL_HD)
    expect(display.locator("#heartbeat")).to_have_text(re.compile(r"^Updated \d\d:\d\d:\d\d$"))
    # The QR code on the screen is the check-in form's address.
    svg = display.locator(".checkin-panel svg").evaluate("el => el.outerHTML")
    assert path_data(svg) == path_data(qr_svg(desk_server.url + checkin_path))
    room_code = display.locator(".room-code .code").inner_text()

    phone = open_page(checkin_path, **PHONE)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    phone.get_by_label("Room code").fill(room_code.lower())
    phone.get_by_label("Your name").fill("Ada Lovelace")
    phone.get_by_label("Student number").fill("21234567")
    phone.get_by_label("Who would you like to see?").select_option(label="STUDYSmarter")
    phone.get_by_label("What is it about?").select_option(label="Essay")
    phone.get_by_label("Email me when I'm next").check()
    phone.get_by_label("Email address").fill("ada@example.edu")
    phone.get_by_role("button", name="Check in").click()
    expect(phone.get_by_role("heading", name="You're checked in")).to_be_visible()

    desk = desk_page(leader)
    checked_in = desk.locator(".checkins")
    expect(checked_in).to_contain_text("Ada Lovelace")
    desk.get_by_role("button", name="Accept Ada Lovelace into the queue").click()
    expect(desk.locator("#messages")).to_contain_text(
        "Ada Lovelace added to the STUDYSmarter Queue as S-001"
    )
    expect(checked_in).to_have_count(0)

    # The phone follows by itself: the code, the place, an estimate.
    expect(phone.locator("#my-ticket")).to_have_text("S-001")
    expect(phone.locator(".place-line")).to_have_text("You're next.")
    expect(phone.locator(".place-estimate")).to_contain_text(re.compile(r"Your session starts"))
    expect(display.locator(".display-team").first).to_contain_text("S-001")
    [next_mail] = emails_to(smtp_inbox, "ada@example.edu", count=1)
    assert next_mail["Subject"] == "You're next: S-001 at STUDYSmarter"

    desk.get_by_role("button", name="Start session for Ada Lovelace").click()
    expect(display.locator(".called")).to_have_text(
        re.compile(r"S-001\s*→\s*please go to the\s+STUDYSmarter desk")
    )
    expect(phone.get_by_role("heading", level=1)).to_have_text(
        "Your session is starting: please come to the desk."
    )
    mails = emails_to(smtp_inbox, "ada@example.edu", count=2)
    assert [m["Subject"] for m in mails] == [
        "You're next: S-001 at STUDYSmarter",
        "Please come to the desk: S-001",
    ]
    assert f"{desk_server.url}/me/{CheckIn.objects.get().key}/" in mails[1].get_content()
    # Nothing about the student reached the room's screen.
    for private in ("Ada", "Lovelace", "21234567", "Essay"):
        assert private not in display.content()


def test_the_display_runs_a_day_of_polls_with_flat_memory(open_page, screen, settings):
    """Eight opening hours of polls every two seconds (14,400), in fast time: the board
    changes every hundred polls and the room code every second of it, and neither the
    page's memory, its elements nor its listeners grow.

    Each poll is answered by ResQ's own view, called by the test (Django's test client)
    and handed to the page by Playwright: through the live server, each request costs
    tens of milliseconds of socket overhead and the day would take a quarter of an hour.
    """
    if connection.vendor != "sqlite":
        pytest.skip("the page's memory does not depend on the database: run once, on SQLite")
    settings.RESQ_POLL_SECONDS = 0.001
    settings.RESQ_ROOM_CODE_SECONDS = 1
    display = open_page(reverse("students:display", args=[screen.token]), **TV)
    polls = {"count": 0, "changed": 0}
    server = Client()

    def answer(route) -> None:
        polls["count"] += 1
        if polls["count"] % 100 == 0:  # someone joins; after ten, the first leaves
            VisitFactory(ticket=f"S-{polls['count'] // 100:03d}")
            if Visit.objects.count() > 10:
                Visit.objects.order_by("pk").first().delete()
            Board.bump()
        response = server.get(route.request.url)
        polls["changed"] += response.status_code == 200
        route.fulfill(status=response.status_code, headers=dict(response.items()),
                      body=response.content)  # fmt: skip

    display.route(re.compile(re.escape(reverse("students:display_poll", args=[screen.token]))),
                  answer)  # fmt: skip
    cdp = display.context.new_cdp_session(display)
    cdp.send("Performance.enable")

    def memory() -> dict[str, float]:
        cdp.send("HeapProfiler.collectGarbage")
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        # Elements in the page (Chrome's own node count also holds swapped-out nodes its
        # collector has not swept yet), listeners and the script heap.
        elements = display.evaluate("document.getElementsByTagName('*').length")
        return {
            "elements": elements,
            **{k: metrics[k] for k in ("JSHeapUsedSize", "JSEventListeners")},
        }

    def run_until(count: int) -> None:
        while polls["count"] < count:
            display.wait_for_timeout(100)

    run_until(1_000)  # warmed up: every kind of answer seen
    before = memory()
    run_until(14_400)
    after = memory()

    assert polls["changed"] > 140  # the screen really swapped its contents
    assert after["elements"] <= before["elements"] * 1.1
    assert after["JSEventListeners"] <= before["JSEventListeners"]
    assert after["JSHeapUsedSize"] <= before["JSHeapUsedSize"] * 1.25
    expect(display.locator("#heartbeat")).to_have_text(re.compile(r"^Updated "))
    print(f"{polls['count']} polls, {polls['changed']} changed: {before} → {after}")


def test_the_display_warns_when_updates_stop_and_recovers_by_itself(open_page, screen):
    display = open_page(reverse("students:display", args=[screen.token]), **TV)
    heartbeat = display.locator("#heartbeat")
    expect(heartbeat).to_have_text(re.compile(r"^Updated "))
    poll = re.compile(re.escape(reverse("students:display_poll", args=[screen.token])))
    display.route(poll, lambda route: route.abort("internetdisconnected"))
    # Five polls (ten seconds) without an answer.
    stopped = re.compile(r"^Not updating since \d\d:\d\d:\d\d")
    expect(heartbeat).to_have_text(stopped, timeout=15_000)
    expect(heartbeat).to_have_attribute("role", "alert")
    display.unroute(poll)
    expect(heartbeat).to_have_text(re.compile(r"^Updated "), timeout=10_000)


def test_a_revoked_display_says_so_and_stops_asking(open_page, screen):
    display = open_page(reverse("students:display", args=[screen.token]), **TV)
    expect(display.locator("#heartbeat")).to_have_text(re.compile(r"^Updated "))
    Display.objects.filter(pk=screen.pk).update(is_active=False)
    expect(display.get_by_role("alert")).to_have_text(
        "This display's address no longer works: a manager can give it a new one in Admin."
    )


def test_axe_finds_nothing_on_the_students_pages(open_page, screen, leader, advisers):
    audit = Audit()
    display = open_page(reverse("students:display", args=[screen.token]), **TV, **AXE_CONTEXT)
    expect(display.locator("#heartbeat")).to_have_text(re.compile(r"^Updated "))
    audit(display, "display, nobody waiting")

    phone = open_page(reverse("students:checkin", args=[screen.checkin_token]), **PHONE,
                      **AXE_CONTEXT)  # fmt: skip
    audit(phone, "check-in form")
    phone.get_by_role("button", name="Check in").click()
    expect(phone.locator("#checkin-errors")).to_be_visible()
    audit(phone, "check-in form with errors")

    phone.get_by_label("Room code").fill(screen.room_code())
    phone.get_by_label("Your name").fill("Ada Lovelace")
    phone.get_by_label("Student number").fill("21234567")
    phone.get_by_label("What is it about?").select_option(label="Essay")
    phone.get_by_role("button", name="Check in").click()
    expect(phone.get_by_role("heading", name="You're checked in")).to_be_visible()
    audit(phone, "student's page, checked in")
    CheckIn.objects.get().accept(by=leader, team=advisers)
    expect(phone.locator("#my-ticket")).to_have_text("S-001")
    audit(phone, "student's page, waiting")
    expect(display.locator(".tickets")).to_contain_text("S-001")
    audit(display, "display, one waiting")
    audit.assert_clean()
