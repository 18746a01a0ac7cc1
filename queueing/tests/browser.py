"""Fixtures for the browser tests: Debian's Chromium, driven by Playwright, against
pytest-django's live server, and desk screens logged in as a given user."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.db import connection, connections
from django.test import Client
from django.urls import reverse
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from accounts.tests.helpers import PASSWORD, pass_two_factor

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# A miss is reported in seconds rather than after Playwright's default 30 s.
TIMEOUT_MS = 5_000


def require_browser(installed: bool, reason: str) -> None:
    """A missing browser skips its tests on a developer's machine and fails them in CI,
    where the project's own files install every browser."""
    if installed:
        return
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    require_browser(
        os.access(CHROMIUM, os.X_OK),
        f"Chromium is not installed at {CHROMIUM}: install Debian's 'chromium' "
        "package (or run `make browser`) to run the browser tests.",
    )
    # Playwright's sync API drives the browser from an asyncio event loop that it keeps
    # running in this (the test) thread. Django sees that running loop and refuses ORM
    # calls from the thread with SynchronousOnlyOperation, although nothing here is
    # async: the tests set up and check data with the ORM between browser steps. The
    # switch is process-wide, so it is on only while Playwright runs.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    # The same running loop makes Django keep this thread's database connections in a
    # second, per-context store from now on. Left empty, it would hand the tests fresh
    # connections that know nothing of the test database's saved seed data (so
    # serialized rollback restores nothing) and, on in-memory SQLite, are not the one
    # the live server shares. Point it at the connections the thread already has.
    thread_connections = {alias: connections[alias] for alias in connections}
    try:
        with sync_playwright() as p:
            for alias, thread_connection in thread_connections.items():
                connections[alias] = thread_connection
            yield p
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    expect.set_options(timeout=TIMEOUT_MS)
    yield browser
    browser.close()


EXPECTED_CONSOLE_ERRORS = ("Failed to load resource", "htmx:sendError", "htmx:afterRequest")


class Problems:
    """What a page did wrong without a test asking: script errors, console errors (a
    refused Content-Security-Policy shows up there) and server errors.

    `expected_statuses` are answers a test brings about on purpose (a 503 it routes).
    """

    def __init__(self, page: Page, expected_statuses: tuple[int, ...] = ()) -> None:
        self.seen: list[str] = []
        self.expected_statuses = expected_statuses
        page.on("pageerror", lambda error: self.seen.append(f"script error: {error}"))
        page.on("console", self._console)
        page.on("response", self._response)

    def _console(self, message) -> None:
        # Failed requests are judged by their status below (a missing favicon is not a
        # problem), and htmx logs a request that never reached the server (which a test
        # causes on purpose) as an error.
        expected = EXPECTED_CONSOLE_ERRORS + tuple(
            f"Response Status Error Code {status} " for status in self.expected_statuses
        )
        if message.type == "error" and not message.text.startswith(expected):
            self.seen.append(f"console error: {message.text}")

    def _response(self, response) -> None:
        if response.status >= 500 and response.status not in self.expected_statuses:
            self.seen.append(f"{response.status} from {response.request.method} {response.url}")


@pytest.fixture(scope="session")
def desk_server(django_db_setup, live_server):
    """The live server, made safe for several screens at once on in-memory SQLite.

    With an in-memory SQLite test database the live server hands every request thread
    the test's one connection, so two requests at once interleave their transactions on
    it ("database table is locked", savepoints that vanish). A real SQLite deployment
    gives each request its own connection and queues writers on the database lock
    (IMMEDIATE transactions); here requests take turns, which is the closest match.
    PostgreSQL needs none of this: each request thread has its own connection.

    The test database must exist before the live server starts, or the server threads
    open connections of their own to the in-memory database and lock each other out.
    """
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        server = live_server.thread.httpd
        app = server.get_app()
        turn = threading.Lock()

        def one_at_a_time(environ, start_response):
            with turn:
                return app(environ, start_response)

        server.set_app(one_at_a_time)
    return live_server


@pytest.fixture
def desk_page(browser: Browser, desk_server) -> Iterator[Callable[..., Page]]:
    """Open the desk in a browser context of its own, logged in through the login form.

    Each call is another screen (another person); the test fails if any of them hit a
    script error, a console error or a server error on the way.
    """
    opened: list[tuple[Page, Problems]] = []

    def open_desk(user) -> Page:
        context = browser.new_context(
            base_url=desk_server.url,
            locale="en-AU",
            timezone_id="Australia/Perth",
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        opened.append((page, Problems(page)))
        page.goto(reverse("queueing:desk"))
        expect(page.get_by_role("heading", name="Log in to ResQ")).to_be_visible()
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="ADD TO QUEUE")).to_be_visible()
        return page

    yield open_desk

    problems = [problem for _, watch in opened for problem in watch.seen]
    for page, _ in opened:
        page.context.close()
    if problems:
        pytest.fail("The browser reported problems:\n" + "\n".join(problems), pytrace=False)


def session_cookie(user, base_url: str, *, two_factor: bool = False) -> dict:
    """A logged-in session for `user` as a browser cookie, made without the login form.

    The login form has its own tests (and desk_page uses it); pages that only need a
    logged-in person start here, which saves a page load and a password check each.
    With `two_factor`, the session has passed two-factor authentication, as a staff
    user's must have to open admin.
    """
    client = Client()
    client.force_login(user)
    if two_factor:
        pass_two_factor(client, user)
    name = settings.SESSION_COOKIE_NAME
    return {"name": name, "value": client.cookies[name].value, "url": base_url}


@pytest.fixture
def open_page(browser: Browser, desk_server) -> Iterator[Callable[..., Page]]:
    """Open a page in a browser context of its own: open_page(path, user=…).

    `user` None is an anonymous visitor; `two_factor` passes two-factor authentication
    for it; other keywords go to the browser context (viewport, bypass_csp…);
    `expected_statuses` are server errors the test causes on purpose. Like desk_page,
    the test fails if a page hit a script error, a console error or a server error.
    """
    opened: list[tuple[Page, Problems]] = []

    def open_(
        path: str,
        *,
        user=None,
        two_factor: bool = False,
        expected_statuses: tuple[int, ...] = (),
        **context_options,
    ) -> Page:
        options = {
            "base_url": desk_server.url,
            "locale": "en-AU",
            "timezone_id": "Australia/Perth",
            "viewport": {"width": 1400, "height": 1000},
            **context_options,
        }
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        if user is not None:
            context.add_cookies([session_cookie(user, desk_server.url, two_factor=two_factor)])
        page = context.new_page()
        opened.append((page, Problems(page, expected_statuses)))
        # Not "load": the first dashboard waits on plotly.js (megabytes) from a server
        # that may answer one request at a time; tests wait for what they look at.
        page.goto(path, wait_until="domcontentloaded")
        return page

    yield open_

    problems = [problem for _, watch in opened for problem in watch.seen]
    for page, _ in opened:
        page.context.close()
    if problems:
        pytest.fail("The browser reported problems:\n" + "\n".join(problems), pytrace=False)
