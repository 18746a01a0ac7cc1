"""The desk under load: what a page, an add and a poll cost, before and after a change,
and do 500 screens stay fast?

One run, against gunicorn (sync workers, DEBUG off, production settings) on a
PostgreSQL database of its own, which it creates and drops:

1. closed loop, with wrk (N connections, each sending its next request as soon as the
   last is answered): a bare view anonymous and signed in (the framework's floor), the
   unchanged poll (204), a changed poll, the desk page with 20 and 200 waiting, adding
   a student (plain POST, 302; htmx, answered with the board) in short bursts from 20
   waiting, and adding (htmx) while the board grows from 20 to about 400. Every figure
   is also given as a share of the bare anonymous view measured in the same run. With
   `--before PATH`, the same cases also run against a second gunicorn serving that
   checkout (its own virtual environment, its own database migrated by its own code),
   interleaved with this tree's, and the table gives both and their ratio;
2. queries and in-process time of each desk request with 0, 20 and 200 waiting;
3. open loop: S screens, each polling every two seconds on a fixed timeline whether or
   not earlier polls were answered (so latency includes any queueing), first with
   nothing changing (a baseline), then while a student leader adds, starts and
   finishes visits and changes staffing every 2-3 s.

    uv run python bench/desk_bench.py                          # this tree, about 3 minutes
    uv run python bench/desk_bench.py --before ../resq-before  # and another checkout, ~10
    uv run python bench/desk_bench.py --quick                  # smoke run
    uv run python bench/desk_bench.py --help                   # durations, rounds, workers

It prints a table per part and a summary block to paste into a note, and saves
everything as JSON under bench/results/. wrk costs the machine a few microseconds a
request; the open loop's client (httpx on asyncio) runs in this process and competes
with the server for CPU, so its own CPU use is printed, and so is the server's CPU time
per request, which a busy machine disturbs less.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the project, not bench/
from bench import harness, wrk  # noqa: E402
from bench.board import FIRST_NAMES, set_board  # noqa: E402

PORTS = range(8700, 8800)
DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/resq_bench"
LEADER = "bench-leader"
REQUEST_TIMEOUT = 10.0  # seconds; a poll slower than this counts as an error
LEADER_TIMEOUT = 30.0  # a person waits longer for a click than a timer for a poll
MAX_IN_FLIGHT = 5_000  # open loop: beyond this the client, not the server, is the limit
DRAIN_SECONDS = 15.0  # open loop: how long to wait for the last answers
BOARD_SIZES = (0, 20, 200)
OPEN_LOOP_WAITING = 20
BOARD_SCRIPT = Path(__file__).with_name("board.py")
FIRST_NUMBER = 30_000_000  # of the students added; set_board's start at 21000000
COUNTED_CAP_SECONDS = 300  # a run that stops after N answers, if they never come
SETTLE_SECONDS = 0.2


# --- closed loop -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    expect: int
    signed_in: bool = True
    htmx: bool = False
    waiting: int | None = None  # the board is set to this many waiting first
    adds: str = ""  # "bursts" from `waiting`, or "grow" from `waiting` to --grow-to
    wanted: float | None = None  # issue 15's target, % of the bare anonymous view


ADD = "/desk/visits/add/"
CASES = (
    Case("bare view, anonymous", "/bench/bare/", 200, signed_in=False),
    Case("bare view, signed in", "/bench/bare/user/", 200),
    Case("unchanged poll (204)", "/desk/poll/?v={version}", 204, htmx=True, waiting=20),
    Case("changed poll, 20 waiting", "/desk/poll/?v=0", 200, htmx=True, waiting=20),
    Case("desk page, 20 waiting", "/desk/", 200, waiting=20, wanted=6),
    Case("desk page, 200 waiting", "/desk/", 200, waiting=200, wanted=3),
    Case("add, plain POST (302), 20 waiting", ADD, 302, waiting=20, adds="bursts", wanted=9),
    Case(
        "add, htmx (the board), 20 waiting",
        ADD,
        200,
        htmx=True,
        waiting=20,
        adds="bursts",
        wanted=5,
    ),
    Case(
        "add, htmx, board growing to ~400", ADD, 200, htmx=True, waiting=20, adds="grow", wanted=3
    ),
)
BARE, BARE_SIGNED_IN, UNCHANGED_POLL, CHANGED_POLL = (case.name for case in CASES[:4])


@dataclass
class Measure:
    case: str
    checkout: str
    round: int
    answered: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    problems: dict[str, int]
    server_cpu_ms: float  # gunicorn CPU time per request (NaN if unknown)
    boards: list[tuple[int, int]]  # waiting at the start and the end of each run


class Checkout:
    """One checkout under test: its gunicorn, and `board.py` running with its Python
    and code on its database, which sets the board between runs."""

    def __init__(
        self,
        label: str,
        root: Path,
        python: str,
        env: dict[str, str],
        port: int,
        args: argparse.Namespace,
        workdir: Path,
    ) -> None:
        self.label = label
        self.root = root
        self.python = python
        self.env = env
        self.port = port
        log = workdir / f"server-{label.replace(' ', '-')}.log"
        self.server = harness.Server(port, args.workers, log, root=root, python=python, env=env)
        self.control: subprocess.Popen | None = None
        self.cookies: dict[str, str] = {}
        self.cookie = ""
        self.csrf = ""
        self.forms: list[str] = []
        self.next_number = FIRST_NUMBER

    def __enter__(self) -> Checkout:
        self.control = subprocess.Popen(
            [self.python, str(BOARD_SCRIPT)],
            cwd=self.root,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            self.server.__enter__()
        except BaseException:
            self._stop_control()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self._stop_control()

    def _stop_control(self) -> None:
        control, self.control = self.control, None
        if control is not None:
            with contextlib.suppress(OSError):
                control.stdin.close()
            try:
                control.wait(timeout=10)
            except subprocess.TimeoutExpired:
                control.kill()
                control.wait()

    def command(self, op: str, **fields: object) -> dict:
        if self.control is None:
            raise RuntimeError(f"{self.label}: not started")
        self.control.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.control.stdin.flush()
        line = self.control.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.label}: the board process ended")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.label} board process:\n{reply['error']}")
        return reply

    def sign_in(self, password: str) -> None:
        """The leader, signed in through the login form; the forms to add with, one per
        team in turn (each team's lock is its own)."""
        ids = self.command("leader", username=LEADER, password=password)
        self.cookies = harness.log_in(self.port, LEADER, password)
        self.cookie = harness.cookie_header(self.cookies)["Cookie"]
        self.csrf = self.cookies["csrftoken"]
        kinds = ids["enquiry_types"]
        self.forms = [
            f"student_name={FIRST_NAMES[i % 10]}+Benchmark&unit_code=CITS3200"
            f"&team={team}&enquiry_type={kinds[i % len(kinds)]}"
            for i, team in enumerate(ids["teams"])
        ]

    def board(self, waiting: int) -> dict:
        return self.command("board", waiting=waiting)

    def settle(self) -> None:
        """Wait until gunicorn is idle: requests in flight when wrk stopped are still
        answered, and must not run into the next measurement."""
        for _ in range(50):
            cpu = self.server.cpu_seconds()
            time.sleep(SETTLE_SECONDS)
            if not self.server.cpu_seconds() - cpu > 0.1 * SETTLE_SECONDS:
                return

    def settled_waiting(self) -> int:
        """Students waiting once gunicorn has answered what was sent: a run stopped
        after its count of answers leaves requests in flight, which still add."""
        last = self.command("waiting")["waiting"]
        for _ in range(50):
            cpu = self.server.cpu_seconds()
            time.sleep(SETTLE_SECONDS)
            now = self.command("waiting")["waiting"]
            busy = self.server.cpu_seconds() - cpu
            if now == last and not busy > 0.1 * SETTLE_SECONDS:
                return now
            last = now
        return last

    def url(self, path: str) -> str:
        return harness.base_url(self.port) + path

    def headers(self, case: Case) -> dict[str, str]:
        if not case.signed_in:
            return {}
        headers = {"Cookie": self.cookie}
        if case.htmx:
            headers |= {"HX-Request": "true", "HX-Current-URL": self.url("/desk/")}
        if case.adds:
            headers |= {
                "X-CSRFToken": self.csrf,
                "Content-Type": "application/x-www-form-urlencoded",
            }
            if case.htmx:
                headers |= {"HX-Target": "add-form", "HX-Trigger": "add-form"}
        return headers

    def describe(self) -> str:
        """The checkout's commit, and whether files differ from it."""
        git = ["git", "-C", str(self.root)]
        try:
            commit = subprocess.run(
                [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
            ).stdout.strip()
            changed = subprocess.run(
                [*git, "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return str(self.root)
        return f"{self.root} at {commit}{' with changes' if changed else ''}"


def before_checkout(
    args: argparse.Namespace, workdir: Path, base_env: dict[str, str], taken: int
) -> Checkout:
    """The checkout given by --before, ready to serve: its virtual environment synced
    from its own lock file, its own database migrated by its own code, its static
    files collected."""
    root = Path(args.before).resolve()
    needed = ("manage.py", "uv.lock", "bench/settings.py", "bench/urls.py")
    missing = [name for name in needed if not (root / name).is_file()]
    if missing:
        raise SystemExit(
            f"--before {root}: not a ResQ checkout with the benchmark's bare views "
            f"(missing {', '.join(missing)})."
        )
    plain = {k: v for k, v in base_env.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    # `uv run` names its own binary in UV.
    uv = base_env.get("UV") or shutil.which("uv") or str(harness.ROOT / ".tools" / "bin" / "uv")
    print(f"Preparing {root}: uv sync --frozen…", flush=True)
    subprocess.run([uv, "sync", "--frozen", "--quiet"], cwd=root, env=plain, check=True)
    db_url = before_db_url(args.db_url)
    print(f"Preparing database {harness.database_name(db_url)} with its own migrations…")
    harness.recreate_database(db_url)
    env = (
        plain
        | harness.server_environment(db_url, workdir / "static-before")
        | {"PYTHONPATH": str(root)}
    )
    python = str(root / ".venv" / "bin" / "python")
    for step in ("migrate", "collectstatic"):
        subprocess.run(
            [python, "manage.py", step, "--noinput", "--verbosity", "0"],
            cwd=root,
            env=env,
            check=True,
        )
    port = harness.free_port(None, PORTS, taken=(taken,))
    return Checkout("before", root, python, env, port, args, workdir)


def before_db_url(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path=f"{parts.path}_before").geturl()


def measure(checkout: Checkout, case: Case, args: argparse.Namespace, round_no: int) -> Measure:
    """One case against one checkout: wrk for --closed-seconds, or for adds, runs that
    stop after a number of answers, each from a board reset outside the timing."""
    server = checkout.server
    options = {
        "expect": case.expect,
        "headers": checkout.headers(case),
        "threads": args.threads,
        "connections": args.concurrency,
    }
    if not case.adds:
        version = checkout.board(case.waiting)["version"] if case.waiting is not None else 0
        cpu = server.cpu_seconds()
        url = checkout.url(case.path.format(version=version))
        run = wrk.run(url, seconds=args.closed_seconds, **options)
        cpu = server.cpu_seconds() - cpu
        checkout.settle()
        return Measure(
            case=case.name,
            checkout=checkout.label,
            round=round_no,
            answered=run.answered,
            seconds=run.seconds,
            rps=run.rps,
            p50_ms=run.p50_ms,
            p99_ms=run.p99_ms,
            problems=run.problems,
            server_cpu_ms=1000 * cpu / run.answered if run.answered else math.nan,
            boards=[(case.waiting, case.waiting)] if case.waiting is not None else [],
        )
    assert case.waiting is not None
    bursts = args.bursts if case.adds == "bursts" else 1
    limit = args.burst_adds if case.adds == "bursts" else args.grow_to - case.waiting
    runs: list[wrk.Run] = []
    boards: list[tuple[int, int]] = []
    cpu = 0.0
    for _ in range(bursts):
        start = checkout.board(case.waiting)["waiting"]
        cpu_before = server.cpu_seconds()
        run = wrk.run(
            checkout.url(case.path),
            seconds=COUNTED_CAP_SECONDS,
            limit=limit,
            forms=checkout.forms,
            first_number=checkout.next_number,
            **options,
        )
        checkout.next_number = run.last_number + 1
        end = checkout.settled_waiting()
        cpu += server.cpu_seconds() - cpu_before
        runs.append(run)
        boards.append((start, end))
    answered = sum(run.answered for run in runs)
    seconds = sum(run.seconds for run in runs)
    added = sum(end - start for start, end in boards)
    problems: Counter[str] = Counter()
    for run in runs:
        problems.update(run.problems)
    return Measure(
        case=case.name,
        checkout=checkout.label,
        round=round_no,
        answered=answered,
        seconds=seconds,
        rps=answered / seconds if seconds > 0 else 0.0,
        p50_ms=statistics.median(run.p50_ms for run in runs),
        p99_ms=max(run.p99_ms for run in runs),
        problems=dict(problems),
        # Per student added: requests still in flight when a run stopped were
        # answered (and cost CPU) too, and each added one.
        server_cpu_ms=1000 * cpu / added if added > 0 else math.nan,
        boards=boards,
    )


def warm_up(checkout: Checkout, args: argparse.Namespace) -> None:
    """Each worker's first requests load templates and open its database connection;
    a refused add (a CSRF or form problem) stops the run here."""
    checkout.board(OPEN_LOOP_WAITING)
    desk = next(case for case in CASES if case.path == "/desk/")
    checks = [(desk, {"seconds": args.warmup})]
    checks += [
        (case, {"seconds": COUNTED_CAP_SECONDS, "limit": args.concurrency, "forms": checkout.forms})
        for case in CASES
        if case.adds == "bursts"
    ]
    for case, options in checks:
        run = wrk.run(
            checkout.url(case.path),
            expect=case.expect,
            headers=checkout.headers(case),
            threads=args.threads,
            connections=args.concurrency,
            first_number=checkout.next_number,
            **options,
        )
        checkout.next_number = max(checkout.next_number, run.last_number + 1)
        if run.problems:
            raise RuntimeError(f"{checkout.label}, warming up {case.name}: {run.problems}")
    checkout.settled_waiting()


# --- open loop ---------------------------------------------------------------------------


@dataclass
class LeaderAction:
    action: str
    status: int | str
    latency_ms: float
    version_before: int
    version_after: int
    done_at: float = field(repr=False)


@dataclass
class OpenResult:
    screens: int
    interval: float
    seconds: float
    scheduled: int
    answered: dict[str, int]
    errors: dict[str, int]
    latency: dict[str, float]
    latency_by_answer: dict[str, dict[str, float]]
    offered_rps: float
    dispatch_lag_ms: dict[str, float]
    max_in_flight: int
    client_cpu_pct: float
    server_cpu_pct: float  # of all cores: 100 % = one core busy
    actions: list[LeaderAction]
    freshness: dict[str, float | int]


class Leader:
    """A student leader at reception: one action every 2-3 s, as htmx sends them."""

    def __init__(
        self, port: int, cookies: dict[str, str], teams: list[dict], enquiry_ids: list[int]
    ) -> None:
        self.headers = harness.cookie_header(cookies) | {
            "X-CSRFToken": cookies["csrftoken"],
            "HX-Request": "true",
            "HX-Current-URL": f"{harness.base_url(port)}/desk/",
        }
        self.teams = teams  # [{"id", "slug", "staff"}]
        self.enquiry_ids = enquiry_ids
        self.board_html = ""
        self.version = 0
        self.added = 0
        self.step = 0
        self.actions: list[LeaderAction] = []

    def next_request(self) -> tuple[str, str, dict[str, str] | None]:
        """The next action in a fixed rota: add, start, add, finish, staffing."""
        kind = ("add", "start", "add", "finish", "staffing")[self.step % 5]
        self.step += 1
        if kind == "add":
            team = self.teams[self.added % len(self.teams)]
            self.added += 1
            form = {
                "student_name": f"{FIRST_NAMES[self.added % 10]} Benchmark",
                "student_number": f"{31000000 + self.added:08d}",
                "unit_code": "CITS3200",
                "team": str(team["id"]),
                "enquiry_type": str(self.enquiry_ids[self.added % len(self.enquiry_ids)]),
            }
            return "add", "/desk/visits/add/", form
        if kind in ("start", "finish"):
            ids = re.findall(rf'id="{kind}-(\d+)"', self.board_html)
            if not ids:
                return f"{kind} (none to {kind})", "", None
            return kind, f"/desk/visits/{ids[0]}/{kind}/", {}
        team = self.teams[(self.step // 5) % len(self.teams)]
        delta = 1 if team["staff"] < 4 else -1
        team["staff"] += delta
        return f"staffing {delta:+d}", f"/desk/teams/{team['slug']}/staffing/", {"delta": delta}

    async def load_desk(self, http: httpx.AsyncClient) -> None:
        response = await http.get("/desk/", headers=self.headers)
        if response.status_code != 200:
            raise RuntimeError(f"the leader could not load the desk: HTTP {response.status_code}")
        self.board_html = response.text
        self.version = int(response.headers["x-board-version"])

    async def act(self, http: httpx.AsyncClient) -> None:
        loop = asyncio.get_running_loop()
        kind, path, form = self.next_request()
        if form is None:  # nothing to start or finish: skip this turn
            self.actions.append(
                LeaderAction(kind, "skipped", 0.0, self.version, self.version, loop.time())
            )
            return
        before = self.version
        started = loop.time()
        status: int | str
        try:
            response = await http.post(
                path, data=form, headers=self.headers, timeout=LEADER_TIMEOUT
            )
            status = response.status_code
            if status == 200:
                self.board_html = response.text
                self.version = int(response.headers.get("x-board-version", self.version))
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        done = loop.time()
        self.actions.append(
            LeaderAction(kind, status, (done - started) * 1000, before, self.version, done)
        )


async def open_loop(
    port: int,
    cookies: list[dict[str, str]],
    version: int,
    leader: Leader | None,
    *,
    interval: float,
    seconds: float,
    seed: int,
    server_cpu: Callable[[], float],
) -> OpenResult:
    """Every screen polls every `interval` seconds from a random phase (a browser's
    timer starts when its page loads), on a timeline fixed in advance: a poll is sent
    when it is due whether or not the screen's last one was answered, and its latency
    is counted from when it was due. Without a leader nothing changes: a baseline."""
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    screens = len(cookies)
    phases = sorted((rng.uniform(0, interval), i) for i in range(screens))
    versions = [version] * screens
    adopted: list[list[tuple[int, float]]] = [[] for _ in range(screens)]
    poll_headers = {
        "HX-Request": "true",
        "HX-Trigger": "sync",
        "HX-Target": "board",
        "HX-Current-URL": f"{harness.base_url(port)}/desk/",
    }
    headers = [harness.cookie_header(c) | poll_headers for c in cookies]
    latencies: list[float] = []
    by_answer: dict[str, list[float]] = {"204": [], "200": []}
    answered: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    lags: list[float] = []
    in_flight: set[asyncio.Task] = set()
    max_in_flight = 0
    actions = leader.actions if leader else []

    async def poll(http: httpx.AsyncClient, screen: int, due: float) -> None:
        try:
            response = await http.get(f"/desk/poll/?v={versions[screen]}", headers=headers[screen])
        except httpx.HTTPError as exc:
            errors[type(exc).__name__] += 1
            return
        now = loop.time()
        if response.status_code == 204:
            answered["204 unchanged"] += 1
        elif response.status_code == 200:
            answered["200 changed"] += 1
            new = int(response.headers.get("x-board-version", versions[screen]))
            if new > versions[screen]:
                versions[screen] = new
                adopted[screen].append((new, now))
        else:
            errors[f"HTTP {response.status_code}"] += 1
            return
        latencies.append(now - due)
        by_answer[str(response.status_code)].append(now - due)

    async def leader_rota(http: httpx.AsyncClient, start: float, end: float) -> None:
        turn_at = start + rng.uniform(1.0, 2.0)
        while leader and turn_at <= end - 0.5:
            await asyncio.sleep(max(0.0, turn_at - loop.time()))
            await leader.act(http)
            # The next action 2-3 s after this one was due; a slow answer delays it
            # (one person, one click at a time) rather than causing a burst.
            turn_at = max(turn_at + rng.uniform(2.0, 3.0), loop.time() + 1.0)

    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=screens)
    async with httpx.AsyncClient(
        base_url=harness.base_url(port), timeout=REQUEST_TIMEOUT, limits=limits
    ) as http:
        if leader:
            await leader.load_desk(http)
        cpu_before, server_before = time.process_time(), server_cpu()
        start = loop.time() + 0.2
        end = start + seconds
        leader_task = asyncio.create_task(leader_rota(http, start, end))
        scheduled = 0
        for round_no in range(math.ceil(seconds / interval) + 1):
            for phase, screen in phases:
                due = start + round_no * interval + phase
                if due >= end:
                    break
                await asyncio.sleep(max(0.0, due - loop.time()))
                lags.append(loop.time() - due)
                scheduled += 1
                if len(in_flight) >= MAX_IN_FLIGHT:
                    errors["client: too many in flight"] += 1
                    continue
                task = asyncio.create_task(poll(http, screen, due))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                max_in_flight = max(max_in_flight, len(in_flight))
        await leader_task
        if in_flight:
            _done, pending = await asyncio.wait(set(in_flight), timeout=DRAIN_SECONDS)
            for task in pending:
                task.cancel()
                errors["unanswered at the end"] += 1
        cpu = time.process_time() - cpu_before
        server = server_cpu() - server_before
        elapsed = loop.time() - start

    # Freshness: how long after a leader's action returned did each screen show it?
    changes = [
        a for a in actions if a.version_after > a.version_before and a.done_at <= end - interval - 1
    ]
    delays: list[float] = []
    missed = 0
    for action in changes:
        for history in adopted:
            index = bisect_left([v for v, _ in history], action.version_after)
            if index == len(history):
                missed += 1
            else:
                delays.append(max(0.0, history[index][1] - action.done_at))
    delays.sort()
    lags.sort()
    return OpenResult(
        screens=screens,
        interval=interval,
        seconds=seconds,
        scheduled=scheduled,
        answered=dict(answered),
        errors=dict(errors),
        latency=harness.latency_summary(latencies),
        latency_by_answer={k: harness.latency_summary(v) for k, v in by_answer.items()},
        offered_rps=round(scheduled / seconds, 1),
        dispatch_lag_ms={
            "p99": round(harness.percentile(lags, 99) * 1000, 2),
            "max": round(lags[-1] * 1000, 2) if lags else math.nan,
        },
        max_in_flight=max_in_flight,
        client_cpu_pct=round(100 * cpu / elapsed, 1),
        server_cpu_pct=round(100 * server / elapsed, 1),
        actions=actions,
        freshness={
            "changes": len(changes),
            "p50_s": round(harness.percentile(delays, 50), 2),
            "p99_s": round(harness.percentile(delays, 99), 2),
            "max_s": round(delays[-1], 2) if delays else math.nan,
            "missed": missed,
        },
    )


# --- in-process -------------------------------------------------------------------------


def count_queries(user) -> dict[str, dict[str, float]]:
    """Queries, median time of five and size of each desk request, in-process."""
    from queueing.models import Board

    counts: dict[str, dict[str, float]] = {}
    with harness.test_client(user) as client:

        def measure(label: str, path: str, expect: int) -> None:
            row = harness.timed(lambda: client.get(path))
            response = row["result"]
            if response.status_code != expect:
                raise RuntimeError(f"{path}: HTTP {response.status_code}, expected {expect}")
            kb = round(len(response.content) / 1024, 1)
            counts[label] = {"queries": row["queries"], "ms": row["ms"], "kb": kb}

        for waiting in BOARD_SIZES:
            set_board(waiting, user=user)
            measure(f"desk page, {waiting} waiting", "/desk/", 200)
            measure(f"poll changed, {waiting} waiting", "/desk/poll/?v=0", 200)
        measure("poll unchanged", f"/desk/poll/?v={Board.current_version()}", 204)
    return counts


# --- reporting ---------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    finite = [value for value in values if not math.isnan(value)]
    return statistics.median(finite) if finite else math.nan


def aggregate(measures: list[Measure], labels: list[str]) -> dict[str, dict[str, dict]]:
    """Per case and checkout, the medians of the rounds, and each as a share of the same
    checkout's bare anonymous view (its median) in the same run."""
    table: dict[str, dict[str, dict]] = {}
    for case in CASES:
        table[case.name] = {}
        for label in labels:
            rows = [m for m in measures if m.case == case.name and m.checkout == label]
            if not rows:
                continue
            problems: Counter[str] = Counter()
            for m in rows:
                problems.update(m.problems)
            table[case.name][label] = {
                "rps": _median([m.rps for m in rows]),
                "p50_ms": _median([m.p50_ms for m in rows]),
                "p99_ms": _median([m.p99_ms for m in rows]),
                "server_cpu_ms": _median([m.server_cpu_ms for m in rows]),
                "rounds_rps": [round(m.rps, 1) for m in rows],
                "problems": dict(problems),
                "boards": [board for m in rows for board in m.boards],
            }
    for label in labels:
        bare = table[BARE].get(label)
        floor = bare["rps"] if bare and not bare["problems"] else math.nan
        for figures in table.values():
            if label in figures:
                figures[label]["share"] = figures[label]["rps"] / floor if floor else math.nan
    return table


def percent(share: float) -> str:
    if math.isnan(share):
        return "-"
    value = 100 * share
    return f"{value:.{0 if value >= 10 else 1 if value >= 1 else 2}f} %"


def rate(rps: float) -> str:
    return f"{rps:,.0f}" if rps >= 100 else f"{rps:.1f}"


def figure(figures: dict | None) -> str:
    """req/s (share), or what went wrong: a case with errors has no figure."""
    if figures is None:
        return "-"
    if figures["problems"]:
        return "FAILED: " + ", ".join(f"{n}× {what}" for what, n in figures["problems"].items())
    return f"{rate(figures['rps'])} ({percent(figures['share'])})"


def ratio(table: dict, case: str, before: str, after: str) -> float:
    old, new = table[case].get(before), table[case].get(after)
    if not old or not new or old["problems"] or new["problems"] or not old["rps"]:
        return math.nan
    return new["rps"] / old["rps"]


def times(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}×"


def boards(figures: dict) -> str:
    """Waiting at the start of each run → at its end (a range over runs)."""
    pairs = figures["boards"]
    if not pairs:
        return ""
    starts = sorted({start for start, _ in pairs})
    ends = [end for _, end in pairs]
    end = str(min(ends)) if min(ends) == max(ends) else f"{min(ends)}–{max(ends)}"
    start = "/".join(map(str, starts))
    return start if end == start else f"{start} → {end}"


def wanted(case: Case, figures: dict | None) -> str:
    if case.wanted is None:
        return ""
    if figures is None or figures["problems"] or math.isnan(figures["share"]):
        return f"≥ {case.wanted:g} %"
    met = 100 * figures["share"] >= case.wanted
    return f"≥ {case.wanted:g} %: {'met' if met else 'NOT met'}"


def print_measure(m: Measure) -> None:
    board = f", waiting {boards(asdict(m))}" if m.boards else ""
    if m.problems:
        figures = f"FAILED: {m.answered} answers, {m.problems}"
    else:
        figures = (
            f"{rate(m.rps):>7} req/s, p50 {harness.ms(m.p50_ms / 1000)} / p99 "
            f"{harness.ms(m.p99_ms / 1000)} ms, server {m.server_cpu_ms:.2f} ms/req"
        )
    print(f"  round {m.round} · {m.checkout:<6} · {m.case:<34} {figures}{board}", flush=True)


def poll_shares(table: dict, label: str) -> str:
    poll, signed_in = table[UNCHANGED_POLL].get(label), table[BARE_SIGNED_IN].get(label)
    if not poll or not signed_in or poll["problems"] or signed_in["problems"]:
        return "-"
    return (
        f"{percent(poll['share'])} of the bare anonymous view, "
        f"{percent(poll['rps'] / signed_in['rps'])} of the signed-in one"
    )


def details(figures: dict) -> list[str]:
    """req/s of each round, p50, p99 and server CPU, unless the case failed."""
    if figures["problems"]:
        return ["FAILED", "-", "-", "-"]
    return [
        " / ".join(rate(rps) for rps in figures["rounds_rps"]),
        harness.ms(figures["p50_ms"] / 1000),
        harness.ms(figures["p99_ms"] / 1000),
        f"{figures['server_cpu_ms']:.2f}",
    ]


def print_closed(table: dict, labels: list[str]) -> None:
    """The table of the closed loop (with two checkouts, their ratio), then each case's
    rounds, latency, server CPU and board."""
    compared = len(labels) == 2
    print()
    harness.print_table(
        [
            "case",
            *(f"{label} req/s (share)" if compared else "req/s (share)" for label in labels),
            *(["after/before"] if compared else []),
            "wanted",
        ],
        [
            [
                case.name,
                *(figure(table[case.name].get(label)) for label in labels),
                *([times(ratio(table, case.name, *labels))] if compared else []),
                wanted(case, table[case.name].get(labels[-1])),
            ]
            for case in CASES
        ],
        align="l" + "r" * (len(labels) + compared) + "l",
    )
    print()
    harness.print_table(
        ["case", "checkout", "req/s by round", "p50 ms", "p99 ms", "server CPU ms/req", "waiting"],
        [
            [case.name, label, *details(figures), boards(figures)]
            for case in CASES
            for label in labels
            if (figures := table[case.name].get(label))
        ],
        align="llrrrrl",
    )
    for label in labels:
        print(f"  unchanged poll, {label}: {poll_shares(table, label)}")


def print_open(result: OpenResult) -> None:
    def latencies(lat: dict[str, float]) -> str:
        return (
            f"p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, p99 {lat['p99_ms']} ms, "
            f"max {lat['max_ms']} ms"
        )

    print(
        f"\nopen loop: {result.screens} screens, one poll each every {result.interval:g} s "
        f"for {result.seconds:g} s ({result.offered_rps:g} polls/s offered)\n"
        f"  polls scheduled {result.scheduled}, answered {result.answered}\n"
        f"  errors {result.errors or 0}\n"
        f"  poll latency (from when due): {latencies(result.latency)}"
    )
    for status, part in result.latency_by_answer.items():
        if not math.isnan(part["p50_ms"]):
            print(f"    answered {status}: {latencies(part)}")
    lag = result.dispatch_lag_ms
    print(
        f"  server (gunicorn) CPU {result.server_cpu_pct}% of one core\n"
        f"  client: dispatch lag p99 {lag['p99']} ms, max {lag['max']} ms; max in flight "
        f"{result.max_in_flight}; CPU {result.client_cpu_pct}%"
    )
    if not result.actions:
        return
    print("  leader actions:")
    for a in result.actions:
        moved = f"v{a.version_before}->v{a.version_after}" if a.status != "skipped" else ""
        print(f"    {a.action:<28} {a.status!s:<8} {a.latency_ms:>7.1f} ms  {moved}")
    f = result.freshness
    print(
        f"  a change reached each screen within p50 {f['p50_s']} s, p99 {f['p99_s']} s, "
        f"max {f['max_s']} s of the leader's action ({f['changes']} changes, "
        f"{f['missed']} screen-changes missed)"
    )


def summary_block(
    meta: dict,
    table: dict,
    labels: list[str],
    queries: dict,
    opened: OpenResult | None,
    baseline: OpenResult | None,
) -> str:
    ms = harness.ms
    after = labels[-1]

    def across(kind: str, key: str) -> str:
        return "/".join(f"{queries[f'{kind}, {n} waiting'][key]:g}" for n in BOARD_SIZES)

    if len(labels) == 2:
        compared = (
            f"before: {meta['checkouts']['before']}; after: {meta['checkouts']['after']}"
            " (req/s, share of the same checkout's bare anonymous view; after/before)"
        )
    else:
        compared = f"{meta['checkouts'][after]} (req/s, share of the bare anonymous view)"

    def line(case: Case) -> str:
        new = table[case.name].get(after)
        text = f"  {case.name:<34} "
        if len(labels) == 2:
            text += f"{figure(table[case.name].get(labels[0]))} → {figure(new)}, "
            text += times(ratio(table, case.name, *labels))
        else:
            text += figure(new)
            if new and not new["problems"]:
                text += f" · p50/p99 {ms(new['p50_ms'] / 1000)}/{ms(new['p99_ms'] / 1000)} ms"
        if new and new["boards"] and case.adds:
            text += f" · waiting {boards(new)}"
        return text + (f" · wanted {wanted(case, new)}" if case.wanted else "")

    poll, user = table[UNCHANGED_POLL].get(after), table[BARE_SIGNED_IN].get(after)
    poll_target = (
        ("met" if poll["rps"] >= 0.7 * user["rps"] else "NOT met")
        if poll and user and not poll["problems"] and not user["problems"]
        else "-"
    )
    lines = [
        f"Desk bench {meta['when']} · {meta['cpus']} CPUs, load {meta['load']} and "
        f"{meta['cpu_share_pct']} % of a core free at start, {meta['cpu_share_end_pct']} % "
        f"at the end · gunicorn sync ×{meta['workers']}, DEBUG off, PostgreSQL "
        f"{meta['postgres'].split()[0]} · Python {meta['python']}, Django {meta['django']}",
        f"Closed loop, wrk -t{meta['threads']} -c{meta['concurrency']}, "
        f"{meta['closed_seconds']} s a case; adds from 20 waiting in {meta['bursts']} runs of "
        f"{meta['burst_adds']} answers, growing in one run of {meta['grow_to'] - 20}; medians of "
        f"{meta['rounds']} round{'s' if meta['rounds'] != 1 else ''}"
        f"{', before and after interleaved' if len(labels) == 2 else ''}",
        f"  {compared}:",
        *(line(case) for case in CASES),
        *(f"  unchanged poll, {label}: {poll_shares(table, label)}" for label in labels),
        f"  (target for the unchanged poll ≥ 70 % of the signed-in bare view: {poll_target})",
        f"In-process with {'/'.join(map(str, BOARD_SIZES))} waiting: desk page "
        f"{across('desk page', 'queries')} queries, {across('desk page', 'ms')} ms; changed "
        f"poll {across('poll changed', 'queries')} queries, {across('poll changed', 'ms')} ms, "
        f"{across('poll changed', 'kb')} KiB; unchanged poll "
        f"{queries['poll unchanged']['queries']:g} queries, {queries['poll unchanged']['ms']} ms",
    ]
    if baseline is not None:
        base = baseline.latency
        lines.append(
            f"Open loop baseline, {baseline.screens} screens every {baseline.interval:g} s, "
            f"nothing changing, {baseline.seconds:g} s: {sum(baseline.answered.values())} polls, "
            f"{sum(baseline.errors.values())} errors, p50 {base['p50_ms']} · p99 "
            f"{base['p99_ms']} · max {base['max_ms']} ms; gunicorn CPU {baseline.server_cpu_pct}%"
        )
    if opened is None:
        return "\n".join(lines)
    lat = opened.latency
    acted = [a for a in opened.actions if a.status != "skipped"]
    action_ms = sorted(a.latency_ms for a in acted)
    open_errors = sum(opened.errors.values()) + sum(1 for a in acted if a.status != 200)
    changed = table[CHANGED_POLL][after]["server_cpu_ms"]
    herd = opened.screens * changed / 1000
    lines += [
        f"Each change makes every screen fetch the board: {opened.screens} × {changed:.1f} ms "
        f"= {herd:.1f} CPU-s per change at {OPEN_LOOP_WAITING} waiting; one change every "
        f"2.5 s needs {herd / 2.5:.1f} cores for renders alone",
        f"Open loop, {opened.screens} screens every {opened.interval:g} s "
        f"({opened.offered_rps:g} polls/s) for {opened.seconds:g} s, leader acting every 2-3 s:",
        f"  polls {opened.scheduled}: {opened.answered.get('204 unchanged', 0)}×204, "
        f"{opened.answered.get('200 changed', 0)}×200, {sum(opened.errors.values())} errors",
        f"  latency p50 {lat['p50_ms']} · p95 {lat['p95_ms']} · p99 {lat['p99_ms']} · "
        f"max {lat['max_ms']} ms (target p99 < 50 ms, 0 errors: "
        f"{'met' if lat['p99_ms'] < 50 and open_errors == 0 else 'NOT met'})",
        f"  leader actions {len(acted)}: p50 {ms(harness.percentile(action_ms, 50) / 1000)} ms, "
        f"max {ms(action_ms[-1] / 1000) if action_ms else '-'} ms; a change reached every "
        f"screen within p99 {opened.freshness['p99_s']} s, max {opened.freshness['max_s']} s",
        f"  p99 of the 204s {opened.latency_by_answer['204']['p99_ms']} ms, of the 200s "
        f"{opened.latency_by_answer['200']['p99_ms']} ms; CPU: gunicorn "
        f"{opened.server_cpu_pct}%, load generator {opened.client_cpu_pct}% of one core",
    ]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = harness.arguments(__doc__, PORTS, DEFAULT_DB_URL)
    parser.add_argument("--quick", action="store_true", help="short durations: a smoke run")
    parser.add_argument(
        "--before",
        metavar="PATH",
        help="another checkout (e.g. a clone of main at the commit before a change) to "
        "measure beside this tree; its database is the same name with _before",
    )
    parser.add_argument(
        "--rounds", type=int, help="closed-loop rounds, medians (3 with --before, else 1)"
    )
    parser.add_argument("--duration", type=float, help="open-loop seconds (default 30, quick 8)")
    parser.add_argument(
        "--closed-seconds", type=int, help="seconds of wrk per closed-loop case (5, quick 1)"
    )
    parser.add_argument("--warmup", type=int, help="seconds of wrk on the desk first (2, quick 1)")
    parser.add_argument("--bursts", type=int, help="runs of adds from 20 waiting (10, quick 3)")
    parser.add_argument(
        "--burst-adds", type=int, default=20, help="answers each run of adds waits for (20)"
    )
    parser.add_argument(
        "--grow-to", type=int, default=400, help="the growing board's size at the end (400)"
    )
    parser.add_argument(
        "--open-loop",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the open loop after the closed one (default: on)",
    )
    parser.add_argument(
        "--baseline",
        type=float,
        help="seconds of open loop with no changes first (default 10, quick 4; 0 = skip)",
    )
    parser.add_argument("--screens", type=int, default=500, help="open-loop screens (500)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls (2)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--concurrency", type=int, default=20, help="wrk connections (20)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for phases and rota")
    args = parser.parse_args(argv)
    args.duration = args.duration or (8.0 if args.quick else 30.0)
    args.closed_seconds = args.closed_seconds or (1 if args.quick else 5)
    args.warmup = args.warmup or (1 if args.quick else 2)
    args.bursts = args.bursts or (3 if args.quick else 10)
    args.rounds = args.rounds or (3 if args.before and not args.quick else 1)
    if args.baseline is None:
        args.baseline = 4.0 if args.quick else 10.0
    if not 0 <= args.baseline <= 3600:
        parser.error("--baseline must be between 0 and 3600 seconds")
    for name in ("duration", "closed_seconds", "interval", "warmup"):
        if not 0 < getattr(args, name) <= 3600:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 3600 seconds")
    if not 1 <= args.screens <= 5000 or not 1 <= args.workers <= 16:
        parser.error("--screens must be 1-5000 and --workers 1-16")
    if not 1 <= args.threads <= args.concurrency <= 256:
        parser.error("--threads must be 1 to --concurrency, and --concurrency at most 256")
    if not 1 <= args.rounds <= 20 or not 1 <= args.bursts <= 1000:
        parser.error("--rounds must be 1-20 and --bursts 1-1000")
    if args.burst_adds < args.threads or args.grow_to - 20 < args.threads:
        parser.error("--burst-adds and --grow-to minus 20 must be at least --threads")
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict:
    wrk.command_path()  # before anything is set up
    base_env = dict(os.environ)
    cpu_share = harness.cpu_share()
    port, meta = harness.prepare(args, workdir, PORTS)
    meta |= {
        "cpu_share_pct": cpu_share,
        **{
            name: getattr(args, name)
            for name in ("workers", "threads", "concurrency", "closed_seconds", "rounds")
        },
        **{name: getattr(args, name) for name in ("bursts", "burst_adds", "grow_to")},
    }
    from django.db import connections

    from bench.board import leader

    connections.close_all()
    password = secrets.token_urlsafe(16)
    name = "after" if args.before else "this tree"
    after = Checkout(name, harness.ROOT, sys.executable, dict(os.environ), port, args, workdir)
    checkouts = [after]
    try:
        with contextlib.ExitStack() as stack:
            if args.before:
                checkouts.insert(0, before_checkout(args, workdir, base_env, port))
            for checkout in checkouts:
                stack.enter_context(checkout)
                checkout.sign_in(password)
            labels = [checkout.label for checkout in checkouts]
            meta["checkouts"] = {checkout.label: checkout.describe() for checkout in checkouts}
            print(
                f"gunicorn up: {args.workers} sync workers for {' and '.join(labels)}. Load "
                f"average {meta['load']}; a busy loop got {meta['cpu_share_pct']} % of a core "
                "(100 % = the machine is quiet).",
                flush=True,
            )
            for checkout in checkouts:
                warm_up(checkout, args)

            measures: list[Measure] = []
            for round_no in range(1, args.rounds + 1):
                print(f"\nClosed loop, round {round_no} of {args.rounds}…", flush=True)
                order = checkouts if round_no % 2 else checkouts[::-1]
                for case in CASES:
                    for checkout in order:
                        measures.append(measure(checkout, case, args, round_no))
                        print_measure(measures[-1])
            table = aggregate(measures, labels)
            print_closed(table, labels)

            user = leader(LEADER)
            print("\nCounting queries in-process…", flush=True)
            queries = count_queries(user)
            harness.print_table(
                ["in-process", "queries", "ms", "KiB"],
                [
                    [label, row["queries"], f"{row['ms']:.1f}", row["kb"]]
                    for label, row in queries.items()
                ],
            )
            baseline = opened = None
            if args.open_loop:
                baseline, opened = open_phases(args, after, user)
            connections.close_all()
    finally:
        if args.before and not args.keep_db:
            with contextlib.suppress(Exception):
                harness.recreate_database(before_db_url(args.db_url), drop_only=True)

    meta["cpu_share_end_pct"] = harness.cpu_share()
    block = summary_block(meta, table, labels, queries, opened, baseline)
    harness.print_block(block)
    return {
        "meta": meta,
        "closed": [asdict(m) for m in measures],
        "table": table,
        "queries": queries,
        "open": asdict(opened) if opened else None,
        "open_baseline": asdict(baseline) if baseline else None,
        "summary": block,
    }


def open_phases(
    args: argparse.Namespace, after: Checkout, user
) -> tuple[OpenResult | None, OpenResult]:
    """The open loop on this tree: a baseline with nothing changing, then with a leader
    at work."""
    from django.db import connections

    from queueing.models import EnquiryType, Team

    screens = harness.session_cookies(user, args.screens)
    teams = [{"id": t.pk, "slug": t.slug, "staff": 2} for t in Team.objects.filter(is_active=True)]
    enquiry_ids = list(EnquiryType.objects.filter(is_active=True).values_list("pk", flat=True))

    def phase(seconds: float, leader: Leader | None) -> OpenResult:
        version = set_board(OPEN_LOOP_WAITING, user=user)
        connections.close_all()
        work = "with a leader at work" if leader else "and no changes (baseline)"
        print(f"\nOpen loop: {args.screens} screens for {seconds:g} s {work}…", flush=True)
        result = asyncio.run(
            open_loop(
                after.port,
                screens,
                version,
                leader,
                interval=args.interval,
                seconds=seconds,
                seed=args.seed,
                server_cpu=after.server.cpu_seconds,
            )
        )
        print_open(result)
        return result

    baseline = phase(args.baseline, None) if args.baseline else None
    opened = phase(args.duration, Leader(after.port, after.cookies, teams, enquiry_ids))
    return baseline, opened


if __name__ == "__main__":
    sys.exit(harness.main("desk", run, parse_args()))
