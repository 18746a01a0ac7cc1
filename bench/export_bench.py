"""Export Data at scale: does the streamed CSV keep a worker's memory flat?

One run, on a PostgreSQL database of its own, which it creates and drops:

1. migrate, the demo terms, and `demo_data --visits N --per-day D --no-events` for the
   first size (100,000 visits), then VACUUM ANALYZE;
2. gunicorn (one sync worker, DEBUG off, production settings through the environment,
   as the other benchmarks run it), a coordinator's session, a warm-up request, then
   the All Time CSV downloaded once, read as it arrives and counted, while the
   worker's resident memory is sampled; the worker's high-water mark (VmHWM) is read
   when the download ends;
3. more visits to reach the second size (1,000,000) and the same again with a fresh
   gunicorn, so each size's peak is its own.

It prints rows per second and the worker's peak memory for each size, and the ratio
of the peaks (about 1 when memory is flat).

    uv run python bench/export_bench.py              # 100,000 then 1,000,000 visits
    uv run python bench/export_bench.py --quick      # 20,000 then 200,000
    uv run python bench/export_bench.py --sizes 50000 500000 --keep-db

Linux only (it reads the worker's memory from /proc). Results are saved as JSON under
bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import os
import platform
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(ROOT))

from bench.desk_bench import (  # noqa: E402 (the path above comes first)
    HOST,
    Server,
    database_name,
    free_port,
    recreate_database,
    run_and_save,
    server_environment,
    setup_django,
)
from bench.reports_bench import create_coordinator, session_cookie  # noqa: E402

PORTS = range(9000, 9100)
DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/resq_export_bench"
EXPORT_URL = "/reports/export/visits.csv?period=all-time"
#: What production gives a worker to finish a response (deploy/gunicorn.conf.py): a
#: sync worker cannot report in while it streams, so a longer download is cut off.
PRODUCTION_TIMEOUT = 60
SAMPLE_SECONDS = 0.01
READ_BYTES = 256 * 1024
BOM = b"\xef\xbb\xbf"


class ExportServer(Server):
    """The desk benchmark's gunicorn, with the worker timeout long enough to measure a
    download that production would cut off (it is reported against production's)."""

    def __init__(self, port: int, log_path: Path, *, timeout: int) -> None:
        super().__init__(port, 1, log_path, timeout=timeout)

    def worker_pid(self) -> int:
        """The one worker: the gunicorn master's child."""
        assert self.process is not None
        for _ in range(100):
            children = []
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                with contextlib.suppress(OSError):
                    stat = Path(entry.path, "stat").read_text()
                    if int(stat[stat.rindex(")") + 2 :].split()[1]) == self.process.pid:
                        children.append(int(entry.name))
            if len(children) == 1:
                return children[0]
            time.sleep(0.1)
        raise RuntimeError(
            f"Expected one gunicorn worker, found {children}: did another server answer "
            f"on port {self.port}?\n{self.log_tail()}"
        )


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (the most it has been resident), in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


class RssSampler(threading.Thread):
    """The worker's resident memory every few milliseconds while a download runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            with contextlib.suppress(OSError, KeyError):
                self.samples.append(memory_kib(self.pid)["VmRSS"])
            self.done.wait(SAMPLE_SECONDS)


def get(port: int, path: str, cookie: str, *, timeout: float) -> dict:
    """GET a URL and read the body as it arrives, keeping only counts: the client must
    not hold a million rows either."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    started = time.perf_counter()
    try:
        connection.request("GET", path, headers={"Cookie": cookie})
        response = connection.getresponse()
        first_byte = None
        size = lines = 0
        head = b""
        while chunk := response.read(READ_BYTES):
            if first_byte is None:
                first_byte = time.perf_counter() - started
            size += len(chunk)
            lines += chunk.count(b"\n")
            if len(head) < 200:
                head += chunk[:200]
        return {
            "status": response.status,
            "headers": dict(response.getheaders()),
            "seconds": time.perf_counter() - started,
            "first_byte_s": first_byte,
            "bytes": size,
            "lines": lines,
            "head": head,
        }
    finally:
        connection.close()


# --- data --------------------------------------------------------------------------------


def add_visits(count: int, *, per_day: float, seed: int) -> float:
    """Visits of history through the demo_data command; returns its seconds."""
    from django.core.management import call_command
    from django.db import connection

    print(f"Adding {count:,} visits at about {per_day:g} a day…", flush=True)
    out = io.StringIO()
    started = time.perf_counter()
    call_command(
        "demo_data",
        visits=count,
        per_day=per_day,
        no_events=True,
        seed=seed,
        # DEBUG is off, as in production; the database is the benchmark's own.
        allow_public_demo_logins=True,
        stdout=out,
    )
    seconds = time.perf_counter() - started
    print("  " + out.getvalue().strip().splitlines()[0], flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) queueing_visit")
    return seconds


def visit_count() -> int:
    from queueing.models import Visit

    return Visit.objects.count()


# --- one size ----------------------------------------------------------------------------


def measure(args: argparse.Namespace, port: int, workdir: Path, cookie: str, label: str) -> dict:
    from django.db import connections

    expected = visit_count()
    connections.close_all()
    server = ExportServer(port, workdir / f"server-{label}.log", timeout=args.timeout)
    try:
        server.start()
        server.wait_ready()
        pid = server.worker_pid()
        # Warm-up: the worker imports and renders everything an export touches once.
        for path in ("/reports/export/", "/reports/export/visits.csv?period=last-day"):
            warm = get(port, path, cookie, timeout=args.timeout)
            if warm["status"] != 200:
                raise RuntimeError(f"{path}: HTTP {warm['status']}\n{server.log_tail()}")
        before = memory_kib(pid)
        sampler = RssSampler(pid)
        sampler.start()
        try:
            result = get(port, EXPORT_URL, cookie, timeout=args.timeout)
        finally:
            sampler.done.set()
            sampler.join()
        after = memory_kib(pid)
        if server.process is None or server.process.poll() is not None:
            raise RuntimeError(f"gunicorn died during the download:\n{server.log_tail()}")
        log = server.log_tail()
    finally:
        server.stop()
    if result["status"] != 200:
        raise RuntimeError(f"All Time export: HTTP {result['status']}\n{log}")
    if not result["head"].startswith(BOM + b"Visit ID,"):
        raise RuntimeError(f"Not the export's CSV: {result['head'][:80]!r}")
    rows = result["lines"] - 1
    if rows != expected:
        raise RuntimeError(
            f"The file has {rows:,} rows but the database {expected:,} visits (cut off?)\n{log}"
        )
    peak_sampled = max(sampler.samples, default=after["VmRSS"])
    return {
        "label": label,
        "rows": rows,
        "seconds": round(result["seconds"], 2),
        "first_byte_s": round(result["first_byte_s"] or 0, 3),
        "rows_per_s": round(rows / result["seconds"]),
        "mib": round(result["bytes"] / 2**20, 1),
        "mib_per_s": round(result["bytes"] / 2**20 / result["seconds"], 1),
        "rss_before_mib": round(before["VmRSS"] / 1024, 1),
        "peak_mib": round(after["VmHWM"] / 1024, 1),
        "peak_sampled_mib": round(peak_sampled / 1024, 1),
        "growth_mib": round((after["VmHWM"] - before["VmRSS"]) / 1024, 1),
        "samples": len(sampler.samples),
        "filename": result["headers"].get("Content-Disposition", ""),
    }


def print_row(row: dict) -> None:
    print(
        f"  {row['rows']:>10,} rows  {row['seconds']:>7.2f} s  {row['rows_per_s']:>8,} rows/s  "
        f"{row['mib']:>7.1f} MiB ({row['mib_per_s']:.1f} MiB/s)  first byte "
        f"{row['first_byte_s'] * 1000:.0f} ms\n"
        f"  worker memory: {row['rss_before_mib']:.1f} MiB before, peak (VmHWM) "
        f"{row['peak_mib']:.1f} MiB, highest sample {row['peak_sampled_mib']:.1f} MiB "
        f"({row['samples']} samples); growth {row['growth_mib']:+.1f} MiB",
        flush=True,
    )
    if row["seconds"] > PRODUCTION_TIMEOUT:
        print(
            f"  ! longer than production's {PRODUCTION_TIMEOUT} s worker timeout "
            "(GUNICORN_TIMEOUT): that worker would be stopped mid-download",
            flush=True,
        )


def summary_block(meta: dict, rows: list[dict]) -> str:
    small, large = rows[0], rows[-1]
    lines = [
        f"Export bench {meta['when']} · {meta['cpus']} CPUs, load {meta['load']} · "
        f"PostgreSQL {meta['postgres']} · Python {meta['python']}, Django {meta['django']}",
    ]
    for row in rows:
        lines.append(
            f"All Time, {row['rows']:,} rows: {row['seconds']:.1f} s, {row['rows_per_s']:,} "
            f"rows/s, {row['mib']:.1f} MiB, first byte {row['first_byte_s'] * 1000:.0f} ms; "
            f"worker peak {row['peak_mib']:.1f} MiB (before {row['rss_before_mib']:.1f}, "
            f"growth {row['growth_mib']:+.1f})"
        )
    ratio = large["peak_mib"] / small["peak_mib"]
    lines.append(
        f"Peak memory {large['rows']:,} / {small['rows']:,} rows: {ratio:.2f} "
        f"({'flat' if ratio < 1.1 else 'NOT flat'}); rows {large['rows'] / small['rows']:.1f}×"
    )
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 then 200,000 visits")
    parser.add_argument(
        "--sizes", type=int, nargs=2, metavar=("SMALL", "LARGE"), help="visits in each run"
    )
    parser.add_argument(
        "--per-day", type=float, default=2000, help="average arrivals per drop-in day (2000)"
    )
    parser.add_argument(
        "--timeout", type=int, default=600, help="gunicorn worker timeout for the run (600 s)"
    )
    parser.add_argument("--port", type=int, help=f"port ({PORTS.start}-{PORTS.stop - 1})")
    parser.add_argument("--db-url", default=DEFAULT_DB_URL, help="PostgreSQL database to create")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument("--seed", type=int, default=2021, help="demo data seed")
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [20_000, 200_000] if args.quick else [100_000, 1_000_000]
    small, large = args.sizes
    if not 1 <= small < large <= 10_000_000:
        parser.error("--sizes must be SMALL < LARGE, within 1-10,000,000")
    if not 1 <= args.per_day <= 100_000:
        parser.error("--per-day must be 1-100,000")
    if not 10 <= args.timeout <= 3600:
        parser.error("--timeout must be 10-3600")
    if not Path("/proc/self/status").exists():
        parser.error("this benchmark reads worker memory from /proc (Linux only)")
    database_name(args.db_url)
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict:
    port = free_port(args.port, PORTS)
    env = server_environment(args.db_url, str(workdir / "static"))
    meta = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "python": platform.python_version(),
    }
    print(f"Preparing database {database_name(args.db_url)} (port {port})…", flush=True)
    recreate_database(args.db_url)
    setup_django(env)
    import django
    from django.core.management import call_command
    from django.db import connection

    meta["django"] = django.get_version()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        meta["postgres"] = cursor.fetchone()[0]
    call_command("demo_terms", verbosity=0, stdout=io.StringIO())
    cookie = session_cookie(create_coordinator())

    rows = []
    generation = []
    for n, target in enumerate(args.sizes):
        # demo_data also leaves a few visits on today's board each time it runs.
        missing = target - visit_count()
        if missing > 0:
            generation.append(
                round(add_visits(missing, per_day=args.per_day, seed=args.seed + n), 1)
            )
        label = f"{visit_count():,} visits"
        print(f"\nAll Time export of {label} through gunicorn (1 sync worker, DEBUG off):")
        row = measure(args, port, workdir, cookie, label.replace(",", "").replace(" ", "-"))
        print_row(row)
        rows.append(row)
    block = summary_block(meta, rows)
    print("\n" + "-" * 100 + "\n" + block + "\n" + "-" * 100)
    return {
        "meta": meta,
        "args": {k: v for k, v in vars(args).items() if k != "db_url"},
        "generation_s": generation,
        "runs": rows,
        "summary": block,
    }


def main(argv: list[str] | None = None) -> int:
    return run_and_save("export", run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
