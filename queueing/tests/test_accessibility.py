"""Every page and every state of the desk, checked by axe-core against WCAG 2.2 A and AA.

axe finds what a machine can (names, roles, contrast, structure); the keyboard and
screen-reader behaviour it cannot judge is tested in test_e2e.py. A state is checked
where a person meets it: a dialog open over the board, the errors after a bad submit.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from queueing.models import Team, Visit, WaitEstimate
from queueing.tests.factories import VisitFactory, finished_visit
from reporting.models import Term

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

pytest_plugins = ["queueing.tests.browser"]

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]

# axe is injected as an inline <script>, which ResQ's Content-Security-Policy refuses,
# as it should. Only these tests' browser contexts bypass the policy, to let axe in;
# every other browser test runs under it and fails on a refusal.
AXE_CONTEXT = {"bypass_csp": True}

LAST_TERM = datetime(2026, 3, 2, 1, tzinfo=UTC)

RUN_AXE = """tags => axe.run(document, {runOnly: {type: "tag", values: tags}}).then(
    result => result.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        targets: v.nodes.map(n => n.target.join(" ")),
    }))
)"""


class Audit:
    """Runs axe on each state a test reaches and reports every violation at the end,
    so one run shows all there is to fix."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self.states: list[str] = []

    def __call__(self, page: Page, state: str) -> None:
        if not page.evaluate("() => Boolean(window.axe)"):
            page.add_script_tag(path=AXE)
        self.states.append(state)
        for violation in page.evaluate(RUN_AXE, WCAG_22_AA):
            targets = ", ".join(violation["targets"][:5])
            self.found.append(
                f"{state}: {violation['id']} ({violation['impact']}) {violation['help']} "
                f"— {targets}"
            )

    def assert_clean(self) -> None:
        print(f"axe checked {len(self.states)} states: {'; '.join(self.states)}")
        assert not self.found, "Accessibility violations:\n" + "\n".join(self.found)


def fill_the_desk(by) -> None:
    """A desk at its busiest: both teams waiting (waits past each colour change), every
    STUDYSmarter staff member in a session, a librarian free, a visit just finished."""
    now = timezone.now()
    studysmarter = Team.objects.get(slug="studysmarter")
    librarian = Team.objects.get(slug="librarian")
    Team.objects.filter(pk=studysmarter.pk).update(available_staff=2)
    Team.objects.filter(pk=librarian.pk).update(available_staff=2)
    waits = [
        (studysmarter, "Ada Lovelace", 35),
        (studysmarter, "Bo Chen", 22),
        (studysmarter, "Cy Tran", 12),
        (studysmarter, "Dee Park", 3),
        (librarian, "Eve Stone", 31),
        (librarian, "Fay Wong", 15),
        (librarian, "Gus Hale", 1),
    ]
    for team, name, minutes in waits:
        VisitFactory(team=team, student_name=name, arrived_at=now - timedelta(minutes=minutes))
    # Yesterday's sessions, which the wait estimates draw from.
    for team in (studysmarter, librarian):
        finished_visit(now - timedelta(days=1), waited=2, minutes=20, team=team)
    for team, name, minutes in [
        (studysmarter, "Kim Lee", 20),
        (studysmarter, "Hal Ito", 40),
        (studysmarter, "Ian Bell", 25),
        (librarian, "Jo Marsh", 18),
    ]:
        visit = VisitFactory(
            team=team, student_name=name, arrived_at=now - timedelta(minutes=minutes)
        )
        visit.start_session(by=by)
        if name == "Kim Lee":
            visit.finish(by=by)
    Visit.objects.filter(student_name="Hal Ito").update(started_at=now - timedelta(minutes=33))
    Visit.objects.filter(student_name="Ian Bell").update(started_at=now - timedelta(minutes=21))


@pytest.fixture
def audit() -> Audit:
    return Audit()


def desk_poll() -> re.Pattern:
    return re.compile(re.escape(reverse("queueing:poll")))


def test_it_finds_nothing_on_an_empty_desk(open_page, leader, audit):
    page = open_page(reverse("queueing:desk"), user=leader, **AXE_CONTEXT)
    expect(page.get_by_text("Nobody waiting.").first).to_be_visible()
    audit(page, "desk, empty")

    # The add form's errors, shown after an empty submit.
    page.get_by_role("button", name="Add to queue").click()
    expect(page.get_by_label("Student Name")).to_have_accessible_description(
        re.compile("Enter the Student Name")
    )
    audit(page, "desk, add form with errors")

    # The close-queue dialog with nobody to close.
    page.get_by_role("link", name="Close the queue").click()
    expect(page.get_by_role("dialog", name="Close the queue?")).to_be_visible()
    audit(page, "close-queue dialog, nobody waiting")
    audit.assert_clean()


def test_it_finds_nothing_on_a_busy_desk_and_its_dialogs(open_page, leader, audit):
    fill_the_desk(by=leader)
    VisitFactory(
        student_name="Lu Returning",
        student_number="21999999",
        arrived_at=LAST_TERM,
        status=Visit.Status.REMOVED,
        ended_at=LAST_TERM + timedelta(minutes=30),
        outcome=Visit.Outcome.NO_SHOW,
    )
    page = open_page(reverse("queueing:desk"), user=leader, expected_statuses=(503,), **AXE_CONTEXT)
    expect(page.get_by_role("region", name="Current Sessions")).to_contain_text("Hal Ito")
    expect(page.locator(".timer.level-30").first).to_be_visible()
    expect(page.get_by_text(re.compile(r"^starts in \d+–\d+ min$")).first).to_be_visible()
    audit(page, "desk, busy")

    # A returning student: the desk offers the name from last time.
    page.get_by_label("Student Number").fill("21999999")
    expect(page.get_by_role("button", name="Use this name")).to_be_visible()
    audit(page, "desk, returning-student prompt")

    # The same student again while waiting: a warning and "Add anyway".
    page.get_by_label("Student Name").fill("Ada Lovelace")
    number = Visit.objects.get(student_name="Ada Lovelace").student_number
    page.get_by_label("Student Number").fill(number)
    page.get_by_label("Team", exact=True).select_option(label="STUDYSmarter")
    page.get_by_label("Enquiry Type").select_option(label="Essay")
    page.get_by_role("button", name="Add to queue").click()
    expect(page.get_by_role("button", name="Add anyway")).to_be_visible()
    audit(page, "desk, duplicate warning")

    # Every STUDYSmarter staff member is busy: the refusal and its offer.
    page.get_by_role("button", name="Start session for Bo Chen").click()
    expect(page.get_by_role("button", name="Add a staff member and start")).to_be_visible()
    audit(page, "desk, staffing limit refused")

    # A session finished: the message offers its Undo.
    page.get_by_role("button", name="Finish session for Ian Bell").click()
    expect(page.get_by_role("button", name="Undo finish for Ian Bell")).to_be_visible()
    audit(page, "desk, finished with Undo in the message")

    for link, dialog_name in [
        ("Remove Cy Tran", "Remove Cy Tran from the STUDYSmarter Queue?"),
        ("Edit Fay Wong", "Correct Fay Wong's visit"),
        ("Close the queue", "Close the queue?"),
    ]:
        page.get_by_role("link", name=link).click()
        dialog = page.get_by_role("dialog", name=dialog_name)
        expect(dialog).to_be_visible()
        audit(page, f"dialog open: {dialog_name}")
        page.keyboard.press("Escape")
        expect(dialog).to_have_count(0)

    # The remove dialog submitted without a reason shows its error inside the dialog.
    page.get_by_role("link", name="Remove Cy Tran").click()
    dialog = page.get_by_role("dialog", name="Remove Cy Tran from the STUDYSmarter Queue?")
    dialog.get_by_role("button", name="Remove from queue").click()
    expect(dialog.get_by_role("alert")).to_be_visible()
    audit(page, "remove dialog with an error")
    page.keyboard.press("Escape")

    # The database is lost: the banner over the board.
    page.route(
        desk_poll(),
        lambda route: route.fulfill(status=503, body="", headers={"X-Database": "unreachable"}),
    )
    expect(page.locator("#database-alert")).to_be_visible()
    audit(page, "desk, database unreachable")
    audit.assert_clean()


def test_it_finds_nothing_in_the_reports(open_page, coordinator, leader, audit):
    fill_the_desk(by=leader)
    today = timezone.localdate()
    Term.objects.create(
        name="This term", first_day=date.fromordinal(today.toordinal() - 14), last_day=today
    )
    # The estimate each student seen today was shown as they joined.
    WaitEstimate.objects.bulk_create(
        WaitEstimate(
            visit=visit, made_at=visit.arrived_at, board_version=1, first=True, ahead=0,
            staff=2, in_session=0, low_minutes=2, median_minutes=8, high_minutes=20,
        )
        for visit in Visit.objects.filter(started_at__isnull=False)
    )  # fmt: skip
    dashboard = reverse("reporting:dashboard")
    page = open_page(dashboard, user=coordinator, **AXE_CONTEXT)
    expect(page.get_by_role("heading", name="Data Analytics", level=1)).to_be_visible()
    expect(page.locator(".chart .main-svg").first).to_be_attached()
    expect(page.get_by_text(re.compile("waits estimated as the student joined"))).to_be_visible()
    audit(page, "dashboard, this week")

    page.get_by_role("radio", name="Term").check()
    expect(page.get_by_role("heading", name=re.compile("This term"), level=2)).to_be_visible()
    audit(page, "dashboard, term")

    page.goto(f"{dashboard}?day=2020-01-06")
    expect(page.get_by_text("No visits in this period.").first).to_be_visible()
    audit(page, "dashboard, empty week")

    for path, state, heading in [
        (reverse("reporting:weekly"), "weekly summary", re.compile("week", re.I)),
        (reverse("reporting:staffing"), "staffing advice", "Staffing advice"),
        (
            reverse("reporting:staffing") + f"?week={today - timedelta(days=7)}",
            "staffing, last week",
            "Staffing advice",
        ),
        (
            reverse("reporting:staffing") + "?week=x&share=1",
            "staffing, corrected",
            "Staffing advice",
        ),
        (reverse("reporting:export"), "export", "Export Data"),
        (
            reverse("reporting:export") + "?period=custom&start=2026-13-01&end=x",
            "export with errors",
            "Export Data",
        ),
        (reverse("reporting:data_dictionary"), "data dictionary", re.compile("")),
        (reverse("accounts:overview"), "account page", "Your account"),
        (reverse("queueing:desk"), "403 page", "This page isn't available to you"),
        ("/no-such-page/", "404 page", "Page not found"),
    ]:
        page.goto(path)
        expect(page.get_by_role("heading", name=heading, level=1).first).to_be_visible()
        audit(page, state)
    audit.assert_clean()


def test_it_finds_nothing_on_the_login_page_and_in_admin(open_page, manager, audit):
    page = open_page(reverse("accounts:login"), **AXE_CONTEXT)
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Log in to ResQ")).to_be_visible()
    expect(page.get_by_text(re.compile("not correct|incorrect", re.I)).first).to_be_visible()
    audit(page, "login with an error")

    VisitFactory(student_name="Ada Lovelace", team=Team.objects.get(slug="librarian"))
    page = open_page(
        reverse("admin:queueing_visit_changelist"), user=manager, two_factor=True, **AXE_CONTEXT
    )
    expect(page.get_by_role("link", name="Ada Lovelace")).to_be_visible()
    audit(page, "admin, visits changelist")
    audit.assert_clean()
