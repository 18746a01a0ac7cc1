"""The desk under load: how cheap is "nothing changed", and do 500 screens stay fast?

One run, against gunicorn (sync workers, DEBUG off, production settings) on a
PostgreSQL database of its own, which it creates and drops:

1. closed loop (N concurrent connections, each sending its next request as soon as
   the last is answered): a bare view anonymous and logged in (the framework's floor),
   an unchanged poll (204), a changed poll and the full desk page with 0, 20 and 200
   students waiting;
2. queries and in-process time of each desk request with 0, 20 and 200 waiting;
3. open loop: S screens, each polling every two seconds on a fixed timeline whether or
   not earlier polls were answered (so latency includes any queueing), first with
   nothing changing (a baseline), then while a student leader adds, starts and
   finishes visits and changes staffing every 2-3 s.

    uv run python bench/desk_bench.py            # full run (about two and a half minutes)
    uv run python bench/desk_bench.py --quick    # smoke run
    uv run python bench/desk_bench.py --help     # durations, screens, workers, port

It prints a table per part and a summary block to paste into a note, and saves
everything as JSON under bench/results/. The load generator (httpx on asyncio) runs in
this process and competes with the server for CPU, so its own CPU use is printed, and
so is the server's CPU time per request, which a busy machine disturbs less.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import re
import secrets
import sys
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the project, not bench/
from bench import harness  # noqa: E402

PORTS = range(8700, 8800)
DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/resq_bench"
LEADER = "bench-leader"
REQUEST_TIMEOUT = 10.0  # seconds; a poll slower than this counts as an error
LEADER_TIMEOUT = 30.0  # a person waits longer for a click than a timer for a poll
MAX_IN_FLIGHT = 5_000  # open loop: beyond this the client, not the server, is the limit
DRAIN_SECONDS = 15.0  # open loop: how long to wait for the last answers
BOARD_SIZES = (0, 20, 200)
OPEN_LOOP_WAITING = 20
FIRST_NAMES = ["Aisha", "Ben", "Chloe", "Dinh", "Ella", "Farid", "Grace", "Hiro", "Isla", "Jack"]
LAST_NAMES = ["Nguyen", "Smith", "Patel", "O'Brien", "Chen", "Walker", "Kaur", "Rossi", "Lee"]


# --- closed loop -------------------------------------------------------------------------


@dataclass
class ClosedResult:
    name: str
    expect: int
    seconds: float
    completed: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    client_cpu_pct: float
    server_cpu_ms: float  # gunicorn CPU time per answered request (NaN if unknown)


async def closed_loop(
    port: int,
    name: str,
    path: str,
    headers: dict[str, str],
    *,
    expect: int,
    args: argparse.Namespace,
    server_cpu: Callable[[], float],
) -> ClosedResult:
    """`args.concurrency` clients, each sending its next request when the last is
    answered. Throughput and latency are of the requests answered inside the window
    after the warm-up; server CPU is per request answered over the whole case."""
    loop = asyncio.get_running_loop()
    window_start = loop.time() + args.warmup
    window_end = window_start + args.closed_seconds
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    answered = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal answered
        while (started := loop.time()) < window_end:
            try:
                response = await http.get(path)
                answered += 1
                problem = None if response.status_code == expect else f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            finished = loop.time()
            if window_start <= finished <= window_end:
                if problem is None:
                    latencies.append(finished - started)
                else:
                    errors[problem] += 1
            if problem is not None:
                await asyncio.sleep(0.01)  # no hot spin against a failing server

    cpu_before, server_before = time.process_time(), server_cpu()
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(
        base_url=harness.base_url(port), headers=headers, timeout=REQUEST_TIMEOUT, limits=limits
    ) as http:
        await asyncio.gather(*(client(http) for _ in range(args.concurrency)))
    cpu = time.process_time() - cpu_before
    server = server_cpu() - server_before
    ordered = sorted(latencies)
    return ClosedResult(
        name=name,
        expect=expect,
        seconds=args.closed_seconds,
        completed=len(ordered),
        rps=len(ordered) / args.closed_seconds,
        p50_ms=harness.percentile(ordered, 50) * 1000,
        p99_ms=harness.percentile(ordered, 99) * 1000,
        errors=dict(errors),
        client_cpu_pct=100 * cpu / (args.warmup + args.closed_seconds),
        server_cpu_ms=1000 * server / answered if answered else math.nan,
    )


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


# --- the board, in-process -----------------------------------------------------------------


def set_board(waiting: int, *, user, staff: int = 2) -> int:
    """A board with `waiting` students waiting and nothing else; returns its version."""
    from django.db import transaction
    from django.utils import timezone

    from queueing.models import Board, EnquiryType, Team, Visit

    with transaction.atomic():
        Visit.objects.all().delete()
        Team.objects.update(available_staff=staff)
        teams = list(Team.objects.filter(is_active=True))
        kinds = list(EnquiryType.objects.filter(is_active=True))
        now = timezone.now()
        Visit.objects.bulk_create(
            Visit(
                student_name=f"{FIRST_NAMES[i % 10]} {LAST_NAMES[i % 9]}",
                student_number=f"{21000000 + i:08d}",
                unit_code=("CITS3200", "ECON1101", "", "LAWS1111")[i % 4],
                team=teams[i % len(teams)],
                enquiry_type=kinds[i % len(kinds)],
                arrived_at=now - timedelta(seconds=12 * (waiting - i)),
                added_by=user,
            )
            for i in range(waiting)
        )
        Board.bump()
    return Board.current_version()


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


def print_closed(results: list[ClosedResult]) -> None:
    print()
    harness.print_table(
        ["case", "req/s", "p50 ms", "p99 ms", "errors", "server CPU ms/req", "client CPU"],
        [
            [
                r.name,
                f"{r.rps:.0f}",
                harness.ms(r.p50_ms / 1000),
                harness.ms(r.p99_ms / 1000),
                sum(r.errors.values()),
                f"{r.server_cpu_ms:.2f}",
                f"{r.client_cpu_pct:.0f}%",
            ]
            for r in results
        ],
    )
    for r in results:
        if r.errors:
            print(f"  {r.name} errors: {r.errors}")


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
    closed: list[ClosedResult],
    queries: dict,
    opened: OpenResult,
    baseline: OpenResult | None,
) -> str:
    ms = harness.ms
    by_name = {r.name: r for r in closed}
    poll, anon, user = (
        by_name[name]
        for name in ("poll unchanged (204)", "bare view, anonymous", "bare view, logged in")
    )
    poll_cpu = poll.server_cpu_ms or math.nan
    lat = opened.latency
    acted = [a for a in opened.actions if a.status != "skipped"]
    action_ms = sorted(a.latency_ms for a in acted)
    open_errors = sum(opened.errors.values()) + sum(1 for a in acted if a.status != 200)

    def across(kind: str, key: str) -> str:
        return "/".join(f"{queries[f'{kind}, {n} waiting'][key]:g}" for n in BOARD_SIZES)

    lines = [
        f"Desk bench {meta['when']} · {meta['cpus']} CPUs, load {meta['load']} and "
        f"{meta['cpu_share_pct']} % of a core free at start, {meta['cpu_share_end_pct']} % "
        f"at the end · gunicorn sync ×{meta['workers']}, DEBUG off, PostgreSQL · Python "
        f"{meta['python']}, Django {meta['django']}",
        f"Closed loop, {meta['concurrency']} connections, {meta['closed_seconds']:g} s each "
        "(req/s · p50/p99 ms · errors · server CPU ms/req):",
        *(
            f"  {r.name:<26} {r.rps:>6.0f} · {ms(r.p50_ms / 1000)}/{ms(r.p99_ms / 1000)} · "
            f"{sum(r.errors.values())} · {r.server_cpu_ms:.2f}"
            for r in closed
        ),
        f"  unchanged poll = {100 * poll.rps / anon.rps:.0f} % of bare anonymous, "
        f"{100 * poll.rps / user.rps:.0f} % of bare logged-in (target ≥ 70 %: "
        f"{'met' if poll.rps >= 0.7 * user.rps else 'NOT met'}); by server CPU per request "
        f"{100 * anon.server_cpu_ms / poll_cpu:.0f} % and "
        f"{100 * user.server_cpu_ms / poll_cpu:.0f} %",
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
    changed = by_name[f"poll changed, {OPEN_LOOP_WAITING} waiting"].server_cpu_ms
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
    parser.add_argument("--duration", type=float, help="open-loop seconds (default 30, quick 8)")
    parser.add_argument(
        "--closed-seconds", type=float, help="seconds measured per closed-loop case (5, quick 1.5)"
    )
    parser.add_argument("--warmup", type=float, help="warm-up seconds per case (2, quick 0.5)")
    parser.add_argument(
        "--baseline",
        type=float,
        help="seconds of open loop with no changes first (default 10, quick 4; 0 = skip)",
    )
    parser.add_argument("--screens", type=int, default=500, help="open-loop screens (500)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls (2)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop connections")
    parser.add_argument("--seed", type=int, default=1, help="random seed for phases and rota")
    args = parser.parse_args(argv)
    args.duration = args.duration or (8.0 if args.quick else 30.0)
    args.closed_seconds = args.closed_seconds or (1.5 if args.quick else 5.0)
    if args.baseline is None:
        args.baseline = 4.0 if args.quick else 10.0
    if args.warmup is None:
        args.warmup = 0.5 if args.quick else 2.0
    if not 0 <= args.baseline <= 3600:
        parser.error("--baseline must be between 0 and 3600 seconds")
    for name in ("duration", "closed_seconds", "interval"):
        if not 0 < getattr(args, name) <= 3600:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 3600 seconds")
    if not 1 <= args.screens <= 5000 or not 1 <= args.workers <= 16:
        parser.error("--screens must be 1-5000 and --workers 1-16")
    if not 1 <= args.concurrency <= 256:
        parser.error("--concurrency must be 1-256")
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict:
    cpu_share = harness.cpu_share()
    port, meta = harness.prepare(args, workdir, PORTS)
    meta |= {
        "cpu_share_pct": cpu_share,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "closed_seconds": args.closed_seconds,
    }
    from django.db import connections

    from queueing.models import Board, EnquiryType, Team

    password = secrets.token_urlsafe(16)
    user = harness.create_user(LEADER, "Student leader", password)
    screens = harness.session_cookies(user, args.screens)
    teams = [{"id": t.pk, "slug": t.slug, "staff": 2} for t in Team.objects.filter(is_active=True)]
    enquiry_ids = list(EnquiryType.objects.filter(is_active=True).values_list("pk", flat=True))
    set_board(OPEN_LOOP_WAITING, user=user)
    version = Board.current_version()
    connections.close_all()

    with harness.Server(port, args.workers, workdir / "server.log") as server:
        print(
            f"gunicorn up: {args.workers} sync workers. Load average {meta['load']}; a busy "
            f"loop got {meta['cpu_share_pct']} % of a core (100 % = the machine is quiet).",
            flush=True,
        )
        cookies = harness.log_in(port, LEADER, password)
        logged_in = harness.cookie_header(cookies)
        htmx = logged_in | {"HX-Request": "true"}

        def closed(name: str, path: str, expect: int, headers: dict | None = None):
            print(f"  closed loop: {name}…", flush=True)
            return asyncio.run(
                closed_loop(
                    port,
                    name,
                    path,
                    headers or {},
                    expect=expect,
                    args=args,
                    server_cpu=server.cpu_seconds,
                )
            )

        results = [
            closed("bare view, anonymous", "/bench/bare/", 200),
            closed("bare view, logged in", "/bench/bare/user/", 200, logged_in),
            closed("poll unchanged (204)", f"/desk/poll/?v={version}", 204, htmx),
            closed(f"poll changed, {OPEN_LOOP_WAITING} waiting", "/desk/poll/?v=0", 200, htmx),
        ]
        for waiting in BOARD_SIZES:
            set_board(waiting, user=user)
            connections.close_all()
            results.append(closed(f"desk page, {waiting} waiting", "/desk/", 200, logged_in))
        print_closed(results)

        print("\nCounting queries in-process…", flush=True)
        queries = count_queries(user)
        harness.print_table(
            ["in-process", "queries", "ms", "KiB"],
            [
                [label, row["queries"], f"{row['ms']:.1f}", row["kb"]]
                for label, row in queries.items()
            ],
        )

        def open_phase(seconds: float, leader: Leader | None) -> OpenResult:
            version = set_board(OPEN_LOOP_WAITING, user=user)
            connections.close_all()
            work = "with a leader at work" if leader else "and no changes (baseline)"
            print(f"\nOpen loop: {args.screens} screens for {seconds:g} s {work}…", flush=True)
            result = asyncio.run(
                open_loop(
                    port,
                    screens,
                    version,
                    leader,
                    interval=args.interval,
                    seconds=seconds,
                    seed=args.seed,
                    server_cpu=server.cpu_seconds,
                )
            )
            print_open(result)
            return result

        baseline = open_phase(args.baseline, None) if args.baseline else None
        opened = open_phase(args.duration, Leader(port, cookies, teams, enquiry_ids))
    connections.close_all()

    meta["cpu_share_end_pct"] = harness.cpu_share()
    block = summary_block(meta, results, queries, opened, baseline)
    harness.print_block(block)
    return {
        "meta": meta,
        "closed": [asdict(r) for r in results],
        "queries": queries,
        "open": asdict(opened),
        "open_baseline": asdict(baseline) if baseline else None,
        "summary": block,
    }


if __name__ == "__main__":
    sys.exit(harness.main("desk", run, parse_args()))
