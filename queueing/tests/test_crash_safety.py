"""The crash test (`bench/crash_test.py`) in the suite: on PostgreSQL only.

By default its quick run without the PostgreSQL restart: desk screens at work while
gunicorn's workers, then its master, are killed with SIGKILL (under a minute). The full
run, which also stops PostgreSQL as in a crash and starts it again, runs only with
RESQ_CRASH_TEST=1: that cuts off every other user of the server for ten seconds or so,
so it belongs on a machine of its own (CI), and is best run on its own.

Each run creates and drops a database of its own, named after this process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection, connections

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "crash_test.py"
RUN_SECONDS = 600

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="The crash test runs gunicorn on PostgreSQL, as in production.",
)


def crash_database_url() -> str:
    """The test run's PostgreSQL server, with a database name of the crash test's own."""
    settings = connection.settings_dict
    user = settings["USER"] or ""
    if settings["PASSWORD"]:
        user += f":{settings['PASSWORD']}"
    host = settings["HOST"] or "localhost"
    port = settings["PORT"] or 5432
    name = f"resq_bench_crash_test_{os.getpid()}"
    return f"postgres://{user}{'@' if user else ''}{host}:{port}/{name}"


def run_crash_test(*args: str) -> str:
    result = subprocess.run(  # noqa: S603 (the project's own script)
        [sys.executable, str(SCRIPT), "--db-url", crash_database_url(), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    print(result.stdout)
    print(result.stderr[-5000:], file=sys.stderr)
    assert result.returncode == 0, "the crash test failed: see its report above"
    return result.stdout


def count(report: str, label: str) -> int:
    match = re.search(rf"^{re.escape(label)}:\s+(\d+)", report, re.MULTILINE)
    assert match, f"no {label!r} in the report"
    return int(match[1])


def test_it_loses_no_acknowledged_action_when_gunicorn_is_killed():
    report = run_crash_test("--quick", "--no-postgres-restart")

    assert count(report, "acknowledged") > 0
    assert count(report, "lost") == 0
    assert count(report, "found after the crashes") == count(report, "acknowledged")
    assert count(report, "impossible states") == 0
    assert "recovered (after the restart): yes" in report
    # A screen that cannot read the desk's answers checks nothing of what they confirmed.
    assert "200 without a message" not in report


@pytest.mark.skipif(
    not os.environ.get("RESQ_CRASH_TEST"),
    reason="Restarts PostgreSQL: set RESQ_CRASH_TEST=1 on a machine of its own.",
)
def test_it_loses_nothing_when_postgresql_restarts_too():
    # This process's own connections do not survive the restart: let later tests open
    # fresh ones.
    connections.close_all()
    try:
        # As in a crash: PostgreSQL recovers what the screens committed from its log.
        report = run_crash_test("--postgres-mode", "immediate")
    finally:
        connections.close_all()

    assert count(report, "lost") == 0
    assert count(report, "impossible states") == 0
    assert re.search(r"^recovered \(after postgres\):\s+yes", report, re.MULTILINE)
    assert "HTTP 503 database unreachable" in report  # screens were told, not given a 500
