"""Crash safety, tested for real: nothing the desk acknowledged is lost when its server
or its database dies, and no visit is ever left in an impossible state.

One run, against gunicorn (sync workers, DEBUG off, production settings through the
environment) on a PostgreSQL database of its own, `resq_crash_test`, which it creates
and drops:

1. several desk screens (threads, each logged in as a student leader through the login
   form, sending its CSRF token) add students, start, finish and remove them and change
   staffing as fast as they are answered, and record every action the server
   acknowledged: a 2xx whose message says it was done, or the redirect of a plain form;
2. meanwhile the server is crashed: `kill -9` of a random worker about once a second
   (the master starts new ones), then `kill -9` of the master itself, after which
   gunicorn is started again as a supervisor would; then PostgreSQL is restarted while
   the screens keep working: a fast shutdown by default (open transactions cut off),
   or with `--postgres-mode immediate` as in a crash (no shutdown checkpoint: it
   replays its write-ahead log when it starts, so the outage is longer);
3. at the end it checks the database: every acknowledged action is there (each added
   student by the unique name the screen gave them, each start, finish and removal by
   its event and the visit's status, each staffing change by its history), and no visit
   is in an impossible state (the check constraints, and explicit queries: timestamps
   against status, sessions against staff, the events replayed against the status,
   the board version against the changes, staffing against its history).

It prints the counts and exits 1 if anything acknowledged was lost or any state is
impossible, or if the desk did not recover after a crash (2 if PostgreSQL could not
be brought back up).

    uv run python bench/crash_test.py                        # full run, about 80 s
    uv run python bench/crash_test.py --quick                # about 45 s
    uv run python bench/crash_test.py --no-postgres-restart  # leave PostgreSQL alone

Restarting PostgreSQL cuts off every other user of that server for a few seconds; the
default command restarts the Debian cluster that listens on the database's port
(`pg_ctlcluster`, as root or the cluster's owner), `--postgres-restart-command` runs
another (for instance `docker restart db`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the project, not bench/
from bench import harness  # noqa: E402

PORTS = range(8900, 9000)
DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/resq_crash_test"
LEADER = "bench-leader"
NAME_PREFIX = "Crash"
REQUEST_TIMEOUT = 10.0
READY_TIMEOUT = 60.0
ORPHAN_SECONDS = 2.0  # how long a dead master's workers serve on before they die too
POSTGRES_BACK_WITHIN = 60.0
ERROR_PAUSE = 0.1  # a screen that got no answer waits this long before its next action
MAX_ACTIVE = 4  # visits a screen keeps waiting or in session at most
MAX_STAFF = 5

ADDED, STARTED, FINISHED, REMOVED = "add", "start", "finish", "remove"
RESULTS = ("acknowledged", "refused", "failed")


# --- what the screens did --------------------------------------------------------------


@dataclass
class Action:
    """One request a screen sent, and what it made of the answer."""

    kind: str  # add, start, finish, remove, staff+1, staff-1
    phase: str
    name: str = ""  # the student's (unique) name, for visits
    pk: int | None = None
    team: str = ""  # team slug, for staffing
    # acknowledged: done, as the answer said; refused: answered, not done (a rule said
    # no, e.g. no free staff); failed: no usable answer (the outcome is unknown)
    result: str = ""
    detail: str = ""


@dataclass
class Board:
    """What a screen knows of the board from the last one it was sent."""

    visits: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # name: pk, state, team
    staff: dict[str, int] = field(default_factory=dict)
    in_session: dict[str, int] = field(default_factory=dict)


QUEUE = re.compile(
    r'<section class="queue" aria-labelledby="queue-([\w-]+)-heading">(.*?)</section>', re.S
)
SESSIONS = re.compile(r'<section class="sessions".*?</section>', re.S)
ROW = re.compile(r'<tr id="visit-(\d+)">(.*?)</tr>', re.S)
ROW_NAME = re.compile(r'<th scope="row">([^<]*)</th>')
RECENT = re.compile(
    r'<li data-undo-until="[^"]*">\s*<span><strong>([^<]*)</strong>.*?id="undo-end-(\d+)"', re.S
)
COUNTER = re.compile(
    r'aria-labelledby="staffing-([\w-]+)">(\d+)</output>'
    r'.*?<span class="counter-note">(\d+) in session',
    re.S,
)
# A message with an undo button wraps its text in one more element.
MESSAGE = re.compile(r'<div class="alert (\w+)">(?:\s*<[^p/][^>]*>)*\s*<p>([^<]*)</p>')


def spell(number: int, width: int) -> str:
    """A number in letters (names hold letters only): spell(27, 3) == "Abb"."""
    letters = []
    for _ in range(width):
        number, digit = divmod(number, 26)
        letters.append(chr(ord("a") + digit))
    return "".join(reversed(letters)).capitalize()


def read_board(html: str) -> Board | None:
    if 'id="board"' not in html:
        return None
    board = Board()
    for slug, section in QUEUE.findall(html):
        for pk, row in ROW.findall(section):
            if name := ROW_NAME.search(row):
                board.visits[unescape(name[1])] = (int(pk), "waiting", slug)
    for section in SESSIONS.findall(html):
        for pk, row in ROW.findall(section):
            if name := ROW_NAME.search(row):
                board.visits[unescape(name[1])] = (int(pk), "in_session", "")
    for name, pk in RECENT.findall(html):
        board.visits[unescape(name)] = (int(pk), "ended", "")
    for slug, staff, in_session in COUNTER.findall(html):
        board.staff[slug] = int(staff)
        board.in_session[slug] = int(in_session)
    return board


def messages(html: str) -> list[tuple[str, str]]:
    return [(level, unescape(text)) for level, text in MESSAGE.findall(html)]


# --- a desk screen -----------------------------------------------------------------------


class Screen(threading.Thread):
    """A student leader's screen: one action after another, each from what the last
    board it was sent showed, on its own students only (so every outcome is its own)."""

    def __init__(
        self,
        index: int,
        port: int,
        cookies: dict[str, str],
        teams: dict[str, int],
        enquiry_ids: list[int],
        phase: Callable[[], str],
        stop: threading.Event,
        seed: int,
    ) -> None:
        super().__init__(name=f"screen-{index}", daemon=True)
        self.index = index
        self.port = port
        self.cookies = cookies
        self.teams = teams  # slug: pk
        self.enquiry_ids = enquiry_ids
        self.phase = phase
        self.stop = stop
        self.random = random.Random(seed * 1000 + index)
        self.board = Board()
        self.mine: dict[str, tuple[int | None, str]] = {}  # name: pk, state as last seen
        self.added = 0
        self.actions: list[Action] = []
        self.htmx = {
            "X-CSRFToken": cookies["csrftoken"],
            "HX-Request": "true",
            "HX-Current-URL": f"{harness.base_url(port)}/desk/",
        }

    def run(self) -> None:
        with harness.client(self.port, self.cookies, timeout=REQUEST_TIMEOUT) as http:
            while not self.stop.is_set():
                action, path, form, htmx = self.next_action()
                action.phase = self.phase()
                self.send(http, action, path, form, htmx=htmx)
                self.actions.append(action)
                if action.result == "failed":
                    self.stop.wait(ERROR_PAUSE)

    def next_action(self) -> tuple[Action, str, dict[str, str], bool]:
        waiting = [(n, pk) for n, (pk, s) in self.mine.items() if s == "waiting" and pk]
        in_session = [(n, pk) for n, (pk, s) in self.mine.items() if s == "in_session" and pk]
        free = {
            slug
            for slug, staff in self.board.staff.items()
            if staff > self.board.in_session.get(slug, 0)
        }
        startable = [(n, pk) for n, pk in waiting if self.team_of(n) in free]
        roll = self.random.random()
        if len(waiting) + len(in_session) < MAX_ACTIVE and (roll < 0.35 or not waiting):
            return self.add()
        if roll < 0.55 and startable:
            name, pk = self.random.choice(startable)
            return Action(STARTED, "", name, pk), f"/desk/visits/{pk}/start/", {}, True
        if roll < 0.80 and in_session:
            name, pk = self.random.choice(in_session)
            return Action(FINISHED, "", name, pk), f"/desk/visits/{pk}/finish/", {}, True
        if roll < 0.88 and waiting:
            name, pk = self.random.choice(waiting)
            outcome = self.random.choice(["cancelled", "no_show"])
            path = f"/desk/visits/{pk}/remove/"
            return Action(REMOVED, "", name, pk), path, {"outcome": outcome}, True
        slug = self.random.choice(sorted(self.teams))
        staff = self.board.staff.get(slug, 0)
        delta = 1 if staff < 2 or (staff < MAX_STAFF and self.random.random() < 0.6) else -1
        path = f"/desk/teams/{slug}/staffing/"
        return Action(f"staff{delta:+d}", "", team=slug), path, {"delta": str(delta)}, True

    def team_of(self, name: str) -> str:
        return self.board.visits.get(name, (0, "", ""))[2]

    def add(self) -> tuple[Action, str, dict[str, str], bool]:
        self.added += 1
        name = f"{NAME_PREFIX} {spell(self.index, 2)} {spell(self.added, 4)}"
        slug = self.random.choice(sorted(self.teams))
        form = {
            "student_name": name,
            "student_number": f"{40000000 + self.index * 100000 + self.added:08d}",
            "unit_code": "CITS3200",
            "team": str(self.teams[slug]),
            "enquiry_type": str(self.random.choice(self.enquiry_ids)),
        }
        self.mine[name] = (None, "adding")
        # Every third add is a plain form post, as with JavaScript off: its
        # acknowledgement is the redirect back to the desk.
        htmx = self.added % 3 != 0
        return Action(ADDED, "", name), "/desk/visits/add/", form, htmx

    def send(
        self, http: httpx.Client, action: Action, path: str, form: dict, *, htmx: bool
    ) -> None:
        if not htmx:
            form = form | {"csrfmiddlewaretoken": self.cookies["csrftoken"]}
        try:
            response = http.post(path, data=form, headers=self.htmx if htmx else None)
        except httpx.HTTPError as exc:
            action.result, action.detail = "failed", type(exc).__name__
            self.forget(action)
            return
        status = response.status_code
        if status == 503 and response.headers.get("x-database") == "unreachable":
            action.result, action.detail = "failed", "HTTP 503 database unreachable"
        elif not htmx and status == 302 and response.headers.get("location") == "/desk/":
            action.result, action.detail = "acknowledged", "302"
        elif htmx and status == 200:
            action.result, action.detail = self.judge(action, response.text)
            if board := read_board(response.text):
                self.see(board)
        else:
            action.result, action.detail = "failed", f"HTTP {status}"
        if action.result == "failed":
            self.forget(action)
        elif action.result == "acknowledged" and action.kind != ADDED and action.pk:
            state = {STARTED: "in_session", FINISHED: "ended", REMOVED: "ended"}.get(action.kind)
            if state:
                self.mine[action.name] = (action.pk, state)

    def judge(self, action: Action, body: str) -> tuple[str, str]:
        """Acknowledged only when the desk said it was done; refused when it said why not."""
        said = messages(body)
        done = {
            ADDED: f"{action.name} added to the",
            STARTED: f"Session started for {action.name}.",
            FINISHED: f"Session finished for {action.name}.",
            REMOVED: f"{action.name} removed from the",
        }.get(action.kind)
        for level, text in said:
            if level == "success" and done and text.startswith(done):
                return "acknowledged", "200"
            if level in ("error", "warning"):
                if action.name:
                    text = text.replace(action.name, "<student>")
                return "refused", re.sub(r"\d+", "N", text)
        if done is None:  # staffing says nothing when it works
            return "acknowledged", "200"
        if action.kind == ADDED and 'class="errorlist' in body:
            return "refused", "the form found an error"
        return "failed", "200 without a message"

    def forget(self, action: Action) -> None:
        """No usable answer: the screen does not know what happened to that student
        until a board shows them again."""
        if action.name:
            pk = self.mine.get(action.name, (None, ""))[0]
            self.mine[action.name] = (pk, "unknown")

    def see(self, board: Board) -> None:
        self.board = board
        for name, (pk, state) in list(self.mine.items()):
            if name in board.visits:
                seen_pk, seen_state, _ = board.visits[name]
                self.mine[name] = (seen_pk, seen_state)
            elif state in ("unknown", "adding") and pk is None:
                continue  # an add that may never have happened: nothing to act on
            elif state == "ended":
                del self.mine[name]  # done with, and off the board


class Watcher(threading.Thread):
    """A desk screen that only polls, four times a second: what it was answered shows
    what every open board saw during each crash."""

    def __init__(self, port: int, cookies: dict[str, str], phase: Callable[[], str], stop) -> None:
        super().__init__(name="watcher", daemon=True)
        self.port = port
        self.cookies = cookies
        self.phase = phase
        self.stop = stop
        self.answers: Counter[tuple[str, str]] = Counter()

    def run(self) -> None:
        with harness.client(self.port, self.cookies, timeout=5) as http:
            while not self.stop.is_set():
                try:
                    response = http.get("/desk/poll/?v=0", headers={"HX-Request": "true"})
                    answer = f"HTTP {response.status_code}"
                    if response.headers.get("x-database") == "unreachable":
                        answer += " database unreachable"
                except httpx.HTTPError as exc:
                    answer = type(exc).__name__
                self.answers[(self.phase(), answer)] += 1
                self.stop.wait(0.25)


# --- crashing things -------------------------------------------------------------------


def kill_master(server: harness.Server, orphan_seconds: float) -> str:
    """kill -9 the master, then, after `orphan_seconds`, its workers. Returns what
    happened.

    Orphaned sync workers go on serving: gunicorn's worker looks for its parent only
    when no connection is waiting, which under load is never. In a container the
    workers die with the master (the first process); here they are killed a moment
    later, mid-request, as the container runtime would.
    """
    master = server.process
    os.kill(master.pid, signal.SIGKILL)
    master.wait(timeout=10)
    server.process = None  # nothing left for stop() to stop politely
    time.sleep(orphan_seconds)
    orphans = [p for p in harness.processes_in_group(master.pid) if p.state != "Z"]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(master.pid, signal.SIGKILL)
    if not orphans:
        return "its workers had exited by themselves"
    return (
        f"its {len(orphans)} orphaned workers served on for {orphan_seconds:g} s, "
        "then were killed too"
    )


def postgres_restart_command(db_url: str, mode: str) -> list[str] | None:
    """Restart the Debian cluster that listens on the database's port, if this is
    Debian. "immediate" stops it as a crash would (no checkpoint: it replays its
    write-ahead log when it starts); "fast" rolls back what is open and shuts down
    cleanly."""
    if shutil.which("pg_lsclusters") is None or shutil.which("pg_ctlcluster") is None:
        return None
    port = str(urlsplit(db_url).port or 5432)
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
    ).stdout
    for line in listing.splitlines():
        version, cluster, cluster_port, *_ = line.split()
        if cluster_port == port:
            return [
                "pg_ctlcluster",
                "--skip-systemctl-redirect",
                f"--mode={mode}",
                version,
                cluster,
                "restart",
            ]
    return None


def postgres_answers(db_url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(harness.admin_url(db_url), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


@dataclass
class Restart:
    command: list[str]
    ok: bool = False
    outage_s: float = 0.0
    output: str = ""


def restart_postgres(restart: Restart, db_url: str) -> None:
    """Run the restart command and wait until PostgreSQL answers again.

    A checkpoint first keeps the outage short for everyone else on the server: after a
    crash PostgreSQL replays its log from the last checkpoint, which would otherwise be
    up to five minutes of every database's writes. What the screens commit from here
    on is still recovered from the log alone.
    """
    import psycopg

    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(harness.admin_url(db_url), autocommit=True, connect_timeout=5) as conn,
    ):
        conn.execute("CHECKPOINT")
    started = time.monotonic()
    result = subprocess.run(
        restart.command, capture_output=True, text=True, timeout=120, check=False
    )
    restart.output = (result.stdout + result.stderr).strip()
    deadline = time.monotonic() + POSTGRES_BACK_WITHIN
    while time.monotonic() < deadline:
        if postgres_answers(db_url):
            restart.ok = True
            break
        time.sleep(0.2)
    restart.outage_s = time.monotonic() - started


# --- the database ------------------------------------------------------------------------


def starting_point(password: str) -> dict:
    """A student leader, two staff per team; what the run starts from."""
    from queueing.models import Board as BoardRow
    from queueing.models import EnquiryType, StaffingChange, Team

    user = harness.create_user(LEADER, "Student leader", password)
    for team in Team.objects.filter(is_active=True):
        if team.available_staff != 2:
            team.change_staffing(2 - team.available_staff, by=user)
    return {
        "teams": dict(Team.objects.filter(is_active=True).values_list("slug", "pk")),
        "enquiry_ids": list(
            EnquiryType.objects.filter(is_active=True).values_list("pk", flat=True)
        ),
        "version": BoardRow.current_version(),
        "staffing_changes": StaffingChange.objects.count(),
        "staff": dict(Team.objects.values_list("slug", "available_staff")),
    }


def check(actions: list[Action], start: dict) -> dict:
    """Every acknowledged action against the database, and every impossible state."""
    from django.db import connection, connections

    from queueing.models import Board as BoardRow
    from queueing.models import StaffingChange, Team, Visit, VisitEvent

    connections.close_all()  # the connection from before PostgreSQL restarted is gone
    visits = {v.student_name: v for v in Visit.objects.filter(student_name__startswith=NAME_PREFIX)}
    events: dict[int, list[VisitEvent]] = {}
    for event in VisitEvent.objects.filter(visit__in=visits.values()).order_by("at", "pk"):
        events.setdefault(event.visit_id, []).append(event)
    event_for = {
        STARTED: VisitEvent.Action.STARTED,
        FINISHED: VisitEvent.Action.FINISHED,
        REMOVED: VisitEvent.Action.REMOVED,
    }
    status_after = {
        ADDED: set(Visit.Status),
        STARTED: {Visit.Status.IN_SESSION, Visit.Status.FINISHED},
        FINISHED: {Visit.Status.FINISHED},
        REMOVED: {Visit.Status.REMOVED},
    }
    slugs = dict(Team.objects.values_list("pk", "slug"))
    changes = Counter(
        (slugs[team], delta)
        for team, delta in StaffingChange.objects.order_by().values_list("team", "delta")
    )
    setup_changes = Counter(
        (slug, 2 - staff) for slug, staff in start["staff"].items() if staff != 2
    )
    acknowledged_staffing: Counter[tuple[str, int]] = Counter()
    lost: list[str] = []
    found = 0
    for action in actions:
        if action.result != "acknowledged":
            continue
        if action.kind.startswith("staff"):
            acknowledged_staffing[(action.team, int(action.kind[5:]))] += 1
            continue
        visit = visits.get(action.name)
        ok = visit is not None and visit.status in status_after[action.kind]
        if ok and action.kind in event_for:
            ok = any(e.action == event_for[action.kind] for e in events.get(visit.pk, []))
        if ok and action.kind == ADDED:
            ok = any(e.action == VisitEvent.Action.ADDED for e in events.get(visit.pk, []))
        if ok:
            found += 1
        else:
            lost.append(f"{action.kind} {action.name} ({action.phase})")
    for (slug, delta), count in acknowledged_staffing.items():
        recorded = changes[(slug, delta)] - setup_changes[(slug, delta)]
        found += min(count, recorded)
        if recorded < count:
            lost.append(f"{count - recorded} × staffing {delta:+d} for {slug}")

    applied_unacknowledged = sum(
        1 for a in actions if a.kind == ADDED and a.result == "failed" and a.name in visits
    )

    impossible: Counter[str] = Counter(
        dict.fromkeys(
            [
                "visit timestamps or outcome disagree with its status",
                "team with more sessions than staff",
                "visit check constraints missing",
                "visit whose events do not replay to its status",
                "visit with a transition recorded twice",
                "board version moves not matching the changes",
                "team whose staffing disagrees with its history",
            ],
            0,
        )
    )
    with connection.cursor() as cursor:
        # The check constraints' own conditions, asked directly.
        cursor.execute(
            """
            SELECT count(*) FROM queueing_visit WHERE NOT (
                (status = 'waiting' AND started_at IS NULL AND ended_at IS NULL AND outcome = '')
             OR (status = 'in_session' AND started_at IS NOT NULL AND ended_at IS NULL
                 AND outcome = '')
             OR (status = 'finished' AND started_at IS NOT NULL AND ended_at IS NOT NULL
                 AND outcome = 'finished' AND ended_at >= started_at)
             OR (status = 'removed' AND ended_at IS NOT NULL
                 AND outcome IN ('cancelled', 'no_show', 'out_of_time'))
            )
            """
        )
        impossible["visit timestamps or outcome disagree with its status"] = cursor.fetchone()[0]
        cursor.execute(
            """
            SELECT count(*) FROM queueing_team t WHERE t.available_staff < (
                SELECT count(*) FROM queueing_visit v
                WHERE v.team_id = t.id AND v.status = 'in_session')
            """
        )
        impossible["team with more sessions than staff"] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'queueing_visit'::regclass "
            "AND contype = 'c' AND conname IN ('visit_status_valid', 'visit_state_consistent')"
        )
        constraints = cursor.fetchone()[0]
        # What makes a commit survive a crash of the machine, not only of PostgreSQL.
        durability = {}
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            cursor.execute(f"SHOW {setting}")
            durability[setting] = cursor.fetchone()[0]
    impossible["visit check constraints missing"] = 2 - constraints

    for visit in visits.values():
        trail = events.get(visit.pk, [])
        status = ""
        sound = bool(trail) and trail[0].action == VisitEvent.Action.ADDED
        for event in trail:
            sound = sound and event.from_status == status
            status = event.to_status
        if not sound or status != visit.status:
            impossible["visit whose events do not replay to its status"] += 1
        kinds = Counter(event.action for event in trail)
        if any(count > 1 for count in kinds.values()):
            impossible["visit with a transition recorded twice"] += 1

    new_events = VisitEvent.objects.filter(visit__in=visits.values()).count()
    new_changes = StaffingChange.objects.count() - start["staffing_changes"]
    moved = BoardRow.current_version() - start["version"]
    impossible["board version moves not matching the changes"] = abs(
        moved - (new_events + new_changes)
    )
    for team in Team.objects.all():
        history = list(team.staffing_changes.order_by("at", "pk"))
        last = history[-1].available if history else 0
        if team.available_staff != last or team.available_staff != sum(c.delta for c in history):
            impossible["team whose staffing disagrees with its history"] += 1

    return {
        "found": found,
        "lost": lost,
        "applied_unacknowledged": applied_unacknowledged,
        "impossible": impossible,
        "visits": len(visits),
        "events": new_events,
        "staffing_changes": new_changes,
        "statuses": Counter(v.status for v in visits.values()),
        "durability": durability,
    }


# --- the run -----------------------------------------------------------------------------


@dataclass
class Phases:
    """The phase every action is counted under; what each crash did."""

    current: str = "setup"
    order: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def begin(self, name: str, note: str = "") -> None:
        self.current = name
        self.order.append(name)
        if note:
            self.notes[name] = note
        print(f"  {name}{f': {note}' if note else ''}", flush=True)

    def note(self, text: str) -> None:
        self.notes[self.current] = "; ".join(filter(None, [self.notes.get(self.current), text]))
        print(f"    {text}", flush=True)


def log_in(port: int, password: str, count: int) -> list[dict[str, str]]:
    """One session per screen, each through the login form (hashing is slow on purpose,
    so they go in together)."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: harness.log_in(port, LEADER, password), range(count)))


def run(args: argparse.Namespace, workdir: Path) -> int:
    started = time.monotonic()
    password = os.urandom(12).hex()
    restart_command = None
    if not args.no_postgres_restart:
        if args.postgres_restart_command:
            restart_command = shlex.split(args.postgres_restart_command)
        else:
            restart_command = postgres_restart_command(args.db_url, args.postgres_mode)
        if restart_command is None:
            raise SystemExit(
                "No way to restart PostgreSQL found: pass --postgres-restart-command, "
                "or --no-postgres-restart."
            )

    # The product's own URLs (so its 500 handler answers a lost database), and no static
    # files: the desk's actions never ask for them.
    port, _ = harness.prepare(args, workdir, PORTS, static=False)
    start = starting_point(password)
    from django.db import connections

    connections.close_all()

    quick = args.quick
    seconds = {
        "steady": 4 if quick else 10,
        "workers": 6 if quick else 12,
        "master": 5 if quick else 10,
        "postgres": 6 if quick else 12,
    }
    phases = Phases()
    stop = threading.Event()
    server = harness.Server(port, args.workers, workdir / "gunicorn-1.log")
    screens: list[Screen] = []
    watcher = None
    recovered: dict[str, bool] = {}
    try:
        server.start()
        server.wait_ready(READY_TIMEOUT)
        logins = log_in(port, password, args.screens + 1)
        screens = [
            Screen(
                i,
                port,
                logins[i],
                start["teams"],
                start["enquiry_ids"],
                lambda: phases.current,
                stop,
                args.seed,
            )
            for i in range(args.screens)
        ]
        watcher = Watcher(port, logins[-1], lambda: phases.current, stop)
        print(
            f"gunicorn up: {args.workers} sync workers; {args.screens} screens at work.",
            flush=True,
        )
        phases.begin("steady")
        for thread in [*screens, watcher]:
            thread.start()
        time.sleep(seconds["steady"])

        phases.begin("workers killed")
        kills = 0
        deadline = time.monotonic() + seconds["workers"]
        while time.monotonic() < deadline:
            time.sleep(random.uniform(0.5, 1.5))
            if workers := server.worker_pids():
                os.kill(random.choice(workers), signal.SIGKILL)
                kills += 1
        phases.note(f"kill -9 of a worker {kills} times (the master started new ones)")

        phases.begin("master killed")
        time.sleep(0.5)
        phases.note(f"kill -9 of the master; {kill_master(server, ORPHAN_SECONDS)}")
        time.sleep(1.0)  # a supervisor notices, then starts it again
        server = harness.Server(port, args.workers, workdir / "gunicorn-2.log")
        server.start()
        server.wait_ready(READY_TIMEOUT)
        phases.begin("after the restart", "gunicorn started again")
        time.sleep(seconds["master"])

        if restart_command:
            phases.begin("postgres restarting", " ".join(restart_command))
            restart = Restart(restart_command)
            restart_postgres(restart, args.db_url)
            if not restart.ok:
                phases.note(f"PostgreSQL did not come back: {restart.output}")
                return 2
            phases.note(f"PostgreSQL answered again after {restart.outage_s:.1f} s")
            phases.begin("after postgres")
            time.sleep(seconds["postgres"])
    finally:
        stop.set()
        for thread in [*screens, *([watcher] if watcher else [])]:
            if thread.is_alive():
                thread.join(timeout=REQUEST_TIMEOUT + 5)
        server.stop()

    actions = [action for screen in screens for action in screen.actions]
    for phase in phases.order:
        if phase.startswith("after"):
            recovered[phase] = any(a.phase == phase and a.result == "acknowledged" for a in actions)
    result = check(actions, start)
    result["server_errors"] = server_errors(workdir)
    report(args, actions, result, phases, watcher, recovered, time.monotonic() - started)
    if result["lost"] or sum(result["impossible"].values()) or not all(recovered.values()):
        return 1
    return 0


EXCEPTION_LINE = re.compile(r"^[\w.]+(?:Error|Exception): .*$", re.M)


def server_errors(workdir: Path) -> Counter[str]:
    """The errors gunicorn's workers logged, by their exception's last line."""
    found: Counter[str] = Counter()
    for log in sorted(workdir.glob("gunicorn-*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("level") in ("ERROR", "CRITICAL"):
                    raised = EXCEPTION_LINE.findall(record.get("exc_info") or "")
                    found[f"{record.get('message', '')}: {raised[-1] if raised else '?'}"] += 1
    return found


def counts(counter: Counter) -> str:
    return ", ".join(f"{key} {n}" for key, n in counter.most_common())


def report(
    args: argparse.Namespace,
    actions: list[Action],
    result: dict,
    phases: Phases,
    watcher: Watcher | None,
    recovered: dict[str, bool],
    seconds: float,
) -> None:
    line = "-" * 92
    print(f"\n{line}")
    print(
        f"Crash test: {args.screens} screens, {args.workers} sync workers, "
        f"{'quick' if args.quick else 'full'} run, {seconds:.0f} s"
    )
    table = []
    for phase in phases.order:
        mine = [a for a in actions if a.phase == phase]
        results = Counter(a.result for a in mine)
        errors = Counter(a.detail for a in mine if a.result == "failed")
        table.append([phase, len(mine), *(results[r] for r in RESULTS), counts(errors)])
    harness.print_table(
        ["phase", "sent", "acknowledged", "refused", "errors", "errors seen"], table, "lrrrrl"
    )
    for phase, note in phases.notes.items():
        print(f"  {phase}: {note}")
    if watcher is not None:
        print("A screen polling four times a second was answered:")
        for phase in phases.order:
            answers = Counter({a: n for (p, a), n in watcher.answers.items() if p == phase})
            if answers:
                print(f"  {phase:<22}{counts(answers)}")

    results = Counter(a.result for a in actions)
    impossible = result["impossible"]
    rows = [
        ("actions sent", f"{len(actions)} ({counts(Counter(a.kind for a in actions))})"),
        ("acknowledged", results["acknowledged"]),
        ("found after the crashes", result["found"]),
        ("lost", len(result["lost"])),
        *(("  LOST", item) for item in result["lost"][:20]),
        (
            "refused by a rule",
            f"{results['refused']} "
            f"({counts(Counter(a.detail for a in actions if a.result == 'refused'))})",
        ),
        (
            "errors seen by clients",
            f"{results['failed']} "
            f"({counts(Counter(a.detail for a in actions if a.result == 'failed'))})",
        ),
        (
            "applied, unacknowledged",
            f"{result['applied_unacknowledged']} (added, though the screen saw an error)",
        ),
        ("errors the server logged", sum(result["server_errors"].values())),
        *((f"  × {n}", error) for error, n in result["server_errors"].most_common(8)),
        ("impossible states", sum(impossible.values())),
        *((f"  {name}", count) for name, count in impossible.items()),
        (
            "in the database",
            f"{result['visits']} visits ({counts(result['statuses'])}), {result['events']} "
            f"events, {result['staffing_changes']} staffing changes",
        ),
        *(
            (f"recovered ({phase})", "yes" if ok else "NO: nothing was acknowledged")
            for phase, ok in recovered.items()
        ),
    ]
    durability = result["durability"]
    rows.append(("PostgreSQL durability", ", ".join(f"{k} {v}" for k, v in durability.items())))
    if any(value == "off" for value in durability.values()):
        rows.append(("  WARNING", "a commit may not survive a crash of the machine"))
    print(line)
    for label, value in rows:
        print(f"{label + ':':<30} {value}")
    print(line)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = harness.arguments(__doc__, PORTS, DEFAULT_DB_URL)
    parser.add_argument("--quick", action="store_true", help="shorter phases: under a minute")
    parser.add_argument("--screens", type=int, default=6, help="desk screens at work (6)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the screens")
    parser.add_argument("--keep-logs", action="store_true", help="keep gunicorn's logs")
    parser.add_argument("--no-postgres-restart", action="store_true", help="crash gunicorn only")
    parser.add_argument(
        "--postgres-mode",
        choices=["fast", "immediate"],
        default="fast",
        help="how PostgreSQL stops: fast (the default: open transactions cut off, a clean "
        "shutdown) or immediate (as in a crash: its log replayed on start, a longer outage)",
    )
    parser.add_argument(
        "--postgres-restart-command",
        help="how to restart PostgreSQL (default: pg_ctlcluster for the cluster on its port)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.screens <= 50 or not 1 <= args.workers <= 16:
        parser.error("--screens must be 1-50 and --workers 1-16")
    return args


if __name__ == "__main__":
    sys.exit(harness.main("crash", run, parse_args()))
