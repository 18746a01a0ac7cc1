"""The student leader's core flow and the dashboard in Firefox and in WebKit (Safari's
engine), beside the Chromium that the other browser tests drive.

The service names recent Safari, Chrome, Firefox and Edge; Chromium stands for Chrome
and Edge. Here Debian's Firefox ESR is driven over Marionette, the protocol Firefox's
own WebDriver (geckodriver) speaks to it, and WebKitGTK's MiniBrowser over WebDriver
(WebKitWebDriver) with Selenium, on a virtual X display. Neither brings a browser
download of its own.

Playwright's locators are not available here, so things are found by the names a
person reads: a field by its label's text, a button by its accessible name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.tests.helpers import PASSWORD
from queueing.models import Team, Visit
from queueing.tests.factories import VisitFactory
from queueing.tests.test_accessibility import fill_the_desk
from queueing.tests.test_browser import SYNC_WITHIN_S
from reporting.models import Term

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    # The drivers' own dependencies, not ResQ's code.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mozinfo"),
    pytest.mark.filterwarnings("ignore:setting remote_server_addr:DeprecationWarning"),
]

# desk_server: the live server, safe for two screens at once on in-memory SQLite.
pytest_plugins = ["queueing.tests.browser"]

FIREFOX = "/usr/bin/firefox-esr"
WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver"
XVFB = "/usr/bin/Xvfb"
PACKAGES = {"firefox": ["firefox-esr"], "webkit": ["webkit2gtk-driver", "xvfb"]}

# A miss is reported in seconds, as in the Chromium tests.
TIMEOUT_S = 5.0
# The first dashboard waits on plotly.js (megabytes) from a one-request-at-a-time server.
CHARTS_TIMEOUT_S = 20.0

# Installed in every page the test opens, after it loads (neither driver can run a
# script before the page's own): what went wrong in the page from then on. Kept in an
# attribute of the document, which every JavaScript world of the page can read.
WATCH = """
const root = document.documentElement;
if (root.hasAttribute("data-test-problems")) return;
root.setAttribute("data-test-problems", "");
const note = (text) => root.setAttribute(
    "data-test-problems", root.getAttribute("data-test-problems") + text + "\\n");
window.addEventListener("error", (e) => note("script error: " + e.message));
window.addEventListener("unhandledrejection", (e) => note("unhandled rejection: " + e.reason));
document.addEventListener("securitypolicyviolation", (e) => note(
    "Content-Security-Policy refused " + e.blockedURI + " (" + e.violatedDirective + ")"));
document.addEventListener("htmx:responseError", (e) => {
    const status = e.detail.xhr.status;
    if (status >= 500) note(status + " from " + e.detail.pathInfo.requestPath);
});
"""

# The element a person finds by its label's text or its accessible name.
FIND = """
const [how, name] = arguments;
const clean = (text) => text.replace(/\\s+/g, " ").replace(/[:*]\\s*$/, "").trim();
const shown = (el) => el.getClientRects().length > 0;
if (how === "label") {
    for (const label of document.querySelectorAll("label")) {
        if (clean(label.textContent) === name && label.control && shown(label.control)) {
            return label.control;
        }
    }
    return null;
}
const named = (el) => clean(el.getAttribute("aria-label") || el.textContent || el.value || "");
for (const el of document.querySelectorAll(how)) {
    if (named(el) === name && shown(el)) return el;
}
return null;
"""

# The visible text of a region, found by its heading, or "" while it is not there.
REGION_TEXT = """
const [heading] = arguments;
for (const region of document.querySelectorAll("section[aria-labelledby], [role=dialog], dialog")) {
    const id = region.getAttribute("aria-labelledby");
    const title = id ? document.getElementById(id) : null;
    if (title && title.textContent.replace(/\\s+/g, " ").trim().startsWith(heading)) {
        return region.getClientRects().length ? region.innerText : "";
    }
}
return "";
"""


class Screen:
    """One browser window of a session, and the few things the tests do in it."""

    def __init__(self, browser: OtherBrowser, handle: str) -> None:
        self.browser = browser
        self.handle = handle

    def _here(self) -> OtherBrowser:
        self.browser.switch_to(self.handle)
        return self.browser

    def js(self, script: str, *args: Any) -> Any:
        return self._here().js(script, *args)

    def goto(self, path: str) -> None:
        self.collect()
        self._here().navigate(self.browser.base_url + path)
        self.watch()

    def watch(self) -> None:
        """Watch the page now open (after a navigation) for what goes wrong in it."""
        self.js(WATCH)

    def collect(self) -> None:
        """Keep what went wrong in the page now open, before it is left."""
        if self.js("return location.href").startswith(self.browser.base_url):
            self.browser.seen += self.problems()
            self.js("document.documentElement.removeAttribute('data-test-problems')")

    def wait_for(self, what: str, condition: Callable[[], Any], timeout: float = TIMEOUT_S) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            found = condition()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.browser.name}: {what} (waited {timeout:.0f} s)")
            time.sleep(0.1)

    def find(self, how: str, name: str) -> Any:
        return self.wait_for(f"no {how} {name!r}", lambda: self.js(FIND, how, name))

    def fill(self, label: str, text: str) -> None:
        field = self.find("label", label)
        field.clear()
        field.send_keys(text)

    def choose(self, label: str, option: str) -> None:
        """Pick an option of a <select> by its text, as a person does with the mouse."""
        select = self.find("label", label)
        select.click()
        for element in self.browser.options_of(select):
            if element.text.strip() == option:
                element.click()
                break
        else:
            raise AssertionError(f"{label} offers no {option!r}")

    def press(self, name: str, how: str = "button") -> None:
        self.find(how, name).click()

    def region(self, heading: str) -> str:
        return self.js(REGION_TEXT, heading)

    def expect_in(self, heading: str, text: str, timeout: float = TIMEOUT_S) -> float:
        """Wait until the region under `heading` shows `text`; the seconds it took."""
        started = time.monotonic()
        self.wait_for(
            f"{text!r} never showed in {heading!r}",
            lambda: text in self.region(heading),
            timeout,
        )
        return time.monotonic() - started

    def expect_not_in(self, heading: str, text: str, timeout: float = TIMEOUT_S) -> None:
        self.wait_for(
            f"{text!r} stayed in {heading!r}", lambda: text not in self.region(heading), timeout
        )

    def problems(self) -> list[str]:
        seen = self.js("return document.documentElement.getAttribute('data-test-problems') || ''")
        return [f"{self.browser.name}: {line}" for line in seen.splitlines() if line]


class OtherBrowser:
    """What the two drivers have in common, behind the same few calls."""

    name: str
    base_url: str
    seen: list[str]  # what went wrong in the pages left so far

    def js(self, script: str, *args: Any) -> Any:
        raise NotImplementedError

    def navigate(self, url: str) -> None:
        raise NotImplementedError

    def switch_to(self, handle: str) -> None:
        raise NotImplementedError

    def new_window(self) -> str:
        raise NotImplementedError

    def close_other_windows(self, keep: str) -> None:
        raise NotImplementedError

    def delete_all_cookies(self) -> None:
        raise NotImplementedError

    def options_of(self, select: Any) -> list[Any]:
        raise NotImplementedError

    def current_handle(self) -> str:
        raise NotImplementedError

    def console_errors(self) -> list[str]:
        """Errors the browser itself logged (where its driver can tell) since last asked."""
        return []

    def quit(self) -> None:
        raise NotImplementedError


class Firefox(OtherBrowser):
    """Firefox ESR over Marionette, with its console written to a log this reads."""

    name = "Firefox"

    def __init__(self, base_url: str) -> None:
        from marionette_driver.by import By
        from marionette_driver.marionette import Marionette

        self.By = By
        self.base_url = base_url
        self.folder = tempfile.mkdtemp(prefix="resq-firefox-")
        self.log = Path(self.folder, "firefox.log")
        self.read = 0
        self.client = Marionette(
            bin=FIREFOX,
            port=0,
            headless=True,
            gecko_log=str(self.log),
            prefs={
                # The page's console on standard output (which goes to the log), and
                # not the browser's own, which has nothing to do with ResQ.
                "devtools.console.stdout.content": True,
                "devtools.console.stdout.chrome": False,
                "intl.accept_languages": "en-AU",
            },
            startup_timeout=60,
        )
        self.client.start_session()
        self.client.set_window_rect(width=1400, height=1000)
        self.console_errors()  # what Firefox said while starting is not ResQ's

    def js(self, script: str, *args: Any) -> Any:
        return self.client.execute_script(script, script_args=list(args))

    def navigate(self, url: str) -> None:
        self.client.navigate(url)

    def current_handle(self) -> str:
        return self.client.current_window_handle

    def switch_to(self, handle: str) -> None:
        if self.client.current_window_handle != handle:
            self.client.switch_to_window(handle)

    def new_window(self) -> str:
        return self.client.open(type="window")["handle"]

    def close_other_windows(self, keep: str) -> None:
        for handle in self.client.window_handles:
            if handle != keep:
                self.client.switch_to_window(handle)
                self.client.close()
        self.client.switch_to_window(keep)

    def delete_all_cookies(self) -> None:
        self.client.delete_all_cookies()

    def options_of(self, select: Any) -> list[Any]:
        return select.find_elements(self.By.TAG_NAME, "option")

    def console_errors(self) -> list[str]:
        # Content's console.error lines, and script errors (a refused
        # Content-Security-Policy is one) in pages of the live server.
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        new, self.read = text[self.read :], len(text)
        return [
            f"Firefox: {line}"
            for line in new.splitlines()
            if line.startswith("console.error:")
            or (line.startswith("JavaScript error:") and self.base_url in line)
        ]

    def quit(self) -> None:
        try:
            self.client.delete_session()
        finally:
            self.client.cleanup()
            shutil.rmtree(self.folder, ignore_errors=True)


class WebKit(OtherBrowser):
    """WebKitGTK's MiniBrowser over WebDriver, on an X display of its own."""

    name = "WebKit"

    def __init__(self, base_url: str) -> None:
        from selenium import webdriver
        from selenium.webdriver.common.by import By
        from selenium.webdriver.webkitgtk.options import Options
        from selenium.webdriver.webkitgtk.service import Service

        self.By = By
        self.base_url = base_url
        # Xvfb picks a free display and writes its number to the pipe once it is ready.
        read_end, write_end = os.pipe()
        self.xvfb = subprocess.Popen(  # noqa: S603 (a fixed command)
            [
                XVFB,
                "-displayfd",
                str(write_end),
                "-screen",
                "0",
                "1400x1000x24",
                "-nolisten",
                "tcp",
            ],
            pass_fds=(write_end,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write_end)
        with os.fdopen(read_end) as display:
            number = display.readline().strip()
        try:
            options = Options()
            options.add_argument("--automation")
            service = Service(
                executable_path=WEBKIT_DRIVER,
                env={**os.environ, "DISPLAY": f":{number}", "LANG": "en_AU.UTF-8"},
            )
            self.driver = webdriver.WebKitGTK(options=options, service=service)
            self.driver.set_window_rect(width=1400, height=1000)
        except BaseException:
            self.xvfb.terminate()
            raise

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def navigate(self, url: str) -> None:
        self.driver.get(url)

    def current_handle(self) -> str:
        return self.driver.current_window_handle

    def switch_to(self, handle: str) -> None:
        if self.driver.current_window_handle != handle:
            self.driver.switch_to.window(handle)

    def new_window(self) -> str:
        self.driver.switch_to.new_window("window")
        return self.driver.current_window_handle

    def close_other_windows(self, keep: str) -> None:
        for handle in self.driver.window_handles:
            if handle != keep:
                self.driver.switch_to.window(handle)
                self.driver.close()
        self.driver.switch_to.window(keep)

    def delete_all_cookies(self) -> None:
        self.driver.delete_all_cookies()

    def options_of(self, select: Any) -> list[Any]:
        return select.find_elements(self.By.TAG_NAME, "option")

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            self.xvfb.terminate()
            self.xvfb.wait(timeout=10)


def _installed(engine: str) -> bool:
    if engine == "firefox":
        return os.access(FIREFOX, os.X_OK)
    return os.access(WEBKIT_DRIVER, os.X_OK) and os.access(XVFB, os.X_OK)


@pytest.fixture(scope="module", params=["firefox", "webkit"])
def other_browser(request, desk_server) -> Iterator[OtherBrowser]:
    engine = request.param
    # Imported here: a module-level import would come before pytest_plugins registers
    # the module, and its asserts would not be rewritten.
    from queueing.tests.browser import require_browser

    require_browser(
        _installed(engine),
        f"{engine} is not installed: install Debian's {' and '.join(PACKAGES[engine])} "
        "(or run `make browser`) to run the Firefox and WebKit tests.",
    )
    browser = Firefox(desk_server.url) if engine == "firefox" else WebKit(desk_server.url)
    yield browser
    browser.quit()


@pytest.fixture
def screens(other_browser: OtherBrowser) -> Iterator[Callable[[], Screen]]:
    """screens(): a window of the browser (the first one it has, then new ones), logged
    out; the test fails if any of them saw a script error, a console error or a server
    error on the way."""
    other_browser.delete_all_cookies()
    other_browser.seen = []
    other_browser.console_errors()  # an earlier test's
    opened: list[Screen] = []

    def open_screen() -> Screen:
        handle = other_browser.new_window() if opened else other_browser.current_handle()
        screen = Screen(other_browser, handle)
        opened.append(screen)
        return screen

    yield open_screen

    for screen in opened:
        screen.collect()
    problems = other_browser.seen + other_browser.console_errors()
    if opened:
        other_browser.close_other_windows(keep=opened[0].handle)
        # No page left polling the server while the test's data is cleared away.
        other_browser.navigate("about:blank")
    other_browser.delete_all_cookies()
    if problems:
        pytest.fail("The browser reported problems:\n" + "\n".join(problems), pytrace=False)


def log_in(screen: Screen, path: str, user) -> None:
    """Open `path` logged out and log in through the login form it leads to."""
    screen.goto(path)
    screen.wait_for(
        "no login form", lambda: "Log in to ResQ" in screen.js("return document.body.innerText")
    )
    screen.watch()
    screen.fill("Username", user.username)
    screen.fill("Password", PASSWORD)
    screen.collect()
    screen.press("Log in")


def test_it_runs_the_desk_in_firefox_and_webkit(screens, leader):
    Team.objects.filter(slug="studysmarter").update(available_staff=1)
    VisitFactory(
        student_name="Bo Chen",
        team=Team.objects.get(slug="librarian"),
        arrived_at=timezone.now() - timedelta(minutes=4),
    )
    desk = reverse("queueing:desk")
    lee = screens()
    log_in(lee, desk, leader)
    lee.wait_for("the desk never opened", lambda: lee.region("ADD TO QUEUE"))
    lee.watch()
    # A second screen on the same desk (a display beside it), which only its polling
    # keeps up to date: each change shows there within SYNC_WITHIN_S of showing here.
    board = screens()
    board.goto(desk)
    board.expect_in("Librarian Queue", "Bo Chen")

    lee.fill("Student Name", "Zoë Ng")
    lee.fill("Student Number", "21234567")
    lee.fill("Unit Code", "cits3200")
    lee.choose("Team", "STUDYSmarter")
    lee.choose("Enquiry Type", "Essay")
    lee.press("Add to queue")
    lee.expect_in("STUDYSmarter Queue", "Zoë Ng")
    lee.expect_in("STUDYSmarter Queue", "CITS3200")
    assert lee.find("label", "Student Name").get_property("value") == ""
    board.expect_in("STUDYSmarter Queue", "Zoë Ng", timeout=SYNC_WITHIN_S)

    lee.press("Start session for Zoë Ng")
    lee.expect_in("Current Sessions", "Zoë Ng")
    lee.expect_not_in("STUDYSmarter Queue", "Zoë Ng")
    board.expect_in("Current Sessions", "Zoë Ng", timeout=SYNC_WITHIN_S)

    lee.press("Finish session for Zoë Ng")
    lee.expect_in("Just finished or removed", "Zoë Ng")
    lee.expect_not_in("Current Sessions", "Zoë Ng")
    assert Visit.objects.get(student_name="Zoë Ng").status == Visit.Status.FINISHED

    # The remove dialog: a modal <dialog>, opened by the desk's script.
    lee.press("Remove Bo Chen", how="a")
    lee.expect_in("Remove Bo Chen from the Librarian Queue?", "Why is the student leaving")
    assert lee.js("return document.querySelector('dialog[open]').matches(':modal')")
    lee.press("Left before being seen", how="label")
    lee.press("Remove from queue")
    lee.wait_for(
        "the dialog stayed open",
        lambda: not lee.js("return document.querySelector('dialog[open]')"),
    )
    lee.expect_in("Just finished or removed", "Left before being seen")
    lee.expect_not_in("Librarian Queue", "Bo Chen")
    board.expect_not_in("Librarian Queue", "Bo Chen", timeout=SYNC_WITHIN_S)
    bo = Visit.objects.get(student_name="Bo Chen")
    assert (bo.status, bo.outcome) == (Visit.Status.REMOVED, Visit.Outcome.CANCELLED)


# Each chart drawn wider than the box it is drawn in: it spills out of its card.
SPILLING = """
return Array.from(document.querySelectorAll(".js-plotly-plot"), (plot) => {
    const drawn = plot.querySelector("svg.main-svg").getBoundingClientRect().width;
    const room = plot.getBoundingClientRect().width;
    const name = plot.dataset.figureId;
    return drawn > room + 1 ? name + ": " + drawn + " px drawn in " + room + " px" : "";
}).filter(Boolean);
"""


def test_it_draws_the_dashboard_in_firefox_and_webkit(screens, coordinator, leader):
    fill_the_desk(by=leader)
    today = timezone.localdate()
    Term.objects.create(
        name="This term", first_day=date.fromordinal(today.toordinal() - 14), last_day=today
    )
    cora = screens()
    log_in(cora, reverse("reporting:dashboard"), coordinator)
    cora.wait_for(
        "the dashboard never opened",
        lambda: "Data Analytics" in cora.js("return document.body.innerText"),
    )
    cora.watch()
    charts = cora.wait_for(
        "Plotly drew no chart",
        lambda: cora.js("return document.querySelectorAll('.chart svg.main-svg').length"),
        timeout=CHARTS_TIMEOUT_S,
    )
    assert charts >= 1
    # WebKit ran charts.js before reports.css applied and drew every chart at the
    # page's width (1254 px in a 642 px card) until charts.js refitted them on load.
    cora.wait_for("charts spill out of their cards", lambda: not cora.js(SPILLING))
