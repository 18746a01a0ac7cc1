"""Regenerate the pictures in docs/images/ for the user guide.

    uv run python docs/screenshots.py

Builds a throwaway SQLite database in a temporary directory (the project's own
database is never touched), loads the demo terms, forty weeks of demo history and a
busy "today", serves it with runserver on a free port, and photographs the pages with
Chromium driven by Playwright. The demo user gets an authenticator app in that
database, so the script passes Admin's two-factor step as a manager does: with a code.
Each picture is then stored as a palette PNG (about 30 KB each, a few hundred in all).
Takes about 40 seconds; needs Chromium where the browser tests find it.

The history is seeded, so the pictures only change with the date they are taken on.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"

DESKTOP = {"width": 1280, "height": 800}
TABLET = {"width": 768, "height": 1024}
LANDSCAPE = {"width": 1024, "height": 768}
PHONE = {"width": 360, "height": 640}
TV = {"width": 1280, "height": 720}
#: The header each htmx answer carries: seconds before the idle logout.
IDLE_LEFT = "X-Session-Idle-Left"
#: As `make run`: enough history for three terms, so term views have a previous term
#: to compare with.
WEEKS = 40
# demo_data's public demo login (every role, staff).
USERNAME = PASSWORD = "demo"  # noqa: S105


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_database(env: dict[str, str]) -> dict[str, object]:
    """Migrate and fill the throwaway database; return what the pictures need."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    quiet = io.StringIO()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("demo_terms", stdout=quiet)
    # Nine waiting (six advisers, three librarians) and one session already running.
    call_command("demo_data", weeks=WEEKS, today=9, stdout=quiet)
    return busy_today()


def busy_today() -> dict[str, object]:
    """Peak hour on today's board: more sessions running, one student waiting too long,
    one team with every staff member busy. Also enrol demo's authenticator app."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from accounts.tests.helpers import give_authenticator_app
    from queueing.management.commands.demo_data import DEMO_DISPLAY, events_for
    from queueing.management.commands.demo_data import Command as DemoData
    from queueing.models import (
        Board,
        CheckIn,
        Display,
        EnquiryType,
        StaffingChange,
        Team,
        Visit,
        VisitEvent,
    )
    from reporting.models import Term

    now = timezone.now()
    demo = get_user_model().objects.get(username=USERNAME)
    leader = get_user_model().objects.get(username="leader")
    teams = {team.slug: team for team in Team.objects.all()}
    advisers, librarians = teams["studysmarter"], teams["librarian"]
    kinds = {kind.name: kind for kind in EnquiryType.objects.all()}

    with transaction.atomic():
        sessions = [
            Visit(
                student_name="Grace Okafor",
                student_number="23415876",
                unit_code="PSYC1101",
                team=advisers,
                enquiry_type=kinds["Essay"],
                status=Visit.Status.IN_SESSION,
                arrived_at=now - timedelta(minutes=24, seconds=10),
                started_at=now - timedelta(minutes=12, seconds=35),
                added_by=leader,
                started_by=demo,
            ),
            Visit(
                student_name="Kai Nakamura",
                student_number="22987310",
                unit_code="LAWS1111",
                team=librarians,
                enquiry_type=kinds["Finding Sources"],
                status=Visit.Status.IN_SESSION,
                arrived_at=now - timedelta(minutes=15, seconds=40),
                started_at=now - timedelta(minutes=4, seconds=5),
                added_by=leader,
                started_by=demo,
            ),
        ]
        DemoData.give_tickets(sessions, now=now)
        Visit.objects.bulk_create(sessions)
        VisitEvent.objects.bulk_create(event for visit in sessions for event in events_for(visit))
        # The longest wait passes 30 minutes, so the board shows every colour and "!".
        oldest = Visit.objects.filter(status=Visit.Status.WAITING).order_by("arrived_at").first()
        if oldest:
            Visit.objects.filter(pk=oldest.pk).update(arrived_at=now - timedelta(minutes=34))
        for team, available in ((advisers, 3), (librarians, 1)):
            StaffingChange.objects.create(
                team=team,
                available=available,
                delta=available - team.available_staff,
                at=now - timedelta(minutes=30),
                by=demo,
            )
            Team.objects.filter(pk=team.pk).update(available_staff=available)
        Board.bump()

    # A student who checked in from a phone, waiting for the desk; the demo's display.
    screen = Display.objects.get(name=DEMO_DISPLAY)
    CheckIn.objects.create(
        display=screen,
        student_name="Priya Raman",
        student_number="23871654",
        unit_code="EDUC2210",
        enquiry_type=kinds["Referencing"],
        created_at=now - timedelta(minutes=1, seconds=20),
    )
    Board.bump()
    newest = Visit.objects.filter(status=Visit.Status.WAITING, team=advisers).last()

    today = timezone.localdate()
    term = Term.objects.filter(first_day__lte=today).order_by("-first_day").first()
    # A teaching week (the term's seventh, or last week) with weeks to compare it to.
    week = today - timedelta(days=today.weekday() + 5)
    if term and term.first_day + timedelta(weeks=6, days=2) < week:
        week = term.first_day + timedelta(weeks=6, days=2)
    return {
        "secret": give_authenticator_app(demo),
        "term": term.pk if term else "",
        "week": week,
        "display": screen.token,
        "checkin": screen.checkin_token,
        "student": newest.student_key,
    }


def wait_for(url: str, *, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (our own server)
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def shoot(base_url: str, facts: dict[str, object]) -> list[Path]:
    # Playwright runs an event loop in this thread; nothing below touches the ORM.
    from django.utils import timezone
    from playwright.sync_api import expect, sync_playwright

    from accounts.tests.helpers import totp_code
    from queueing.tests.browser import CHROMIUM, CHROMIUM_ARGS  # the browser tests' Chromium

    saved: list[Path] = []

    def save(page, name: str, *, element: str = "", size: tuple[int, int] = (0, 0)) -> None:
        """Photograph the window, one element, or the window's top-left `size` (pictures
        of a page's top stay small: a few hundred KB for the whole set)."""
        path = IMAGES / f"{name}.png"
        page.wait_for_timeout(400)
        if element:
            page.locator(element).screenshot(path=path, animations="disabled")
        elif size != (0, 0):
            clip = {"x": 0, "y": 0, "width": size[0], "height": size[1]}
            page.screenshot(path=path, clip=clip, animations="disabled")
        else:
            page.screenshot(path=path, animations="disabled")
        saved.append(path)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            base_url=base_url,
            viewport=DESKTOP,
            device_scale_factor=1,
            locale="en-AU",
            timezone_id="Australia/Perth",
        )
        context.set_default_timeout(15_000)
        page = context.new_page()

        # Log in as a manager does: password, then the authenticator app's code.
        page.goto("/desk/")
        page.get_by_label("Username").fill(USERNAME)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
        page.locator("input[name=code]").fill(totp_code(str(facts["secret"])))
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="ADD TO QUEUE")).to_be_visible()

        # The desk at peak, once the first poll has said "synced".
        expect(page.locator("#sync-status")).not_to_have_attribute("data-state", "static")
        save(page, "desk-peak")
        # One queue's Expected Start and a newcomer's estimate in its heading.
        save(page, "desk-estimates", element="section[aria-labelledby=queue-studysmarter-heading]")

        # The same desk on a tablet in landscape (or half a wide screen): stacked rows,
        # every button on screen.
        page.set_viewport_size(LANDSCAPE)
        page.goto("/desk/")
        expect(page.locator("#sync-status")).not_to_have_attribute("data-state", "static")
        save(page, "desk-1024")

        # "Still there?": the server says how long the session has left on every htmx
        # answer; two minutes before the idle logout the desk asks. Rather than wait 28
        # minutes, the polls' answers are told that time has come.
        def nearly_idle(route) -> None:
            response = route.fetch()
            route.fulfill(response=response, headers={**response.headers, IDLE_LEFT: "100"})

        page.route("**/desk/poll/**", nearly_idle)
        still_there = page.get_by_role("alert").filter(has_text="Still there?")
        expect(still_there).to_be_visible()
        save(page, "desk-still-there", size=(1024, 420))
        page.unroute("**/desk/poll/**")
        page.set_viewport_size(DESKTOP)

        # The add form refusing a half-typed student.
        page.get_by_label("Student Name").fill("Ayşe Yılmaz")
        page.get_by_label("Student Number").fill("2123")
        page.get_by_role("button", name="Add to queue").click()
        expect(page.locator("#add-form .errorlist").first).to_be_visible()
        save(page, "desk-add-error", element=".add-panel")

        # Data Analytics: the term view, then the printable week and Export Data.
        page.goto(f"/reports/?view=term&term={facts['term']}")
        page.wait_for_load_state("networkidle")
        save(page, "analytics-term")
        # The last four weeks' wait estimates (the demo replays them) against the waits.
        today = timezone.localdate()
        page.goto(
            f"/reports/?view=range&start={today - timedelta(days=28)}&end={today}#wait-estimates"
        )
        page.wait_for_load_state("networkidle")
        save(page, "wait-estimates", element="#wait-estimates")
        page.goto(f"/reports/week/?day={facts['week']:%Y-%m-%d}")
        page.wait_for_load_state("networkidle")
        save(page, "weekly-summary", size=(1280, 640))
        # Staffing advice for the week after that one: a teaching week with earlier
        # terms and recent weeks to forecast from.
        page.goto(f"/reports/staffing/?week={facts['week'] + timedelta(days=7):%Y-%m-%d}")
        save(page, "staffing-advice", size=(1280, 700))
        page.goto("/reports/export/")
        save(page, "export-data", size=(992, 700))

        # Admin's visit list (two-factor was passed at login).
        # Admin's side menu, open on a wide window, is closed: the list is the subject.
        page.goto("/admin/")
        page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
        page.goto("/admin/queueing/visit/")
        expect(page.locator("#result_list")).to_be_visible()
        save(page, "admin-visits", size=(1280, 600))

        # The desk on a tablet in portrait.
        page.set_viewport_size(TABLET)
        page.goto("/desk/")
        expect(page.locator("#sync-status")).not_to_have_attribute("data-state", "static")
        save(page, "desk-tablet")

        context.close()

        # The students' side, with no login: the room's screen on a 720-line TV, the
        # check-in form and a student's own page on a phone.
        for name, path, viewport, full in (
            ("room-display", f"/display/{facts['display']}/", TV, False),
            ("checkin-phone", f"/checkin/{facts['checkin']}/", PHONE, True),
            ("student-place", f"/me/{facts['student']}/", PHONE, False),
        ):  # fmt: skip
            students = browser.new_context(
                base_url=base_url,
                viewport=viewport,
                device_scale_factor=1,
                locale="en-AU",
                timezone_id="Australia/Perth",
            )
            page = students.new_page()
            page.goto(path)
            expect(page.locator("#heartbeat, form").first).to_be_visible()
            if full:
                height = page.evaluate("document.documentElement.scrollHeight")
                page.set_viewport_size({**viewport, "height": min(height, 1400)})
            save(page, name)
            students.close()
        browser.close()
    return saved


def shrink_png(path: Path) -> None:
    """Rewrite a screenshot as a palette PNG with 16 levels per colour channel: about a
    third of the size, and no visible change for flat interface colours. A picture
    that still has more than 256 colours (a photo, a gradient) is left as it was.

    Plain zlib and struct, so regenerating the pictures needs no imaging package."""
    data = path.read_bytes()
    header, compressed = b"", bytearray()
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if (depth, colour, interlace) != (8, 2, 0):  # only what Chromium writes: 8-bit RGB
        return
    pixels = unfilter(zlib.decompress(compressed), width, height, channels=3)
    levels = bytes((value & 0xF0) | (value >> 4) for value in range(256))
    pixels = pixels.translate(levels)
    palette: dict[bytes, int] = {}
    indices = bytearray(width * height)
    for i in range(width * height):
        rgb = pixels[3 * i : 3 * i + 3]
        index = palette.get(rgb)
        if index is None:
            if len(palette) == 256:
                return
            index = palette[rgb] = len(palette)
        indices[i] = index
    rows = b"".join(b"\x00" + indices[y * width : (y + 1) * width] for y in range(height))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0))
        + png_chunk(b"PLTE", b"".join(palette))
        + png_chunk(b"IDAT", zlib.compress(rows, 9))
        + png_chunk(b"IEND", b"")
    )


def unfilter(raw: bytes, width: int, height: int, *, channels: int) -> bytes:
    """Undo PNG's per-row filters (PNG specification, section 9)."""
    stride = width * channels
    out = bytearray()
    previous = bytearray(stride)
    pos = 0
    for _ in range(height):
        kind, row = raw[pos], bytearray(raw[pos + 1 : pos + 1 + stride])
        pos += 1 + stride
        if kind == 1:
            for i in range(channels, stride):
                row[i] = (row[i] + row[i - channels]) & 255
        elif kind == 2:
            row = bytearray((a + b) & 255 for a, b in zip(row, previous, strict=True))
        elif kind in (3, 4):
            for i in range(stride):
                left = row[i - channels] if i >= channels else 0
                up = previous[i]
                if kind == 3:
                    row[i] = (row[i] + ((left + up) >> 1)) & 255
                    continue
                corner = previous[i - channels] if i >= channels else 0
                guess = left + up - corner
                far_left, far_up, far_corner = (
                    abs(guess - left),
                    abs(guess - up),
                    abs(guess - corner),
                )
                if far_left <= far_up and far_left <= far_corner:
                    row[i] = (row[i] + left) & 255
                elif far_up <= far_corner:
                    row[i] = (row[i] + up) & 255
                else:
                    row[i] = (row[i] + corner) & 255
        out += row
        previous = row
    return bytes(out)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def main() -> None:
    started = time.perf_counter()
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="resq-screenshots-") as tmp:
        env = {
            "DJANGO_SETTINGS_MODULE": "resq.settings",
            "DATABASE_URL": f"sqlite:///{Path(tmp) / 'screenshots.sqlite3'}",
            "DEBUG": "on",
            "TIME_ZONE": "Australia/Perth",
            "PYTHONUNBUFFERED": "1",
        }
        facts = build_database(env)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(  # noqa: S603 (our own interpreter and manage.py)
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(f"{base_url}/healthz")
            saved = shoot(base_url, facts)
        finally:
            server.terminate()
            server.wait(timeout=10)
    for path in saved:
        shrink_png(path)
    total = sum(path.stat().st_size for path in saved)
    for path in saved:
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size / 1024:.0f} KB")
    print(f"{len(saved)} pictures, {total / 1024:.0f} KB, in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
