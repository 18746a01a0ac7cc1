"""A desk action that fails says so on the board, in a real browser.

htmx swaps nothing when a request fails; without resq.js's handler the button would
seem to do nothing. The server's answer is replaced here (Playwright's `page.route`),
so the failure is the browser's view of a real 500, 403 or lost connection.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from django.urls import reverse
from playwright.sync_api import Browser, Page, Route, expect

from accounts.tests.helpers import PASSWORD
from queueing.models import Team, Visit
from queueing.tests.factories import VisitFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

pytest_plugins = ["queueing.tests.browser"]

TIMEOUT_MS = 5_000

SERVER_ERROR = "That didn't work (server error). Nothing was changed — try again."
NOT_ALLOWED = "That didn't work (not allowed). Nothing was changed — reload the page and try again."
NO_ANSWER = (
    "That didn't work (the server could not be reached). Check the board before trying again."
)


@pytest.fixture
def desk(browser: Browser, desk_server) -> Iterator[Callable[..., Page]]:
    """The desk, logged in through the login page. Unlike the other browser tests' screens
    it expects failed requests (they are the point), but not script errors or a refused
    Content-Security-Policy."""
    opened: list[Page] = []
    problems: list[str] = []

    def open_desk(user) -> Page:
        context = browser.new_context(base_url=desk_server.url, locale="en-AU")
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        opened.append(page)
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.on(
            "console",
            lambda m: problems.append(m.text) if "Content-Security-Policy" in m.text else None,
        )
        page.goto(reverse("queueing:desk"))
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="ADD TO QUEUE")).to_be_visible()
        return page

    yield open_desk

    for page in opened:
        page.context.close()
    assert problems == []


def answer(status: int, **headers: str) -> Callable[[Route], None]:
    def fulfil(route: Route) -> None:
        if route.request.method == "POST":
            route.fulfill(status=status, body="<h1>Error</h1>", headers=headers)
        else:
            route.continue_()

    return fulfil


def action_error(page: Page):
    return page.locator("[data-action-error]")


def test_it_says_when_an_action_fails_and_clears_when_the_next_one_works(desk, leader):
    Team.objects.filter(slug="studysmarter").update(available_staff=2)
    visit = VisitFactory(student_name="Ada Lovelace")
    page = desk(leader)
    start = re.compile(re.escape(reverse("queueing:start", args=[visit.pk])) + "$")

    page.route(start, answer(500))
    page.get_by_role("button", name="Start session for Ada Lovelace").click()

    alert = page.get_by_role("alert").filter(has_text="That didn't work")
    expect(alert).to_have_text(SERVER_ERROR)
    # In the messages above the board, where the desk's other messages appear.
    expect(page.locator("#messages [data-action-error]")).to_have_count(1)
    assert Visit.objects.get(pk=visit.pk).status == Visit.Status.WAITING

    page.unroute(start)
    page.get_by_role("button", name="Start session for Ada Lovelace").click()
    expect(page.get_by_role("region", name="Current Sessions")).to_contain_text("Ada Lovelace")
    expect(action_error(page)).to_have_count(0)
    assert Visit.objects.get(pk=visit.pk).status == Visit.Status.IN_SESSION


def test_it_says_when_the_server_cannot_be_reached(desk, leader):
    page = desk(leader)
    staffing = re.compile(re.escape(reverse("queueing:staffing", args=["studysmarter"])))

    page.route(staffing, lambda route: route.abort())
    page.get_by_role("button", name="One more: STUDYSmarter Team Available").click()

    expect(action_error(page)).to_have_text(NO_ANSWER)


def test_it_says_when_an_action_is_refused(desk, leader):
    VisitFactory(student_name="Bo Chen")
    page = desk(leader)

    page.route(re.compile(r"/desk/close/$"), answer(403))
    page.get_by_role("link", name="Close the queue").click()
    dialog = page.get_by_role("dialog", name="Close the queue?")
    dialog.get_by_role("button", name="Close the queue").click()

    # In the dialog, which covers the board.
    expect(dialog.get_by_role("alert")).to_have_text(NOT_ALLOWED)
    assert Visit.objects.get(student_name="Bo Chen").status == Visit.Status.WAITING


def test_it_leaves_a_failed_poll_and_a_lost_database_to_their_own_messages(desk, leader):
    VisitFactory(student_name="Cy Tran")
    page = desk(leader)
    poll = re.compile(re.escape(reverse("queueing:poll")))

    page.route(poll, lambda route: route.fulfill(status=500, body=""))
    with page.expect_response(poll):
        pass
    expect(page.locator("#sync-status")).to_contain_text("Cannot reach the server")
    page.unroute(poll)

    start = re.compile(r"/start/$")
    page.route(start, answer(503, **{"X-Database": "unreachable", "Retry-After": "5"}))
    with page.expect_response(start):
        page.get_by_role("button", name="Start session for Cy Tran").click()
    expect(page.locator("#database-alert")).to_be_visible()

    expect(action_error(page)).to_have_count(0)
