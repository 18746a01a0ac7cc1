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
everything as JSON under bench/results/.

The load generator is plain asyncio speaking HTTP/1.1 over loopback, in this process:
it competes with the server for CPU, so its own CPU use is printed, and so is the
server's CPU time per request, which a busy machine disturbs less than throughput.
gunicorn's sync workers close the connection after every response, so every request
is a fresh TCP connection (as from a reverse proxy that does not keep upstream
connections alive); the client reuses a connection whenever a server allows it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
# Run as a script, Python puts this folder first on the path; the project root is
# what the imports (and gunicorn) need.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"
PORTS = range(8700, 8800)
DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/resq_bench"
LEADER = "bench-leader"
REQUEST_TIMEOUT = 10.0  # seconds; a poll slower than this counts as an error
LEADER_TIMEOUT = 30.0  # a person waits longer for a click than a timer for a poll
MAX_REQUESTS_PER_CONNECTION_LOOP = 1_000_000  # every loop has a count bound too
MAX_IN_FLIGHT = 5_000  # open loop: beyond this the client, not the server, is the limit
DRAIN_SECONDS = 15.0  # open loop: how long to wait for the last answers
BOARD_SIZES = (0, 20, 200)
OPEN_LOOP_WAITING = 20
FIRST_NAMES = ["Aisha", "Ben", "Chloe", "Dinh", "Ella", "Farid", "Grace", "Hiro", "Isla", "Jack"]
LAST_NAMES = ["Nguyen", "Smith", "Patel", "O'Brien", "Chen", "Walker", "Kaur", "Rossi", "Lee"]


# --- statistics ------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (NaN when there are none)."""
    if not values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(values)))
    return values[min(rank, len(values)) - 1]


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    value = seconds * 1000
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def latency_summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_ms": round(percentile(ordered, 50) * 1000, 2),
        "p95_ms": round(percentile(ordered, 95) * 1000, 2),
        "p99_ms": round(percentile(ordered, 99) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2) if ordered else math.nan,
    }


def cpu_share(seconds: float = 1.0) -> float:
    """How much of one core a busy process gets now, in %: near 100 on a quiet
    machine, far less when other work competes (then every figure is pessimistic)."""
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(100_000_000):
        if time.perf_counter() - wall_start >= seconds:
            break
    return round(100 * (time.process_time() - cpu_start) / (time.perf_counter() - wall_start))


# --- a small HTTP/1.1 client -----------------------------------------------------------


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]
    cookies: dict[str, str]
    body: bytes


def build_request(
    method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One client connection, kept alive for as long as the server allows."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def _send(self, raw: bytes) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        self.writer.write(raw)
        await self.writer.drain()
        return await self.reader.readuntil(b"\r\n\r\n")

    async def request(self, raw: bytes, *, head: bool = False) -> Response:
        reused = self.writer is not None
        try:
            header_block = await self._send(raw)
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.close()
            # A kept-alive connection the server closed while idle: retry once, fresh.
            partial = isinstance(exc, asyncio.IncompleteReadError) and exc.partial
            if not reused or partial:
                raise
            header_block = await self._send(raw)
        try:
            return await self._read_response(header_block, head=head)
        except BaseException:
            self.close()
            raise

    async def _read_response(self, header_block: bytes, *, head: bool) -> Response:
        assert self.reader is not None
        lines = header_block.decode("latin-1").split("\r\n")
        http_version, status_text, *_ = lines[0].split(" ", 2)
        status = int(status_text)
        headers: dict[str, str] = {}
        cookies: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, cookie = pair.partition("=")
                cookies[key.strip()] = cookie.strip()
            else:
                headers[name] = value
        must_close = headers.get("connection", "").lower() == "close" or http_version.endswith(
            "1.0"
        )
        if head or status in (204, 304) or status < 200:
            body = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked()
        elif "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        else:
            body = await self.reader.read()
            must_close = True
        if must_close:
            self.close()
        return Response(status, headers, cookies, body)

    async def _read_chunked(self) -> bytes:
        assert self.reader is not None
        chunks = []
        for _ in range(1_000_000):
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # no trailers expected
                break
            chunks.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)
        return b"".join(chunks)


CLIENT_ERRORS = (OSError, EOFError, asyncio.LimitOverrunError, TimeoutError, ValueError)


async def fetch(
    port: int,
    method: str,
    target: str,
    *,
    headers: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    conn: Connection | None = None,
    timeout: float = REQUEST_TIMEOUT,
) -> Response:
    headers = dict(headers or {})
    body = b""
    if form is not None:
        body = urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    own = conn is None
    conn = conn or Connection(port)
    try:
        async with asyncio.timeout(timeout):
            return await conn.request(build_request(method, target, headers, body))
    finally:
        if own:
            conn.close()


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


# --- closed loop -----------------------------------------------------------------------


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
    raw: bytes,
    *,
    expect: int,
    concurrency: int,
    warmup: float,
    seconds: float,
    server_cpu: Callable[[], float],
) -> ClosedResult:
    """`concurrency` clients, each sending its next request when the last is answered.
    Throughput and latency are of the requests answered inside the window after the
    warm-up; server CPU is per request answered over the whole case."""
    loop = asyncio.get_running_loop()
    begin = loop.time()
    window_start, window_end = begin + warmup, begin + warmup + seconds
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    answered = 0

    async def client() -> None:
        nonlocal answered
        conn = Connection(port)
        try:
            for _ in range(MAX_REQUESTS_PER_CONNECTION_LOOP):
                started = loop.time()
                if started >= window_end:
                    break
                problem = None
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT):
                        response = await conn.request(raw)
                    answered += 1
                    if response.status != expect:
                        problem = f"HTTP {response.status}"
                except CLIENT_ERRORS as exc:
                    conn.close()
                    problem = type(exc).__name__
                finished = loop.time()
                if window_start <= finished <= window_end:
                    if problem is None:
                        latencies.append(finished - started)
                    else:
                        errors[problem] += 1
                if problem is not None:
                    await asyncio.sleep(0.01)  # no hot spin against a failing server
        finally:
            conn.close()

    cpu_before, server_before = time.process_time(), server_cpu()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    cpu = time.process_time() - cpu_before
    server = server_cpu() - server_before
    ordered = sorted(latencies)
    return ClosedResult(
        name=name,
        expect=expect,
        seconds=seconds,
        completed=len(ordered),
        rps=len(ordered) / seconds,
        p50_ms=percentile(ordered, 50) * 1000,
        p99_ms=percentile(ordered, 99) * 1000,
        errors=dict(errors),
        client_cpu_pct=100 * cpu / (warmup + seconds),
        server_cpu_ms=1000 * server / answered if answered else math.nan,
    )


# --- open loop -------------------------------------------------------------------------


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
        self.port = port
        self.cookies = cookies
        self.teams = teams  # [{"id", "slug", "staff"}]
        self.enquiry_ids = enquiry_ids
        self.board_html = ""
        self.version = 0
        self.added = 0
        self.step = 0
        self.actions: list[LeaderAction] = []

    def headers(self) -> dict[str, str]:
        return {
            "Cookie": cookie_header(self.cookies),
            "X-CSRFToken": self.cookies["csrftoken"],
            "HX-Request": "true",
            "HX-Current-URL": f"http://{HOST}:{self.port}/desk/",
        }

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

    async def load_desk(self) -> None:
        response = await fetch(self.port, "GET", "/desk/", headers=self.headers())
        if response.status != 200:
            raise RuntimeError(f"the leader could not load the desk: HTTP {response.status}")
        self.board_html = response.body.decode()
        self.version = int(response.headers["x-board-version"])

    async def act(self) -> None:
        loop = asyncio.get_running_loop()
        kind, target, form = self.next_request()
        if form is None:  # nothing to start or finish: skip this turn
            self.actions.append(
                LeaderAction(kind, "skipped", 0.0, self.version, self.version, loop.time())
            )
            return
        before = self.version
        started = loop.time()
        status: int | str
        try:
            response = await fetch(
                self.port,
                "POST",
                target,
                headers=self.headers(),
                form=form,
                timeout=LEADER_TIMEOUT,
            )
            status = response.status
            if response.status == 200:
                self.board_html = response.body.decode()
                self.version = int(response.headers.get("x-board-version", self.version))
        except CLIENT_ERRORS as exc:
            status = type(exc).__name__
        done = loop.time()
        self.actions.append(
            LeaderAction(kind, status, (done - started) * 1000, before, self.version, done)
        )


async def open_loop(
    port: int,
    session_keys: list[str],
    session_cookie: str,
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
    is counted from when it was due."""
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    screens = len(session_keys)
    phases = sorted((rng.uniform(0, interval), i) for i in range(screens))
    versions = [version] * screens
    adopted: list[list[tuple[int, float]]] = [[] for _ in range(screens)]
    cookies = [f"{session_cookie}={key}" for key in session_keys]
    idle: list[list[Connection]] = [[] for _ in range(screens)]
    latencies: list[float] = []
    by_answer: dict[str, list[float]] = {"204": [], "200": []}
    answered: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    lags: list[float] = []
    in_flight: set[asyncio.Task] = set()
    max_in_flight = 0
    current_url = f"http://{HOST}:{port}/desk/"

    async def poll(screen: int, due: float) -> None:
        # The screen's own connection if it is idle (keep-alive), else a new one.
        conn = idle[screen].pop() if idle[screen] else Connection(port)
        raw = build_request(
            "GET",
            f"/desk/poll/?v={versions[screen]}",
            {
                "Cookie": cookies[screen],
                "HX-Request": "true",
                "HX-Trigger": "sync",
                "HX-Target": "board",
                "HX-Current-URL": current_url,
            },
        )
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                response = await conn.request(raw)
        except CLIENT_ERRORS as exc:
            conn.close()
            errors[type(exc).__name__] += 1
            return
        except asyncio.CancelledError:
            conn.close()
            raise
        now = loop.time()
        if conn.writer is not None:
            idle[screen].append(conn)
        if response.status == 204:
            answered["204 unchanged"] += 1
        elif response.status == 200:
            answered["200 changed"] += 1
            new = int(response.headers.get("x-board-version", versions[screen]))
            if new > versions[screen]:
                versions[screen] = new
                adopted[screen].append((new, now))
        else:
            errors[f"HTTP {response.status}"] += 1
            return
        latencies.append(now - due)
        by_answer[str(response.status)].append(now - due)

    async def leader_rota(start: float, end: float) -> None:
        turn_at = start + rng.uniform(1.0, 2.0)
        for _ in range(10_000):
            if turn_at > end - 0.5:
                break
            await asyncio.sleep(max(0.0, turn_at - loop.time()))
            await leader.act()
            # The next action 2-3 s after this one was due; a slow answer delays it
            # (one person, one click at a time) rather than causing a burst.
            turn_at = max(turn_at + rng.uniform(2.0, 3.0), loop.time() + 1.0)

    if leader is None:  # a baseline: nothing changes, every answer is a 204
        leader = Leader(port, {}, [], [])
        rota = False
    else:
        await leader.load_desk()
        rota = True
    cpu_before, server_before = time.process_time(), server_cpu()
    start = loop.time() + 0.2
    end = start + seconds
    leader_task = asyncio.create_task(leader_rota(start, end) if rota else asyncio.sleep(0))
    scheduled = 0
    rounds = math.ceil(seconds / interval) + 1
    for round_no in range(rounds):
        for phase, screen in phases:
            due = start + round_no * interval + phase
            if due >= end:
                break
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append(loop.time() - due)
            scheduled += 1
            if len(in_flight) >= MAX_IN_FLIGHT:
                errors["client: too many in flight"] += 1
                continue
            task = asyncio.create_task(poll(screen, due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            max_in_flight = max(max_in_flight, len(in_flight))
    await leader_task
    if in_flight:
        _done, pending = await asyncio.wait(set(in_flight), timeout=DRAIN_SECONDS)
        for task in pending:
            task.cancel()
            errors["unanswered at the end"] += 1
    for conns in idle:
        for conn in conns:
            conn.close()
    cpu = time.process_time() - cpu_before
    server = server_cpu() - server_before
    elapsed = loop.time() - start

    # Freshness: how long after a leader's action returned did each screen show it?
    delays: list[float] = []
    missed = 0
    for action in leader.actions:
        if action.version_after <= action.version_before or action.done_at > end - interval - 1:
            continue
        for history in adopted:
            index = bisect_left([v for v, _ in history], action.version_after)
            if index == len(history):
                missed += 1
            else:
                delays.append(max(0.0, history[index][1] - action.done_at))
    delays.sort()
    freshness: dict[str, float | int] = {
        "changes": sum(
            1
            for a in leader.actions
            if a.version_after > a.version_before and a.done_at <= end - interval - 1
        ),
        "p50_s": round(percentile(delays, 50), 2),
        "p99_s": round(percentile(delays, 99), 2),
        "max_s": round(delays[-1], 2) if delays else math.nan,
        "missed": missed,
    }
    lags.sort()
    return OpenResult(
        screens=screens,
        interval=interval,
        seconds=seconds,
        scheduled=scheduled,
        answered=dict(answered),
        errors=dict(errors),
        latency=latency_summary(latencies),
        latency_by_answer={k: latency_summary(v) for k, v in by_answer.items()},
        offered_rps=round(scheduled / seconds, 1),
        dispatch_lag_ms={
            "p99": round(percentile(lags, 99) * 1000, 2),
            "max": round(lags[-1] * 1000, 2) if lags else math.nan,
        },
        max_in_flight=max_in_flight,
        client_cpu_pct=round(100 * cpu / elapsed, 1),
        server_cpu_pct=round(100 * server / elapsed, 1),
        actions=leader.actions,
        freshness=freshness,
    )


# --- database and server ---------------------------------------------------------------


def database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if "bench" not in name:
        raise SystemExit(f"Refusing to use database {name!r}: its name must contain 'bench'.")
    return name


def recreate_database(url: str, *, drop_only: bool = False) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = database_name(url)
    params = {
        "host": parts.hostname,
        "port": parts.port or 5432,
        "user": parts.username,
        "password": parts.password,
        "dbname": "postgres",
    }
    with psycopg.connect(
        **{k: v for k, v in params.items() if v is not None}, autocommit=True
    ) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def server_environment(db_url: str, static_root: str) -> dict[str, str]:
    """Production settings, through the environment as in production; plain HTTP on
    loopback, so no SSL redirect and no HSTS."""
    return {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": db_url,
        "DEBUG": "off",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": f"{HOST},localhost",
        "SECURE_SSL_REDIRECT": "off",
        "SECURE_HSTS_SECONDS": "0",
        "STATIC_MANIFEST": "on",
        "BENCH_STATIC_ROOT": static_root,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def free_port(preferred: int | None, ports: range = PORTS) -> int:
    candidates = [preferred] if preferred else list(ports)
    for port in candidates:
        if port not in ports:
            raise SystemExit(f"--port must be within {ports.start}-{ports.stop - 1}.")
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return port
    raise SystemExit(f"No free port in {ports.start}-{ports.stop - 1}.")


class Server:
    """gunicorn in its own process group, stopped (and waited for) whatever happens."""

    def __init__(self, port: int, workers: int, log_path: Path, *, timeout: int = 30) -> None:
        self.port = port
        self.workers = workers
        self.log_path = log_path
        self.timeout = timeout
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "resq.wsgi:application",
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            "sync",
            "--timeout",
            str(self.timeout),
            "--graceful-timeout",
            "5",
            "--log-level",
            "warning",
            "--error-logfile",
            "-",
            "--chdir",
            str(ROOT),
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.log_tail()}")
            try:
                response = asyncio.run(fetch(self.port, "GET", "/healthz"))
                if response.status == 200:
                    return
            except CLIENT_ERRORS:
                pass
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        raise RuntimeError(
            f"gunicorn did not answer /healthz in {timeout:.0f} s:\n{self.log_tail()}"
        )

    def cpu_seconds(self) -> float:
        """CPU time used so far by gunicorn and its workers (its own process group),
        read from the Linux process table; NaN where there is none."""
        if self.process is None or not Path("/proc").is_dir():
            return math.nan
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue  # exited meanwhile
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == self.process.pid:  # process group
                total += int(fields[11]) + int(fields[12])  # user + system
        return total / ticks

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # gunicorn stops its workers gracefully
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its own group, started above
            process.wait(timeout=5)


# --- in-process setup and measurement (Django) -------------------------------------------


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)


def create_leader(password: str):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(LEADER, password=password, first_name="Bench")
    user.groups.add(Group.objects.get(name="Student leader"))
    return user


def create_sessions(user, count: int) -> list[str]:
    """One logged-in session per screen, as if each browser had logged in."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    store = import_module(settings.SESSION_ENGINE).SessionStore
    keys = []
    for _ in range(count):
        session = store()
        session[SESSION_KEY] = user._meta.pk.value_to_string(user)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        keys.append(session.session_key)
    return keys


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
    """Queries per request, and the median time of five, through the test client in
    this process against the same database (so no HTTP server, no network)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import (
        CaptureQueriesContext,
        setup_test_environment,
        teardown_test_environment,
    )

    from queueing.models import Board

    counts: dict[str, dict[str, float]] = {}
    setup_test_environment()  # lets the test client's host name in, in this process only
    try:
        client = Client()
        client.force_login(user)

        def measure(label: str, path: str, expect: int) -> None:
            client.get(path)  # anything lazy is now in place
            with CaptureQueriesContext(connection) as queries:
                response = client.get(path)
            query_count = len(queries)  # the next request clears the log
            if response.status_code != expect:
                raise RuntimeError(f"{path}: HTTP {response.status_code}, expected {expect}")
            times = []
            for _ in range(5):
                started = time.perf_counter()
                client.get(path)
                times.append(time.perf_counter() - started)
            counts[label] = {
                "queries": query_count,
                "ms": round(sorted(times)[2] * 1000, 2),
                "kb": round(len(response.content) / 1024, 1),
            }

        for waiting in BOARD_SIZES:
            set_board(waiting, user=user)
            measure(f"desk page, {waiting} waiting", "/desk/", 200)
            measure(f"poll changed, {waiting} waiting", "/desk/poll/?v=0", 200)
        measure("poll unchanged", f"/desk/poll/?v={Board.current_version()}", 204)
    finally:
        teardown_test_environment()
    return counts


async def http_login(port: int, password: str) -> dict[str, str]:
    """Log in as a person does: the form, its CSRF token, the POST."""
    page = await fetch(port, "GET", "/accounts/login/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
    if page.status != 200 or token is None or "csrftoken" not in page.cookies:
        raise RuntimeError(f"login page: HTTP {page.status}, no CSRF token")
    cookies = dict(page.cookies)
    response = await fetch(
        port,
        "POST",
        "/accounts/login/",
        headers={"Cookie": cookie_header(cookies)},
        form={
            "username": LEADER,
            "password": password,
            "csrfmiddlewaretoken": token.group(1).decode(),
            "next": "/desk/",
        },
    )
    cookies.update(response.cookies)
    if response.status != 302 or "sessionid" not in response.cookies:
        raise RuntimeError(f"login failed: HTTP {response.status}")
    return cookies


# --- reporting -------------------------------------------------------------------------


def print_closed(results: list[ClosedResult]) -> None:
    print(
        f"\n{'case':<30} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'server CPU ms/req':>17} {'client CPU':>10}"
    )
    for r in results:
        errors = sum(r.errors.values())
        print(
            f"{r.name:<30} {r.rps:>7.0f} {ms(r.p50_ms / 1000):>7} {ms(r.p99_ms / 1000):>7} "
            f"{errors:>6} {r.server_cpu_ms:>17.2f} {r.client_cpu_pct:>9.0f}%"
        )
        if r.errors:
            print(f"{'':<4}errors: {r.errors}")


def print_open(result: OpenResult) -> None:
    lat = result.latency
    print(
        f"\nopen loop: {result.screens} screens, one poll each every {result.interval:g} s "
        f"for {result.seconds:g} s ({result.offered_rps:g} polls/s offered)"
    )
    print(f"  polls scheduled {result.scheduled}, answered {result.answered}")
    print(f"  errors {result.errors or 0}")
    print(
        f"  poll latency (from when due): p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, "
        f"p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms"
    )
    for status, part in result.latency_by_answer.items():
        if math.isnan(part["p50_ms"]):
            continue
        print(
            f"    answered {status}: p50 {part['p50_ms']} ms, p95 {part['p95_ms']} ms, "
            f"p99 {part['p99_ms']} ms, max {part['max_ms']} ms"
        )
    print(f"  server (gunicorn) CPU {result.server_cpu_pct}% of one core")
    print(
        f"  client: dispatch lag p99 {result.dispatch_lag_ms['p99']} ms, max "
        f"{result.dispatch_lag_ms['max']} ms; max in flight {result.max_in_flight}; "
        f"CPU {result.client_cpu_pct}%"
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
    by_name = {r.name: r for r in closed}
    poll_r = by_name["poll unchanged (204)"]
    anon_r = by_name["bare view, anonymous"]
    user_r = by_name["bare view, logged in"]
    poll, anon, user = poll_r.rps, anon_r.rps, user_r.rps

    def cpu_of(result: ClosedResult) -> float:
        return result.server_cpu_ms or math.nan

    lat = opened.latency
    acted = [a for a in opened.actions if a.status != "skipped"]
    action_ms = sorted(a.latency_ms for a in acted)
    open_errors = sum(opened.errors.values()) + sum(
        1 for a in acted if not (isinstance(a.status, int) and a.status == 200)
    )

    def across(kind: str, key: str) -> str:
        return "/".join(f"{queries[f'{kind}, {n} waiting'][key]:g}" for n in BOARD_SIZES)

    lines = [
        f"Desk bench {meta['when']} · {meta['cpus']} CPUs, load {meta['load']} and "
        f"{meta['cpu_share_pct']} % of a core free at start, {meta['cpu_share_end_pct']} % "
        "at the end · "
        f"gunicorn sync ×{meta['workers']}, DEBUG off, PostgreSQL · Python {meta['python']}, "
        f"Django {meta['django']}",
        f"Closed loop, {meta['concurrency']} connections, {meta['closed_seconds']:g} s each "
        "(req/s · p50/p99 ms · errors · server CPU ms/req):",
    ]
    for r in closed:
        lines.append(
            f"  {r.name:<26} {r.rps:>6.0f} · {ms(r.p50_ms / 1000)}/{ms(r.p99_ms / 1000)} · "
            f"{sum(r.errors.values())} · {r.server_cpu_ms:.2f}"
        )
    lines += [
        f"  unchanged poll = {100 * poll / anon:.0f} % of bare anonymous, "
        f"{100 * poll / user:.0f} % of bare logged-in (target ≥ 70 %: "
        f"{'met' if poll >= 0.7 * user else 'NOT met'}); by server CPU per request "
        f"{100 * cpu_of(anon_r) / cpu_of(poll_r):.0f} % and "
        f"{100 * cpu_of(user_r) / cpu_of(poll_r):.0f} %",
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
        f"  leader actions {len(acted)}: p50 {ms(percentile(action_ms, 50) / 1000)} ms, "
        f"max {ms(action_ms[-1] / 1000) if action_ms else '-'} ms; a change reached every "
        f"screen within p99 {opened.freshness['p99_s']} s, max {opened.freshness['max_s']} s",
        f"  p99 of the 204s {opened.latency_by_answer['204']['p99_ms']} ms, of the 200s "
        f"{opened.latency_by_answer['200']['p99_ms']} ms; CPU: gunicorn "
        f"{opened.server_cpu_pct}%, load generator {opened.client_cpu_pct}% of one core",
    ]
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    parser.add_argument("--port", type=int, help=f"port ({PORTS.start}-{PORTS.stop - 1})")
    parser.add_argument("--db-url", default=DEFAULT_DB_URL, help="PostgreSQL database to create")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument("--seed", type=int, default=1, help="random seed for phases and rota")
    args = parser.parse_args(argv)
    args.duration = args.duration or (8.0 if args.quick else 30.0)
    args.closed_seconds = args.closed_seconds or (1.5 if args.quick else 5.0)
    if args.baseline is None:
        args.baseline = 4.0 if args.quick else 10.0
    if not 0 <= args.baseline <= 3600:
        parser.error("--baseline must be between 0 and 3600 seconds")
    args.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 2.0)
    for name in ("duration", "closed_seconds", "interval"):
        if not 0 < getattr(args, name) <= 3600:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 3600 seconds")
    if not 1 <= args.screens <= 5000 or not 1 <= args.workers <= 16:
        parser.error("--screens must be 1-5000 and --workers 1-16")
    if not 1 <= args.concurrency <= 256:
        parser.error("--concurrency must be 1-256")
    database_name(args.db_url)
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict:
    port = free_port(args.port)
    static_root = workdir / "static"
    env = server_environment(args.db_url, str(static_root))
    meta = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "cpu_share_pct": cpu_share(),
        "workers": args.workers,
        "concurrency": args.concurrency,
        "closed_seconds": args.closed_seconds,
        "python": platform.python_version(),
    }
    print(f"Preparing database and static files (port {port})…", flush=True)
    recreate_database(args.db_url)
    setup_django(env)
    import django
    from django.conf import settings
    from django.db import connections

    from queueing.models import EnquiryType, Team

    meta["django"] = django.get_version()
    password = secrets.token_urlsafe(16)
    user = create_leader(password)
    session_keys = create_sessions(user, args.screens)
    teams = [{"id": t.pk, "slug": t.slug, "staff": 2} for t in Team.objects.filter(is_active=True)]
    enquiry_ids = list(EnquiryType.objects.filter(is_active=True).values_list("pk", flat=True))
    set_board(OPEN_LOOP_WAITING, user=user)
    connections.close_all()

    server = Server(port, args.workers, workdir / "server.log")
    try:
        server.start()
        server.wait_ready()
        print(
            f"gunicorn up: {args.workers} sync workers. Load average {meta['load']}; a busy "
            f"loop got {meta['cpu_share_pct']} % of a core (100 % = the machine is quiet).",
            flush=True,
        )
        cookies = asyncio.run(http_login(port, password))
        logged_in = {"Cookie": cookie_header(cookies)}
        session_cookie = settings.SESSION_COOKIE_NAME

        def closed(name: str, target: str, expect: int, headers: dict | None = None):
            print(f"  closed loop: {name}…", flush=True)
            raw = build_request("GET", target, headers)
            return asyncio.run(
                closed_loop(
                    port,
                    name,
                    raw,
                    expect=expect,
                    concurrency=args.concurrency,
                    warmup=args.warmup,
                    seconds=args.closed_seconds,
                    server_cpu=server.cpu_seconds,
                )
            )

        from queueing.models import Board

        results = []
        version = Board.current_version()
        connections.close_all()
        htmx = {**logged_in, "HX-Request": "true"}
        results.append(closed("bare view, anonymous", "/bench/bare/", 200))
        results.append(closed("bare view, logged in", "/bench/bare/user/", 200, logged_in))
        results.append(closed("poll unchanged (204)", f"/desk/poll/?v={version}", 204, htmx))
        results.append(
            closed(f"poll changed, {OPEN_LOOP_WAITING} waiting", "/desk/poll/?v=0", 200, htmx)
        )
        for waiting in BOARD_SIZES:
            set_board(waiting, user=user)
            connections.close_all()
            results.append(closed(f"desk page, {waiting} waiting", "/desk/", 200, logged_in))
        print_closed(results)

        print("\nCounting queries in-process…", flush=True)
        queries = count_queries(user)
        for label, row in queries.items():
            print(
                f"  {label:<30} {row['queries']:>3} queries {row['ms']:>7.1f} ms "
                f"{row['kb']:>7.1f} KiB"
            )

        def open_phase(seconds: float, leader: Leader | None) -> OpenResult:
            version = set_board(OPEN_LOOP_WAITING, user=user)
            connections.close_all()
            work = "with a leader at work" if leader else "and no changes (baseline)"
            print(f"\nOpen loop: {args.screens} screens for {seconds:g} s {work}…", flush=True)
            result = asyncio.run(
                open_loop(
                    port,
                    session_keys,
                    session_cookie,
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
    finally:
        server.stop()
        connections.close_all()

    meta["cpu_share_end_pct"] = cpu_share()
    block = summary_block(meta, results, queries, opened, baseline)
    print("\n" + "-" * 100 + "\n" + block + "\n" + "-" * 100)
    return {
        "meta": meta,
        "args": {k: v for k, v in vars(args).items() if k != "db_url"},
        "closed": [asdict(r) for r in results],
        "queries": queries,
        "open": asdict(opened),
        "open_baseline": asdict(baseline) if baseline else None,
        "summary": block,
    }


def _plain_json(value: object) -> object:
    """NaN (no data) as null, so the file is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _plain_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_json(item) for item in value]
    return value


def _interrupt(signum: int, frame: object) -> None:
    """A polite stop (SIGTERM) runs the same clean-up as Ctrl-C."""
    raise KeyboardInterrupt


def run_and_save(
    kind: str,
    run: Callable[[argparse.Namespace, Path], dict],
    args: argparse.Namespace,
    *,
    prepare: Callable[[dict], object] = lambda report: report,
    default: Callable[[object], object] = str,
) -> int:
    """What every benchmark's main does: run in a scratch directory, save the report
    under bench/results/<kind>-<time>.json, and clean up (its database unless
    --keep-db) whether it finished, failed or was interrupted."""
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix=f"resq-{kind}-bench-"))
    try:
        report = run(args, workdir)
        results_dir = BENCH_DIR / "results"
        results_dir.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = results_dir / f"{kind}-{stamp}{'-quick' if args.quick else ''}.json"
        path.write_text(json.dumps(prepare(report), indent=2, default=default))
        print(f"Results saved to {path.relative_to(ROOT)}")
        return 0
    except KeyboardInterrupt:
        print("\nInterrupted; cleaning up.", file=sys.stderr)
        return 130
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if not args.keep_db:
            with contextlib.suppress(Exception):
                recreate_database(args.db_url, drop_only=True)
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    return run_and_save("desk", run, parse_args(argv), prepare=_plain_json)


if __name__ == "__main__":
    sys.exit(main())
