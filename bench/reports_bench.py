"""The usage dashboard over a million visits: how long does a term take, in how many queries?

One run, on a PostgreSQL database of its own, which it creates and drops:

1. migrate, the demo terms, and `demo_data --visits N --per-day D --no-events` (timed),
   then VACUUM ANALYZE (what autovacuum would have done to a table this old);
2. each metric function called directly on the filter for the term "Semester 2 2026":
   wall time (median of five after a warm-up) and queries;
3. in-process, through the test client logged in as a coordinator: the dashboard for
   the term (full page and the htmx partial), for the term and one team, for a week,
   for the whole range of the data, and each chart's CSV for the term;
4. the same dashboard pages through gunicorn (sync workers, DEBUG off, production
   settings through the environment, as `desk_bench.py` runs it);
5. EXPLAIN (ANALYZE, BUFFERS) of the slowest queries of the term dashboard, saying
   which scan a million rows sequentially;
6. optionally (--try-indexes) the same again after creating candidate indexes or
   planner statistics in the benchmark database only, so a suggestion comes with its
   effect.

    uv run python bench/reports_bench.py                 # 1,000,000 visits
    uv run python bench/reports_bench.py --quick         # 100,000 visits
    uv run python bench/reports_bench.py --visits 300000 --per-day 1000 --keep-db

It ends with a summary block and saves everything as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the project, not bench/
from bench import harness  # noqa: E402

PORTS = range(8800, 8900)
DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/resq_reports_bench"
TERM_NAME = "Semester 2 2026"
COORDINATOR = "bench-coordinator"
REPEATS = 5  # timed calls per case, after one warm-up; the median is reported
SLOWEST = 5  # queries explained per run
SEQ_SCAN_ROWS = 50_000  # a sequential scan returning this many rows (all loops) is flagged
HTTP_TIMEOUT = 60.0

#: Candidates for --try-indexes, created in the benchmark database only (the project's
#: migrations are untouched): (name, SQL, with {tz} for the service's time zone).
#: The metrics group by the visit's stored report columns (local day, hour of the week,
#: wait and session seconds), so they need no statistics on expressions. Partial
#: indexes for the session-overlap query were tried and left out: the planner kept the
#: plain arrived_at index, with no measurable gain, at 1,000,000 visits.
CANDIDATE_INDEXES = [
    (
        # Unique students hash the numbers of a term's visits: with the number in the
        # arrival index the scan need not visit the table (measured 53 -> 42 ms a term).
        # PostgreSQL only; SQLite would ignore the included column.
        "bench_visit_arrived_students",
        "CREATE INDEX bench_visit_arrived_students ON queueing_visit (arrived_at) "
        "INCLUDE (student_number)",
    ),
]


# --- data --------------------------------------------------------------------------------


def visit_table() -> dict:
    """How many visits, since when, and the visit table's size with its indexes."""
    from django.db import connection

    from queueing.models import Visit

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('queueing_visit'))")
        size = cursor.fetchone()[0]
    first = Visit.objects.order_by("arrived_at").values_list("arrived_at", flat=True).first()
    return {
        "visits": Visit.objects.count(),
        "table_size": size,
        "first_day": str(first.date()) if first else None,
    }


def generate(visits: int, per_day: float, seed: int) -> dict:
    from django.core.management import call_command
    from django.db import connection

    call_command("demo_terms", verbosity=0, stdout=io.StringIO())
    print(f"Generating {visits:,} visits at about {per_day:g} a day…", flush=True)
    out = io.StringIO()
    started = time.perf_counter()
    call_command(
        "demo_data",
        visits=visits,
        per_day=per_day,
        no_events=True,
        seed=seed,
        # DEBUG is off, as in production; the database is the benchmark's own.
        allow_public_demo_logins=True,
        stdout=out,
    )
    generation = time.perf_counter() - started
    print("  " + "\n  ".join(out.getvalue().strip().splitlines()), flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    vacuum = time.perf_counter() - started
    data = visit_table()
    print(
        f"  demo_data took {generation:.1f} s ({data['visits'] / generation:,.0f} visits/s); "
        f"VACUUM ANALYZE {vacuum:.1f} s; visit table with indexes {data['table_size']}",
        flush=True,
    )
    return data | {
        "per_day": per_day,
        "generation_s": round(generation, 1),
        "vacuum_analyze_s": round(vacuum, 1),
        "output": out.getvalue(),
    }


# --- cases -------------------------------------------------------------------------------


def dashboard_cases(term, first_day: date, last_day: date) -> dict[str, tuple[str, dict]]:
    """label -> (path, extra headers)."""
    from reporting.views import CHARTS

    term_query = urlencode({"view": "term", "term": term.pk})
    week_day = term.first_day + timedelta(days=7 * 6 + 2)  # a Wednesday mid-term
    cases = {
        "term": (f"/reports/?{term_query}", {}),
        "term, htmx partial": (f"/reports/?{term_query}", {"HX-Request": "true"}),
        "term, one team": (f"/reports/?{term_query}&team=studysmarter", {}),
        "week": (f"/reports/?{urlencode({'view': 'week', 'day': week_day})}", {}),
        "whole range": (
            "/reports/?" + urlencode({"view": "range", "start": first_day, "end": last_day}),
            {},
        ),
    }
    for name in CHARTS:
        cases[f"csv {name}"] = (f"/reports/charts/{name}.csv?{term_query}", {})
    return cases


def metric_cases(term) -> dict[str, Callable[[], object]]:
    from queueing.models import Team
    from reporting import metrics
    from reporting.metrics import Filter

    f = Filter(term.first_day, term.last_day)
    team = Team.objects.get(slug="studysmarter")
    return {
        "visit_counts": lambda: metrics.visit_counts(f),
        "visits_per_day": lambda: metrics.visits_per_day(f),
        "outcomes": lambda: metrics.outcomes(f),
        "wait_stats": lambda: metrics.wait_stats(f),
        "wait_distribution": lambda: metrics.wait_distribution(f),
        "session_stats": lambda: metrics.session_stats(f),
        "arrivals_by_weekday_hour": lambda: metrics.arrivals_by_weekday_hour(f),
        "wait_by_hour": lambda: metrics.wait_by_hour(f),
        "popular_units": lambda: metrics.popular_units(f),
        "popular_faculties": lambda: metrics.popular_faculties(f),
        "enquiry_types": lambda: metrics.enquiry_types(f),
        "team_share": lambda: metrics.team_share(f),
        "utilisation": lambda: metrics.utilisation(f),
        "weekly_trend": lambda: metrics.weekly_trend(term),
        "visit_counts, one team": lambda: metrics.visit_counts(Filter(f.start, f.end, team)),
        "utilisation, previous period": lambda: metrics.utilisation(f.previous()),
    }


def print_row(label: str, row: dict, extra: str = "") -> None:
    print(
        f"  {label:<30} {row['ms']:>8.1f} ms  {row['queries']:>2} queries "
        f"(SQL {row['sql_ms']:.1f} ms){extra}",
        flush=True,
    )


def measure_metrics(term) -> dict[str, dict]:
    rows = {}
    for name, call in metric_cases(term).items():
        rows[name] = harness.timed(call, REPEATS)
        del rows[name]["result"]
        print_row(name, rows[name])
    return rows


def measure_in_process(user, cases: dict[str, tuple[str, dict]]) -> dict[str, dict]:
    rows = {}
    with harness.test_client(user) as client:
        for label, (path, headers) in cases.items():
            row = harness.timed(
                lambda path=path, headers=headers: client.get(path, headers=headers), REPEATS
            )
            response = row.pop("result")
            if response.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {response.status_code}")
            row["kb"] = round(len(response.content) / 1024, 1)
            rows[label] = row
            print_row(label, row, f"  {row['kb']:>6.1f} KiB")
    return rows


def measure_http(port: int, cookies: dict, cases: dict[str, tuple[str, dict]]) -> dict[str, dict]:
    """Each page alone through gunicorn: one warm-up, then the median of REPEATS."""
    rows = {}
    with harness.client(port, cookies, timeout=HTTP_TIMEOUT) as http:
        for label, (path, headers) in cases.items():
            if label.startswith("csv "):
                continue
            times = []
            for attempt in range(REPEATS + 1):
                started = time.perf_counter()
                response = http.get(path, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"gunicorn {path}: HTTP {response.status_code}")
                if attempt:
                    times.append(time.perf_counter() - started)
            times.sort()
            rows[label] = {
                "ms": round(times[len(times) // 2] * 1000, 1),
                "min_ms": round(times[0] * 1000, 1),
            }
            print(
                f"  {label:<30} {rows[label]['ms']:>8.1f} ms (min {rows[label]['min_ms']:.1f}) "
                f"{len(response.content) / 1024:>6.1f} KiB",
                flush=True,
            )
    return rows


# --- EXPLAIN -------------------------------------------------------------------------------


SEQ_SCAN = re.compile(r"Seq Scan on (\w+).*?rows=(\d+) loops=(\d+)")


def explain(sql: str) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        plan = [row[0] for row in cursor.fetchall()]
    big_scans = []
    for line in plan:
        match = SEQ_SCAN.search(line)
        if match and int(match[2]) * int(match[3]) >= SEQ_SCAN_ROWS:
            rows_out = int(match[2]) * int(match[3])
            big_scans.append(f"{match[1]} ({rows_out:,} rows out after its filter)")
    total = next((line for line in plan if line.startswith("Execution Time")), "")
    return {"plan": plan, "seq_scans": big_scans, "execution": total}


def slowest_queries(rows: dict[str, dict], limit: int = SLOWEST) -> list[dict]:
    """The slowest distinct queries across the given measurements, explained."""
    seen: dict[str, dict] = {}
    for label, row in rows.items():
        for query in row["captured"]:
            key = re.sub(r"'[^']*'", "?", query["sql"])
            if key not in seen or seen[key]["ms"] < query["ms"]:
                seen[key] = {**query, "from": label}
    ordered = sorted(seen.values(), key=lambda q: -q["ms"])[:limit]
    for query in ordered:
        query.update(explain(query["sql"]))
    return ordered


def print_explained(queries: list[dict], plan_lines: int = 14) -> None:
    for n, query in enumerate(queries, 1):
        sql = query["sql"]
        short = sql if len(sql) <= 400 else sql[:400] + " …"
        print(f"\n  #{n} {query['ms']:.1f} ms, from {query['from']}: {short}")
        for line in query["plan"][:plan_lines]:
            print(f"      {line}")
        if len(query["plan"]) > plan_lines:
            print(f"      … {query['execution']}")
        if query["seq_scans"]:
            print(f"    ! sequential scan over {', '.join(query['seq_scans'])}")


def create_candidate_indexes() -> list[str]:
    from django.conf import settings
    from django.db import connection

    made = []
    with connection.cursor() as cursor:
        for name, sql in CANDIDATE_INDEXES:
            started = time.perf_counter()
            cursor.execute(sql.format(tz=settings.TIME_ZONE.replace("'", "")))
            made.append(f"{name} ({time.perf_counter() - started:.1f} s)")
        cursor.execute("VACUUM (ANALYZE) queueing_visit")
    return made


# --- report ------------------------------------------------------------------------------


def without_captured(rows: dict[str, dict]) -> dict[str, dict]:
    return {k: {f: v for f, v in row.items() if f != "captured"} for k, row in rows.items()}


def summary_block(meta: dict, data: dict, runs: list[dict]) -> str:
    if data.get("reused"):
        made = "reused from an earlier run"
    else:
        made = (
            f"demo_data {data['generation_s']:g} s ({data['visits'] / data['generation_s']:,.0f}"
            f"/s), VACUUM ANALYZE {data['vacuum_analyze_s']:g} s"
        )
    lines = [
        f"Reports bench {meta['when']} · {meta['cpus']} CPUs, load {meta['load']} · "
        f"PostgreSQL {meta['postgres']} · Python {meta['python']}, Django {meta['django']}",
        f"Data: {data['visits']:,} visits from {data['first_day']} at about "
        f"{data['per_day']:g} a day; {made}, table {data['table_size']}",
    ]
    for run in runs:
        inproc, http, mets = run["in_process"], run["http"], run["metrics"]
        term = inproc["term"]
        lines += [
            f"[{run['name']}]",
            f"  {TERM_NAME} dashboard: {term['ms']:.1f} ms in-process, {term['queries']} "
            f"queries (SQL {term['sql_ms']:g} ms); gunicorn {http.get('term', {}).get('ms', '-')}"
            f" ms; {'well under a second' if term['ms'] < 500 else 'NOT well under a second'}",
        ]
        for label in ("term, htmx partial", "term, one team", "week", "whole range"):
            row = inproc[label]
            lines.append(
                f"  {label:<20} {row['ms']:>7.1f} ms, {row['queries']} queries; gunicorn "
                f"{http.get(label, {}).get('ms', '-')} ms"
            )
        csvs = {k[4:]: v for k, v in inproc.items() if k.startswith("csv ")}
        flagged = [n for n, q in enumerate(run["slowest"], 1) if q["seq_scans"]]
        slowest = ", ".join(f"#{n} {q['ms']:.0f} ms" for n, q in enumerate(run["slowest"], 1))
        lines += [
            "  CSV (ms/queries): "
            + ", ".join(f"{k} {v['ms']:.1f}/{v['queries']}" for k, v in csvs.items()),
            "  metrics on the term (ms/queries): "
            + ", ".join(f"{k} {v['ms']:.1f}/{v['queries']}" for k, v in mets.items()),
            f"  slowest queries: {slowest}; sequential scans returning ≥{SEQ_SCAN_ROWS:,} "
            f"rows: {', '.join(f'#{n}' for n in flagged) or 'none'}",
        ]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = harness.arguments(__doc__, PORTS, DEFAULT_DB_URL)
    parser.add_argument("--quick", action="store_true", help="100,000 visits instead")
    parser.add_argument("--visits", type=int, help="visits to generate (1,000,000; quick 100,000)")
    parser.add_argument(
        "--per-day", type=float, default=2000, help="average arrivals per drop-in day (2000)"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument(
        "--reuse-db",
        action="store_true",
        help="measure the data a --keep-db run left, without generating any (implies --keep-db)",
    )
    parser.add_argument("--no-http", action="store_true", help="skip the gunicorn part")
    parser.add_argument(
        "--try-indexes",
        action="store_true",
        help="measure again after creating candidate indexes (bench database only)",
    )
    parser.add_argument("--seed", type=int, default=2021, help="demo data seed")
    args = parser.parse_args(argv)
    args.keep_db = args.keep_db or args.reuse_db
    if args.visits is None:
        args.visits = 100_000 if args.quick else 1_000_000
    if not 1 <= args.visits <= 10_000_000:
        parser.error("--visits must be 1-10,000,000")
    if not 1 <= args.per_day <= 100_000:
        parser.error("--per-day must be 1-100,000")
    if not 1 <= args.workers <= 16:
        parser.error("--workers must be 1-16")
    return args


def measure_all(name: str, args, port: int, workdir: Path, user, term, cases) -> dict:
    print(f"\n== {name} ==\nMetric functions on the {TERM_NAME} filter (median of {REPEATS}):")
    mets = measure_metrics(term)
    print("\nDashboard in-process (test client, coordinator):")
    inproc = measure_in_process(user, cases)
    http: dict[str, dict] = {}
    if not args.no_http:
        from django.db import connections

        cookies = harness.session_cookies(user)[0]
        connections.close_all()
        log = workdir / f"server-{name.replace(' ', '-')}.log"
        with harness.Server(port, args.workers, log):
            print(f"\nDashboard through gunicorn ({args.workers} sync workers, DEBUG off):")
            http = measure_http(port, cookies, cases)
    print("\nSlowest queries of the term dashboard and the metric functions, explained:")
    slowest = slowest_queries({k: v for k, v in inproc.items() if k.startswith("term")} | mets)
    print_explained(slowest)
    return {
        "name": name,
        "metrics": without_captured(mets),
        "in_process": without_captured(inproc),
        "http": http,
        "slowest": slowest,
    }


def run(args: argparse.Namespace, workdir: Path) -> dict:
    port, meta = harness.prepare(args, workdir, PORTS)
    from django.utils import timezone

    from reporting.models import Term

    if args.reuse_db:
        data = visit_table() | {"per_day": args.per_day, "reused": True}
        if not data["visits"]:
            raise SystemExit("--reuse-db: the database holds no visits; run with --keep-db first.")
        print(f"Reusing {data['visits']:,} visits (table with indexes {data['table_size']}).")
    else:
        data = generate(args.visits, args.per_day, args.seed)
    user = harness.create_user(COORDINATOR, "Coordinator")
    term = Term.objects.get(name=TERM_NAME)
    first_day = date.fromisoformat(data["first_day"]) if data["first_day"] else term.first_day
    cases = dashboard_cases(term, first_day, timezone.localdate())

    runs = [measure_all("as migrated", args, port, workdir, user, term, cases)]
    if args.try_indexes:
        print("\nCreating candidate indexes and statistics in the benchmark database…")
        print("  " + ", ".join(create_candidate_indexes()))
        runs.append(measure_all("with the candidates", args, port, workdir, user, term, cases))
    block = summary_block(meta, data, runs)
    harness.print_block(block)
    return {
        "meta": meta,
        "data": data,
        "runs": runs,
        "summary": block,
    }


if __name__ == "__main__":
    sys.exit(harness.main("reports", run, parse_args()))
