"""When the database goes away: /healthz says so, and the desk says so and recovers.

A lost database is usually found out before any view runs (the login middleware loads
the session and the user from it), so the answer comes from the project's 500 handler,
which turns a connection error into a short 503 marked `X-Database: unreachable`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import psycopg
import pytest
from django.db import InterfaceError, OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import Client
from django.urls import reverse
from playwright.sync_api import Browser, Page, expect

from queueing.models import Board, Team
from queueing.tests.factories import VisitFactory, db_state

# The browser fixtures: the Playwright session, Chromium, the live server.
pytest_plugins = ["queueing.tests.browser"]

# What psycopg says when nothing listens: the response must not repeat any of it.
REFUSED = 'connection to server at "127.0.0.1", port 5432 failed: Connection refused'
BANNER = (
    "The server can't reach its database — changes are not being saved. "
    "This page will recover by itself."
)


@contextmanager
def database_unreachable(error: type[Exception] = OperationalError) -> Iterator[None]:
    """Every query, on every connection in every thread (a live server's too), fails
    as it does once PostgreSQL has stopped, whether the connection was open or not."""

    def refuse(self: BaseDatabaseWrapper, name: str | None = None) -> None:
        # As Django raises it: its own class, from the driver's.
        raise error(REFUSED) from psycopg.OperationalError(REFUSED)

    with mock.patch.object(BaseDatabaseWrapper, "_cursor", refuse):
        yield


@pytest.fixture
def quiet_client(client: Client) -> Client:
    # The test client re-raises a view's exception even when a handler answered it;
    # here the answer is what is being tested.
    client.raise_request_exception = False
    return client


def assert_says_only_that_the_database_is_unreachable(response) -> None:
    body = response.content.decode()
    assert response.status_code == 503
    assert response["X-Database"] == "unreachable"
    assert "no-store" in response["Cache-Control"]
    assert "can't reach its database" in body
    for leak in ("127.0.0.1", "5432", "Traceback", "OperationalError", "psycopg", "DATABASE"):
        assert leak not in body


# --- /healthz ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_reports_healthy_without_a_login(client):
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_it_reports_an_unreachable_database_from_healthz(client, error):
    with database_unreachable(error):
        response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": f"unreachable: {error.__name__}"}
    body = response.content.decode()
    for leak in ("127.0.0.1", "5432", "Traceback", "refused"):
        assert leak not in body


@pytest.mark.django_db
def test_it_refuses_anything_but_get_on_healthz(client):
    assert client.post(reverse("healthz")).status_code == 405


# --- the desk ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_it_answers_a_poll_with_503_while_the_database_is_unreachable(
    quiet_client, leader, htmx_headers, error
):
    quiet_client.force_login(leader)
    poll = reverse("queueing:poll")

    with database_unreachable(error):
        response = quiet_client.get(poll, {"v": "-1"}, headers=htmx_headers)

    assert_says_only_that_the_database_is_unreachable(response)
    assert response["Retry-After"] == "5"
    # ...and recovers by itself: the same screen's next poll gets the board.
    response = quiet_client.get(poll, {"v": "-1"}, headers=htmx_headers)
    assert response.status_code == 200
    assert response["X-Board-Version"] == str(Board.current_version())


@pytest.mark.django_db
def test_it_answers_a_desk_action_with_503_and_writes_nothing(quiet_client, leader, htmx_headers):
    Team.objects.filter(slug="studysmarter").update(available_staff=1)
    visit = VisitFactory(student_name="Ada Lee")
    quiet_client.force_login(leader)
    before = db_state()

    with database_unreachable():
        response = quiet_client.post(
            reverse("queueing:start", args=[visit.pk]), headers=htmx_headers
        )

    assert_says_only_that_the_database_is_unreachable(response)
    assert db_state() == before


@pytest.mark.django_db
def test_it_answers_the_desk_page_with_a_plain_503_page(quiet_client, leader):
    quiet_client.force_login(leader)

    with database_unreachable():
        response = quiet_client.get(reverse("queueing:desk"))

    assert_says_only_that_the_database_is_unreachable(response)
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_it_answers_a_deadlock_with_a_plain_500_not_the_database_banner(
    quiet_client, leader, htmx_headers
):
    # A statement the database refused is an OperationalError too, but the database
    # is there: the next request works, and the desk must not say it is gone.
    deadlock = OperationalError("deadlock detected")
    deadlock.__cause__ = psycopg.errors.DeadlockDetected("deadlock detected")
    quiet_client.force_login(leader)

    with mock.patch.object(Board, "current_version", side_effect=deadlock):
        response = quiet_client.get(reverse("queueing:poll"), {"v": "0"}, headers=htmx_headers)

    assert response.status_code == 500
    assert "X-Database" not in response
    assert "deadlock" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cause",
    [
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.CannotConnectNow("the database system is starting up"),
        psycopg.errors.TooManyConnections("sorry, too many clients already"),
    ],
    ids=lambda cause: type(cause).__name__,
)
def test_it_answers_503_while_postgresql_restarts(quiet_client, leader, htmx_headers, cause):
    lost = OperationalError(str(cause))
    lost.__cause__ = cause
    quiet_client.force_login(leader)

    with mock.patch.object(Board, "current_version", side_effect=lost):
        response = quiet_client.get(reverse("queueing:poll"), {"v": "0"}, headers=htmx_headers)

    assert_says_only_that_the_database_is_unreachable(response)


@pytest.mark.django_db
def test_it_still_answers_other_errors_with_a_plain_500(quiet_client, leader, htmx_headers):
    quiet_client.force_login(leader)

    with mock.patch.object(Board, "current_version", side_effect=ValueError("a bug")):
        response = quiet_client.get(reverse("queueing:poll"), {"v": "0"}, headers=htmx_headers)

    assert response.status_code == 500
    assert "X-Database" not in response
    assert "a bug" not in response.content.decode()


# --- in a browser ------------------------------------------------------------------------


def database_banner(page: Page):
    return page.get_by_role("alert").filter(has_text="can't reach its database")


@pytest.fixture
def desk_screen(browser: Browser, desk_server, leader) -> Iterator[Page]:
    """The leader's desk in a browser, failing the test on any problem but the ones
    a lost database causes on purpose: its 503 answers, which htmx logs as errors.
    (The shared `desk_page` fixture rightly counts every 5xx as a problem.)"""
    from queueing.tests.browser import PASSWORD, TIMEOUT_MS, Problems

    context = browser.new_context(
        base_url=desk_server.url,
        locale="en-AU",
        timezone_id="Australia/Perth",
        viewport={"width": 1400, "height": 900},
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    unreachable: list[str] = []
    page.on(
        "response",
        lambda r: r.headers.get("x-database") == "unreachable" and unreachable.append(r.url),
    )
    problems = Problems(page)
    page.goto(reverse("queueing:desk"))
    page.get_by_label("Username").fill(leader.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="ADD TO QUEUE")).to_be_visible()
    yield page
    context.close()
    expected = {f"503 from {method} {url}" for url in unreachable for method in ("GET", "POST")}
    unexpected = [
        problem
        for problem in problems.seen
        if problem not in expected
        and not problem.startswith("console error: Response Status Error Code 503 from")
    ]
    if unexpected:
        pytest.fail("The browser reported problems:\n" + "\n".join(unexpected), pytrace=False)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_shows_a_banner_while_the_database_is_unreachable(desk_screen, tmp_path):
    page = desk_screen
    poll = re.compile(re.escape(reverse("queueing:poll")))
    with page.expect_response(poll):
        pass
    expect(page.locator("#sync-status")).to_contain_text("Live · last synced")
    expect(database_banner(page)).to_have_count(0)

    # The real server path: every connection fails, the 500 handler answers 503.
    with database_unreachable():
        with page.expect_response(lambda r: poll.search(r.url) and r.status == 503) as answer:
            pass
        assert answer.value.headers["x-database"] == "unreachable"
        expect(database_banner(page)).to_have_text(BANNER)
        expect(page.locator("#sync-status")).to_contain_text(
            "The server can't reach its database: this board may be out of date. Retrying…"
        )
        # Not the "cannot reach the server" warning: the server answered.
        expect(page.get_by_text("Cannot reach the server")).to_have_count(0)
        page.screenshot(path=tmp_path / "database-down.png", full_page=True)
        print(f"Screenshot: {tmp_path / 'database-down.png'}")

    expect(database_banner(page)).to_have_count(0, timeout=5_000)
    expect(page.locator("#sync-status")).to_contain_text("Live · last synced")
    expect(page.locator("#board-announcer")).to_have_text(
        "Connection restored: the board is up to date."
    )
    page.screenshot(path=tmp_path / "database-back.png", full_page=True)
    print(f"Screenshot: {tmp_path / 'database-back.png'}")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_shows_the_banner_when_an_action_finds_the_database_gone(desk_screen):
    Team.objects.filter(slug="studysmarter").update(available_staff=1)
    VisitFactory(student_name="Kim Tran")
    Board.bump()  # as every write on the desk does: the page shows the board of a version
    page = desk_screen
    page.reload()
    start = page.get_by_role("button", name="Start session for Kim Tran")
    # Polls answer normally; only the click meets the lost database.
    page.route(
        re.compile(r"/desk/visits/\d+/start/"),
        lambda route: route.fulfill(
            status=503,
            headers={"X-Database": "unreachable", "Content-Type": "text/html"},
            body="ResQ can't reach its database",
        ),
    )

    start.click()

    expect(database_banner(page)).to_have_text(BANNER)
    expect(start).to_be_visible()  # the board was not swapped for the error page
    expect(database_banner(page)).to_have_count(0, timeout=5_000)  # the next good poll
