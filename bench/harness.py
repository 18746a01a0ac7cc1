"""What the benchmark scripts share: a PostgreSQL database of their own, gunicorn with
production settings on a free port, users and a login through the real form, and the
figures (percentiles, tables, a saved report).

A script creates its database at the start and drops it at the end, whatever happens
(`--keep-db` keeps it), and refuses a database whose name does not say it is
throwaway.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
#: A database is a script's own to create and drop only if its name says so.
THROWAWAY = ("bench", "crash_test")


# --- figures -----------------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (NaN when there are none)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


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


def cpu_share(seconds: float = 1.0) -> int:
    """How much of one core a busy process gets now, in %: near 100 on a quiet
    machine, far less when other work competes (then every figure is pessimistic)."""
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall_start < seconds:
        pass
    return round(100 * (time.process_time() - cpu_start) / (time.perf_counter() - wall_start))


def machine() -> dict:
    """When, and on what: the start of every report."""
    return {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "python": platform.python_version(),
    }


def timed(call: Callable[[], object], repeats: int = 5) -> dict:
    """One warm-up call (anything lazy is then in place), the queries of the next, and
    the median time of `repeats` more."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call()
    with CaptureQueriesContext(connection) as captured:
        result = call()
    queries = [{"sql": q["sql"], "ms": float(q["time"]) * 1000} for q in captured.captured_queries]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    times.sort()
    return {
        "ms": round(times[len(times) // 2] * 1000, 2),
        "min_ms": round(times[0] * 1000, 2),
        "queries": len(queries),
        "sql_ms": round(sum(q["ms"] for q in queries), 1),
        "captured": queries,
        "result": result,
    }


def print_table(header: list[str], rows: list[list[object]], align: str = "") -> None:
    """Rows under a header, each column as wide as its widest cell; `align` has an "l"
    or "r" per column (by default the first left, the others right)."""
    cells = [header, *([str(cell) for cell in row] for row in rows)]
    align = align or "l" + "r" * (len(header) - 1)
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        line = "  ".join(
            cell.ljust(width) if side == "l" else cell.rjust(width)
            for cell, width, side in zip(row, widths, align, strict=True)
        )
        print(line.rstrip(), flush=True)


def print_block(text: str) -> None:
    """A summary to paste into a note, between rules."""
    print("\n" + "-" * 100 + "\n" + text + "\n" + "-" * 100, flush=True)


# --- the database ------------------------------------------------------------------------


def database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if not any(word in name for word in THROWAWAY):
        raise SystemExit(
            f"Refusing to use database {name!r}: its name must contain "
            + " or ".join(repr(word) for word in THROWAWAY)
            + "."
        )
    return name


def admin_url(url: str) -> str:
    """The same server's maintenance database, for creating and dropping others."""
    return urlsplit(url)._replace(path="/postgres").geturl()


def recreate_database(url: str, *, drop_only: bool = False) -> None:
    import psycopg
    from psycopg import sql

    name = sql.Identifier(database_name(url))
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def server_environment(db_url: str, static_root: Path | None) -> dict[str, str]:
    """Production settings, through the environment as in production; plain HTTP on
    loopback, so no SSL redirect and no HSTS. With a `static_root`, the bench URLconf
    (bench/urls.py) and static files collected there and served from their hashed
    manifest; without, the product's own URLconf (its 500 handler answers a lost
    database) and no static files."""
    env = {
        "DJANGO_SETTINGS_MODULE": "bench.settings" if static_root else "resq.settings",
        "DATABASE_URL": db_url,
        "DEBUG": "off",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": f"{HOST},localhost",
        "SECURE_SSL_REDIRECT": "off",
        "SECURE_HSTS_SECONDS": "0",
        "STATIC_MANIFEST": "on" if static_root else "off",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return env | ({"BENCH_STATIC_ROOT": str(static_root)} if static_root else {})


def prepare(args, workdir: Path, ports: range, *, static: bool = True) -> tuple[int, dict]:
    """A free port; the database created (unless --reuse-db) and migrated, with Django
    set up in this process in the server's environment (gunicorn, started later,
    inherits it); the machine's and the software's figures for the report."""
    port = free_port(args.port, ports)
    meta = machine()
    print(f"Preparing database {database_name(args.db_url)} (port {port})…", flush=True)
    if not getattr(args, "reuse_db", False):
        recreate_database(args.db_url)
    os.environ.update(server_environment(args.db_url, workdir / "static" if static else None))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)
    if static:
        call_command("collectstatic", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        meta["postgres"] = cursor.fetchone()[0]
    meta["django"] = django.get_version()
    return port, meta


def create_user(username: str, group: str, password: str | None = None):
    """A person in one of the roles the migrations seed (the same one again on a kept
    database)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user, _ = get_user_model().objects.get_or_create(
        username=username, defaults={"first_name": "Bench"}
    )
    if password:
        user.set_password(password)
        user.save()
    user.groups.set([Group.objects.get(name=group)])
    return user


def session_cookies(user, count: int = 1) -> list[dict[str, str]]:
    """Logged-in sessions made in the database, as if `count` browsers had each logged
    in (the form's password hashing would take minutes for hundreds)."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    store = import_module(settings.SESSION_ENGINE).SessionStore
    cookies = []
    for _ in range(count):
        session = store()
        session[SESSION_KEY] = user._meta.pk.value_to_string(user)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        cookies.append({settings.SESSION_COOKIE_NAME: session.session_key})
    return cookies


@contextlib.contextmanager
def test_client(user) -> Iterator:
    """Django's test client logged in as `user`, in this process against the same
    database: a request's queries and time without HTTP or gunicorn."""
    from django.test import Client
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()  # lets the test client's host name in, in this process only
    try:
        client = Client()
        client.force_login(user)
        yield client
    finally:
        teardown_test_environment()


# --- HTTP --------------------------------------------------------------------------------


def base_url(port: int) -> str:
    return f"http://{HOST}:{port}"


def cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    """Production marks its cookies Secure, which an HTTP client honours by keeping
    them off plain HTTP; on loopback the scripts send them themselves."""
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


def client(port: int, cookies: dict[str, str] | None = None, **options) -> httpx.Client:
    """A client for the server on `port`, sending `cookies` with every request."""
    return httpx.Client(base_url=base_url(port), headers=cookie_header(cookies or {}), **options)


def log_in(port: int, username: str, password: str) -> dict[str, str]:
    """Log in as a person does: the form, its CSRF token, the POST. Returns the cookies
    (the session, and the CSRF token a page's forms and htmx requests send back)."""
    with client(port, timeout=30) as http:
        page = http.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if page.status_code != 200 or token is None or "csrftoken" not in page.cookies:
            raise RuntimeError(f"login page: HTTP {page.status_code}, no CSRF token")
        cookies = dict(page.cookies)
        form = {
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": token[1],
            "next": "/desk/",
        }
        response = http.post("/accounts/login/", data=form, headers=cookie_header(cookies))
    if response.status_code != 302 or "sessionid" not in response.cookies:
        raise RuntimeError(f"login failed: HTTP {response.status_code}")
    return cookies | dict(response.cookies)


# --- gunicorn ----------------------------------------------------------------------------


def free_port(preferred: int | None, ports: range, taken: tuple[int, ...] = ()) -> int:
    """A port of `ports` nothing listens on, other than those `taken` for a server not
    started yet."""
    for port in [preferred] if preferred else ports:
        if port in taken:
            continue
        if port not in ports:
            raise SystemExit(f"--port must be within {ports.start}-{ports.stop - 1}.")
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return port
    raise SystemExit(f"No free port in {ports.start}-{ports.stop - 1}.")


class Process(NamedTuple):
    pid: int
    parent: int
    state: str
    cpu_ticks: int  # user + system


def processes_in_group(pgid: int) -> list[Process]:
    """The processes of a process group, from the Linux process table (none elsewhere)."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue  # exited meanwhile
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid:
                found.append(
                    Process(
                        int(entry.name),
                        int(fields[1]),
                        fields[0],
                        int(fields[11]) + int(fields[12]),
                    )
                )
    return found


class Server:
    """gunicorn (sync workers) in its own process group, with the environment of this
    process; as a context manager, started, answering, and stopped whatever happens."""

    def __init__(
        self,
        port: int,
        workers: int,
        log_path: Path,
        *,
        timeout: int = 30,
        root: Path = ROOT,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
    ) -> None:
        """`root`, `python` and `env` serve another checkout: its code, its virtual
        environment, its database (by default this tree, this Python, this process's
        environment)."""
        self.port = port
        self.workers = workers
        self.log_path = log_path
        self.timeout = timeout
        self.root = root
        self.python = python
        self.env = env
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        command = [
            *(self.python, "-m", "gunicorn", "resq.wsgi:application"),
            *("--bind", f"{HOST}:{self.port}", "--workers", str(self.workers)),
            *("--worker-class", "sync", "--timeout", str(self.timeout)),
            *("--graceful-timeout", "5", "--log-level", "warning", "--error-logfile", "-"),
            *("--chdir", str(self.root)),
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.root,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url(self.port)}/healthz", timeout=5).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(
            f"gunicorn did not answer /healthz in {timeout:.0f} s:\n{self.log_tail()}"
        )

    def processes(self) -> list[Process]:
        return processes_in_group(self.process.pid) if self.process else []

    def worker_pids(self) -> list[int]:
        """The live workers: the master's children."""
        master = self.process.pid if self.process else None
        return [p.pid for p in self.processes() if p.parent == master and p.state != "Z"]

    def cpu_seconds(self) -> float:
        """CPU time used so far by gunicorn and its workers; NaN where there is no
        Linux process table."""
        if self.process is None or not Path("/proc").is_dir():
            return math.nan
        return sum(p.cpu_ticks for p in self.processes()) / os.sysconf("SC_CLK_TCK")

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


# --- a script's run ----------------------------------------------------------------------


def _plain(value: object) -> object:
    """NaN (no data) as null, so the saved file is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _interrupt(signum: int, frame: object) -> None:
    """A polite stop (SIGTERM) runs the same clean-up as Ctrl-C."""
    raise KeyboardInterrupt


def arguments(doc: str, ports: range, db_url: str) -> argparse.ArgumentParser:
    """A script's command line, with the options every script takes."""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, help=f"port ({ports.start}-{ports.stop - 1})")
    parser.add_argument("--db-url", default=db_url, help="PostgreSQL database to create")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    return parser


def main(kind: str, run: Callable, args: argparse.Namespace) -> int:
    """What every script's main does: run in a scratch directory, save the report
    under bench/results/<kind>-<time>.json (a run that returns an exit code instead
    saves nothing), and clean up, its database unless --keep-db and its gunicorn logs
    unless --keep-logs, whether it finished, failed or was interrupted."""
    database_name(args.db_url)
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix=f"resq-{kind}-"))
    try:
        report = run(args, workdir)
        if isinstance(report, int):
            return report
        report["args"] = {k: v for k, v in vars(args).items() if k != "db_url"}
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = ROOT / "bench" / "results" / f"{kind}-{stamp}{'-quick' if args.quick else ''}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(_plain(report), indent=2, default=str))
        print(f"Results saved to {path.relative_to(ROOT)}")
        return 0
    except KeyboardInterrupt:
        print("\nInterrupted; cleaning up.", file=sys.stderr)
        return 130
    finally:
        if "django" in sys.modules:
            with contextlib.suppress(Exception):
                from django.db import connections

                connections.close_all()
        if not args.keep_db:
            with contextlib.suppress(Exception):
                recreate_database(args.db_url, drop_only=True)
        if getattr(args, "keep_logs", False):
            print(f"gunicorn's logs are in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
