"""The desk in a real browser, used as the student leader and the staff use it.

Everything is found by role and label, as a person (or a screen reader) finds it, and
every test runs against a live server with the seeded teams and enquiry types.
"""

import re
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from queueing.models import Team, Visit, VisitEvent
from queueing.templatetags.desk import estimate_text
from queueing.tests.factories import VisitFactory

pytestmark = [
    pytest.mark.browser,
    # The live server needs committed data; serialized rollback puts the seeded teams,
    # enquiry types and roles back after each test flushes the tables.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# The browser fixtures: the Playwright session, Chromium, and desk_page(user).
pytest_plugins = ["queueing.tests.browser"]

# Every open board shows a change made anywhere within this many seconds.
SYNC_WITHIN_S = 3

# --- finding things on the desk, as a person would -------------------------------------


def queue(page: Page, team_queue: str) -> Locator:
    """A team's waiting table, e.g. queue(page, "Librarian Queue")."""
    return page.get_by_role("region", name=team_queue)


def sessions(page: Page) -> Locator:
    return page.get_by_role("region", name="Current Sessions")


def row(area: Locator, student_name: str) -> Locator:
    """The table row headed by a student's name."""
    return area.get_by_role("row").filter(
        has=area.page.get_by_role("rowheader", name=student_name, exact=True)
    )


def position(page: Page, team_queue: str, student_name: str) -> int:
    """The student's place in line: the # column, the row's first cell."""
    return int(row(queue(page, team_queue), student_name).get_by_role("cell").first.inner_text())


def counter(page: Page, label: str) -> Locator:
    """A staffing counter's value, e.g. counter(page, "Librarians Available")."""
    return page.get_by_role("status", name=label, exact=True)


def messages(page: Page) -> Locator:
    """The messages the desk shows after an action (a live region)."""
    return page.get_by_role("status").filter(has=page.get_by_role("paragraph"))


def sync_status(page: Page) -> Locator:
    """The line under the board (seen), not the alert announced when it drops (heard)."""
    return page.get_by_text(re.compile(r"^(Live|Cannot reach the server.*Retrying)"))


def wait_for_sync(on_the_other_screen: Locator, since: float, what: str) -> float:
    """Seconds from `since` until something shows on another screen (which is not
    reloaded: only its polling can bring it)."""
    expect(on_the_other_screen).to_be_visible(timeout=SYNC_WITHIN_S * 1000)
    delay = time.monotonic() - since
    print(f"{what} reached the other screen in {delay:.2f} s")
    return delay


def set_staff(slug: str, available: int) -> None:
    Team.objects.filter(slug=slug).update(available_staff=available)


def add_with_keyboard(page: Page, name: str, number: str, unit: str, team: str, enquiry: str):
    """Type a student in as the leader does at a busy desk: no mouse at all.

    The selects are chosen by typing the start of an option, as on a closed <select>.
    """
    expect(page.get_by_label("Student Name")).to_be_focused()
    keyboard = page.keyboard
    keyboard.type(name)
    keyboard.press("Tab")
    keyboard.type(number)
    keyboard.press("Tab")
    keyboard.type(unit)
    keyboard.press("Tab")
    expect(page.get_by_label("Team", exact=True)).to_be_focused()
    keyboard.type(team)
    keyboard.press("Tab")
    expect(page.get_by_label("Enquiry Type")).to_be_focused()
    keyboard.type(enquiry)
    keyboard.press("Tab")
    expect(page.get_by_role("button", name="Add to queue")).to_be_focused()
    keyboard.press("Enter")


def expect_empty_add_form(page: Page) -> None:
    expect(page.get_by_label("Student Name")).to_be_focused()
    for label in ("Student Name", "Student Number", "Unit Code", "Team", "Enquiry Type"):
        expect(page.get_by_label(label, exact=True)).to_have_value("")


def test_it_adds_students_to_both_teams_with_the_keyboard_only(desk_page, leader):
    page = desk_page(leader)

    add_with_keyboard(page, "Zoë Ng", "21234567", "cits3200", "STUDY", "Essay")
    zoe = row(queue(page, "STUDYSmarter Queue"), "Zoë Ng")
    expect(zoe).to_contain_text("21234567")
    expect(zoe).to_contain_text("CITS3200")
    expect(zoe).to_contain_text("Essay")
    expect(messages(page)).to_contain_text("Zoë Ng added to the STUDYSmarter Queue as S-001.")
    expect_empty_add_form(page)

    add_with_keyboard(page, "Ana O'Brien", "01234567", "", "Lib", "Finding")
    ana = row(queue(page, "Librarian Queue"), "Ana O'Brien")
    expect(ana).to_contain_text("01234567")  # leading zero kept
    expect(ana).to_contain_text("Finding Sources")
    expect(row(queue(page, "STUDYSmarter Queue"), "Ana O'Brien")).to_have_count(0)
    expect_empty_add_form(page)

    # No name and a number with letters: Enter in a text field submits the form.
    keyboard = page.keyboard
    keyboard.press("Tab")
    keyboard.type("2123abc")
    keyboard.press("Tab")
    keyboard.type("cits1001")
    keyboard.press("Shift+Tab")
    keyboard.press("Enter")
    name = page.get_by_label("Student Name")
    number = page.get_by_label("Student Number")
    expect(name).to_have_accessible_description(re.compile("Enter the Student Name."))
    expect(number).to_have_accessible_description(re.compile("Enter the Student Number as 8"))
    expect(name).to_be_focused()  # the first field to fix
    expect(number).to_have_value("2123abc")
    expect(page.get_by_label("Unit Code")).to_have_value("cits1001")
    assert Visit.objects.count() == 2


def test_it_runs_a_drop_in_from_the_desk(desk_page, leader):
    now = timezone.now()
    for minutes, student in [(9, "Ada Lovelace"), (7, "Bo Chen"), (5, "Cy Tran"), (3, "Eve Stone")]:
        VisitFactory(student_name=student, arrived_at=now - timedelta(minutes=minutes))
    VisitFactory(
        student_name="Dee Park",
        team=Team.objects.get(slug="librarian"),
        arrived_at=now - timedelta(minutes=4),
    )
    set_staff("studysmarter", 0)
    set_staff("librarian", 0)
    page = desk_page(leader)
    studysmarter = queue(page, "STUDYSmarter Queue")
    librarian = queue(page, "Librarian Queue")
    recent = page.get_by_role("region", name="Just finished or removed")

    # A learning adviser arrives.
    expect(counter(page, "STUDYSmarter Team Available")).to_have_text("0")
    page.get_by_role("button", name="One more: STUDYSmarter Team Available").click()
    expect(counter(page, "STUDYSmarter Team Available")).to_have_text("1")

    # Bo is seen, finished, the finish undone, then the start undone: Bo is second again.
    assert position(page, "STUDYSmarter Queue", "Bo Chen") == 2
    page.get_by_role("button", name="Start session for Bo Chen").click()
    expect(row(sessions(page), "Bo Chen")).to_contain_text("Lee")  # started by
    expect(row(studysmarter, "Bo Chen")).to_have_count(0)
    page.get_by_role("button", name="Finish session for Bo Chen").click()
    expect(recent).to_contain_text("Bo Chen")
    expect(row(sessions(page), "Bo Chen")).to_have_count(0)
    recent.get_by_role("button", name="Undo for Bo Chen").click()
    expect(row(sessions(page), "Bo Chen")).to_be_visible()
    page.get_by_role("button", name="Undo start for Bo Chen").click()
    expect(row(studysmarter, "Bo Chen")).to_be_visible()
    expect(messages(page)).to_contain_text("in their original place")
    assert position(page, "STUDYSmarter Queue", "Bo Chen") == 2
    assert Visit.objects.get(student_name="Bo Chen").status == Visit.Status.WAITING

    # Escape closes the remove dialog and changes nothing.
    page.get_by_role("link", name="Remove Cy Tran").click()
    dialog = page.get_by_role("dialog", name="Remove Cy Tran from the STUDYSmarter Queue?")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(row(studysmarter, "Cy Tran")).to_be_visible()
    assert Visit.objects.get(student_name="Cy Tran").status == Visit.Status.WAITING

    # Cy gave up waiting.
    page.get_by_role("link", name="Remove Cy Tran").click()
    dialog.get_by_role("radio", name="Left before being seen").check()
    dialog.get_by_role("button", name="Remove from queue").click()
    expect(dialog).to_have_count(0)
    expect(row(studysmarter, "Cy Tran")).to_have_count(0)
    expect(recent).to_contain_text("Left before being seen")
    cy = Visit.objects.get(student_name="Cy Tran")
    assert (cy.status, cy.outcome) == (Visit.Status.REMOVED, Visit.Outcome.CANCELLED)

    # No librarian yet: the desk says so and offers to count one in and start.
    page.get_by_role("button", name="Start session for Dee Park").click()
    offer = messages(page).get_by_role("button", name="Add a staff member and start")
    expect(offer).to_be_visible()
    expect(messages(page)).to_contain_text("Librarian")
    expect(row(librarian, "Dee Park")).to_be_visible()  # not started
    offer.click()
    expect(row(sessions(page), "Dee Park")).to_be_visible()
    expect(counter(page, "Librarians Available")).to_have_text("1")
    expect(row(librarian, "Dee Park")).to_have_count(0)

    # End of the drop-in: everyone still waiting leaves; Dee's session goes on.
    page.get_by_role("link", name="Close the queue").click()
    dialog = page.get_by_role("dialog", name="Close the queue?")
    expect(dialog).to_contain_text("3 students still waiting")  # Ada, Bo and Eve
    dialog.get_by_role("button", name="Close the queue").click()
    expect(studysmarter).to_contain_text("Nobody waiting")
    expect(librarian).to_contain_text("Nobody waiting")
    expect(row(sessions(page), "Dee Park")).to_be_visible()
    assert not Visit.objects.waiting().exists()
    assert Visit.objects.filter(outcome=Visit.Outcome.OUT_OF_TIME).count() == 3


def test_it_corrects_a_typo_and_moves_a_student_to_another_queue(desk_page, leader):
    now = timezone.now()
    VisitFactory(student_name="Ada Lovelce", arrived_at=now - timedelta(minutes=9))
    VisitFactory(student_name="Eve Stone", arrived_at=now - timedelta(minutes=8))
    VisitFactory(
        student_name="Ian Bell",
        team=Team.objects.get(slug="librarian"),
        arrived_at=now - timedelta(minutes=2),
    )
    page = desk_page(leader)
    studysmarter = queue(page, "STUDYSmarter Queue")
    librarian = queue(page, "Librarian Queue")

    page.get_by_role("link", name="Edit Ada Lovelce").click()
    dialog = page.get_by_role("dialog", name="Correct Ada Lovelce's visit")
    name = dialog.get_by_label("Student Name")
    expect(name).to_have_value("Ada Lovelce")
    name.fill("Ada Lovelace")
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog).to_have_count(0)
    expect(row(studysmarter, "Ada Lovelace")).to_be_visible()
    expect(row(studysmarter, "Ada Lovelce")).to_have_count(0)
    expect(messages(page)).to_contain_text("Ada Lovelace's details corrected.")

    # Eve arrived before Ian, so she goes in ahead of him.
    page.get_by_role("link", name="Edit Eve Stone").click()
    dialog = page.get_by_role("dialog", name="Correct Eve Stone's visit")
    dialog.get_by_label("Team", exact=True).select_option(label="Librarian")
    dialog.get_by_role("button", name="Save changes").click()
    expect(row(librarian, "Eve Stone")).to_be_visible()
    expect(row(studysmarter, "Eve Stone")).to_have_count(0)
    expect(messages(page)).to_contain_text("Eve Stone moved to the Librarian Queue")
    assert position(page, "Librarian Queue", "Eve Stone") == 1
    assert position(page, "Librarian Queue", "Ian Bell") == 2
    assert Visit.objects.get(student_name="Eve Stone").team.slug == "librarian"


def test_it_keeps_two_screens_in_step(desk_page, leader, other_leader):
    set_staff("studysmarter", 2)
    gus_pk = VisitFactory(student_name="Gus Hale").pk
    lee = desk_page(leader)
    sam = desk_page(other_leader)

    lee.get_by_label("Student Name").fill("Fay Wong")
    lee.get_by_label("Student Number").fill("21000042")
    lee.get_by_label("Team", exact=True).select_option(label="STUDYSmarter")
    lee.get_by_label("Enquiry Type").select_option(label="Grammar")
    clicked = time.monotonic()
    lee.get_by_role("button", name="Add to queue").click()
    delay = wait_for_sync(row(queue(sam, "STUDYSmarter Queue"), "Fay Wong"), clicked, "An add")
    assert delay < SYNC_WITHIN_S

    clicked = time.monotonic()
    lee.get_by_role("button", name="Start session for Fay Wong").click()
    delay = wait_for_sync(row(sessions(sam), "Fay Wong"), clicked, "A start")
    assert delay < SYNC_WITHIN_S
    expect(row(queue(sam, "STUDYSmarter Queue"), "Fay Wong")).to_have_count(0)

    # Both screens press Start for Gus at the same moment: one wins, the other is told who.
    buttons = [
        screen.get_by_role("button", name="Start session for Gus Hale").element_handle()
        for screen in (lee, sam)
    ]
    at = int(time.time() * 1000) + 400

    def is_start(request) -> bool:
        return request.method == "POST" and request.url.endswith(
            reverse("queueing:start", args=[gus_pk])
        )

    with lee.expect_request(is_start) as lee_start, sam.expect_request(is_start) as sam_start:
        for button in buttons:
            button.evaluate("(button, at) => setTimeout(() => button.click(), at - Date.now())", at)
    requests = [started.value for started in (lee_start, sam_start)]
    for request in requests:
        request.response()  # the timing is complete once the answer is in
    sent = [request.timing["startTime"] for request in requests]
    print(f"The two Start requests left {abs(sent[0] - sent[1]):.0f} ms apart")
    for screen in (lee, sam):
        expect(row(sessions(screen), "Gus Hale")).to_be_visible()

    gus = Visit.objects.get(student_name="Gus Hale")
    assert gus.status == Visit.Status.IN_SESSION
    assert gus.events.filter(action=VisitEvent.Action.STARTED).count() == 1
    assert Visit.objects.filter(status=Visit.Status.IN_SESSION).count() == 2  # Fay and Gus
    winner, loser = (lee, sam) if gus.started_by == leader else (sam, lee)
    winner_name = gus.started_by.display_name
    expect(messages(winner)).to_contain_text("Session started for Gus Hale.")
    expect(messages(loser)).to_contain_text(
        f"Gus Hale is already in a session, started by {winner_name}."
    )


def test_it_shows_whether_the_board_is_in_sync(desk_page, leader):
    page = desk_page(leader)
    poll = re.compile(re.escape(reverse("queueing:poll")))
    with page.expect_response(poll):
        pass
    expect(sync_status(page)).to_contain_text("last synced")

    page.route(poll, lambda route: route.abort())
    expect(sync_status(page)).to_contain_text("Cannot reach the server", timeout=5_000)
    # Screen readers hear it once, as an alert.
    expect(page.get_by_role("alert")).to_have_text(
        "Cannot reach the server: this board may be out of date."
    )

    page.unroute(poll)
    expect(sync_status(page)).to_contain_text("Live · last synced", timeout=5_000)
    expect(page.get_by_role("alert")).to_have_text("")


def test_it_ticks_the_wait_and_colours_it_after_ten_minutes(desk_page, leader):
    VisitFactory(student_name="Hal Ito", arrived_at=timezone.now() - timedelta(minutes=12))
    page = desk_page(leader)
    waiting = row(queue(page, "STUDYSmarter Queue"), "Hal Ito")
    timer = waiting.get_by_text(re.compile(r"^12:\d\d$"))
    expect(timer).to_be_visible()
    expect(timer).to_have_class(re.compile(r"\blevel-10\b"))

    first = timer.inner_text()
    expect(timer).not_to_have_text(first, timeout=2_500)
    assert timer.inner_text() > first


def test_it_counts_wait_estimates_down_in_the_servers_words(desk_page, leader):
    page = desk_page(leader)
    # Estimates that start and end these many minutes from now, as a board carries them.
    ranges = [(-5, 0.5), (0, 4), (2.5, 7.2), (12, 27), (0, 45), (0, 1.03)]
    page.evaluate(
        """ranges => ranges.forEach(([low, high], i) => {
             const at = minutes => new Date(Date.now() + minutes * 60000).toISOString();
             const shown = Object.assign(document.createElement("span"), {id: "estimate-" + i});
             shown.className = "estimate";
             Object.assign(shown.dataset, {from: at(low), until: at(high)});
             document.body.append(shown);
           })""",
        ranges,
    )
    now = timezone.now()
    for i, (low, high) in enumerate(ranges):
        words = estimate_text(now + timedelta(minutes=low), now + timedelta(minutes=high), now)
        expect(page.locator(f"#estimate-{i}")).to_have_text(words)
    # The last passes its end within three seconds: the browser says so without the server.
    expect(page.locator("#estimate-5")).to_have_text("starts any moment", timeout=4_000)


def test_it_stops_offering_an_undo_when_its_window_closes(desk_page, leader, settings):
    visit = VisitFactory(student_name="Ivy Park")
    visit.remove(by=leader, outcome=Visit.Outcome.NO_SHOW)
    # Two seconds of the window left, and nothing else will change the board.
    Visit.objects.filter(pk=visit.pk).update(
        ended_at=timezone.now() - timedelta(seconds=settings.RESQ_UNDO_WINDOW_SECONDS - 2)
    )
    page = desk_page(leader)
    undo = page.get_by_role("button", name="Undo for Ivy Park")
    expect(undo).to_be_visible()
    expect(undo).to_have_count(0, timeout=5_000)
    expect(page.get_by_role("heading", name=re.compile("Just finished or removed"))).to_have_count(
        0
    )


def test_it_offers_undo_in_the_message_after_a_finish_or_a_removal(desk_page, leader):
    set_staff("studysmarter", 1)
    VisitFactory(student_name="Bo Chen").start_session(by=leader)
    VisitFactory(student_name="Cy Tran")
    page = desk_page(leader)

    page.get_by_role("button", name="Finish session for Bo Chen").click()
    expect(messages(page)).to_contain_text("Session finished for Bo Chen.")
    messages(page).get_by_role("button", name="Undo finish for Bo Chen").click()
    expect(row(sessions(page), "Bo Chen")).to_be_visible()
    expect(messages(page)).to_contain_text("Bo Chen's session is running again.")

    page.get_by_role("link", name="Remove Cy Tran").click()
    dialog = page.get_by_role("dialog", name="Remove Cy Tran from the STUDYSmarter Queue?")
    dialog.get_by_role("radio", name="Left before being seen").check()
    dialog.get_by_role("button", name="Remove from queue").click()
    expect(row(queue(page, "STUDYSmarter Queue"), "Cy Tran")).to_have_count(0)
    messages(page).get_by_role("button", name="Undo removal of Cy Tran").click()
    expect(row(queue(page, "STUDYSmarter Queue"), "Cy Tran")).to_be_visible()
    assert Visit.objects.get(student_name="Cy Tran").status == Visit.Status.WAITING
