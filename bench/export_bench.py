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
import io
import sys
import threading
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the project, not bench/
from bench import harness  # noqa: E402

PORTS = range(9000, 9100)
DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/resq_export_bench"
EXPORT_URL = "/reports/export/visits.csv?period=all-time"
#: What production gives a worker to finish a response (deploy/gunicorn.conf.py): a
#: sync worker cannot report in while it streams, so a longer download is cut off.
PRODUCTION_TIMEOUT = 60
SAMPLE_SECONDS = 0.01
BOM = b"\xef\xbb\xbf"


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


def only_worker(server: harness.Server) -> int:
    for _ in range(100):
        if len(workers := server.worker_pids()) == 1:
            return workers[0]
        time.sleep(0.1)
    raise RuntimeError(
        f"Expected one gunicorn worker, found {workers}: did another server answer "
        f"on port {server.port}?\n{server.log_tail()}"
    )


def download(port: int, path: str, cookies: dict[str, str], *, timeout: float) -> dict:
    """GET a URL and read the body as it arrives, keeping only counts: the client must
    not hold a million rows either."""
    first_byte = None
    size = lines = 0
    head = b""
    started = time.perf_counter()
    with (
        harness.client(port, cookies, timeout=timeout) as http,
        http.stream("GET", path) as response,
    ):
        for chunk in response.iter_raw():
            if first_byte is None:
                first_byte = time.perf_counter() - started
            size += len(chunk)
            lines += chunk.count(b"\n")
            if len(head) < 200:
                head += chunk[:200]
    return {
        "status": response.status_code,
        "headers": response.headers,
        "seconds": time.perf_counter() - started,
        "first_byte_s": first_byte,
        "bytes": size,
        "lines": lines,
        "head": head,
    }


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


def measure(args: argparse.Namespace, port: int, workdir: Path, cookies: dict, label: str) -> dict:
    from django.db import connections

    expected = visit_count()
    connections.close_all()
    with harness.Server(port, 1, workdir / f"server-{label}.log", timeout=args.timeout) as server:
        pid = only_worker(server)
        # Warm-up: the worker imports and renders everything an export touches once.
        for path in ("/reports/export/", "/reports/export/visits.csv?period=last-day"):
            warm = download(port, path, cookies, timeout=args.timeout)
            if warm["status"] != 200:
                raise RuntimeError(f"{path}: HTTP {warm['status']}\n{server.log_tail()}")
        before = memory_kib(pid)
        sampler = RssSampler(pid)
        sampler.start()
        try:
            result = download(port, EXPORT_URL, cookies, timeout=args.timeout)
        finally:
            sampler.done.set()
            sampler.join()
        after = memory_kib(pid)
        if server.process is None or server.process.poll() is not None:
            raise RuntimeError(f"gunicorn died during the download:\n{server.log_tail()}")
        log = server.log_tail()
    if result["status"] != 200:
        raise RuntimeError(f"All Time export: HTTP {result['status']}\n{log}")
    if not result["head"].startswith(BOM + b"Visit ID,"):
        raise RuntimeError(f"Not the export's CSV: {result['head'][:80]!r}")
    rows = result["lines"] - 1
    if rows != expected:
        raise RuntimeError(
            f"The file has {rows:,} rows but the database {expected:,} visits (cut off?)\n{log}"
        )
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
        "peak_sampled_mib": round(max(sampler.samples, default=after["VmRSS"]) / 1024, 1),
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
        *(
            f"All Time, {row['rows']:,} rows: {row['seconds']:.1f} s, {row['rows_per_s']:,} "
            f"rows/s, {row['mib']:.1f} MiB, first byte {row['first_byte_s'] * 1000:.0f} ms; "
            f"worker peak {row['peak_mib']:.1f} MiB (before {row['rss_before_mib']:.1f}, "
            f"growth {row['growth_mib']:+.1f})"
            for row in rows
        ),
    ]
    ratio = large["peak_mib"] / small["peak_mib"]
    lines.append(
        f"Peak memory {large['rows']:,} / {small['rows']:,} rows: {ratio:.2f} "
        f"({'flat' if ratio < 1.1 else 'NOT flat'}); rows {large['rows'] / small['rows']:.1f}×"
    )
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = harness.arguments(__doc__, PORTS, DEFAULT_DB_URL)
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
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict:
    port, meta = harness.prepare(args, workdir, PORTS)
    from django.core.management import call_command

    call_command("demo_terms", verbosity=0, stdout=io.StringIO())
    cookies = harness.session_cookies(harness.create_user("bench-coordinator", "Coordinator"))[0]

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
        row = measure(args, port, workdir, cookies, label.replace(",", "").replace(" ", "-"))
        print_row(row)
        rows.append(row)
    block = summary_block(meta, rows)
    harness.print_block(block)
    return {
        "meta": meta,
        "generation_s": generation,
        "runs": rows,
        "summary": block,
    }


if __name__ == "__main__":
    sys.exit(harness.main("export", run, parse_args()))
