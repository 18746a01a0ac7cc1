"""Wait estimates on old-system history: the demo history written out as the 2021
system's CSV export, imported through ResQ's import as a manager would, and replayed.

    uv run python bench/old_system_replay.py [--weeks 60]

Imported history has no staffing record (the old system kept staff counts in one
browser), so every estimate infers the staff on duty from sessions at once. Three
throwaway SQLite databases in a temporary directory; the project's own is never
touched. Prints replay_estimates' lines for the imported history, then for the same
weeks as generated (with their staffing), to compare. About a minute.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project, not bench/
STATUSES = {"waiting": "In Queue", "in_session": "In Session", "finished": "Completed"}


def run(database: Path, *args: str) -> str:
    """One step in its own process, against `database`."""
    env = os.environ | {
        "DATABASE_URL": f"sqlite:///{database}",
        "DJANGO_SETTINGS_MODULE": "resq.settings",
        "DEBUG": "on",
    }
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def old_time(moment) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def export(path: Path) -> None:
    """The visits of this database as the old system exported them: naive UTC times,
    student numbers through a spreadsheet (leading zeros lost), teams by name."""
    import django

    django.setup()
    from queueing.models import Visit

    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["id", "studentName", "studentNumber", "unitCode", "enquiry", "queue", "status",
             "enterQueueTime", "changeSessionTime", "exitSessionTime"]
        )  # fmt: skip
        for visit in Visit.objects.select_related("team", "enquiry_type").order_by("pk"):
            writer.writerow(
                [
                    visit.pk,
                    visit.student_name,
                    str(int(visit.student_number)),
                    visit.unit_code,
                    visit.enquiry_type.name.lower(),
                    visit.team.name,
                    STATUSES.get(visit.status, "Ended"),
                    old_time(visit.arrived_at),
                    old_time(visit.started_at),
                    old_time(visit.ended_at),
                ]
            )


def import_(path: Path) -> None:
    """The file through the admin's import resource, confirmed."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from queueing.models import Visit
    from queueing.resources import LegacyVisitResource, parse_csv

    manager = get_user_model().objects.create(username="importer")
    result = LegacyVisitResource().import_data(
        parse_csv(path.read_text(encoding="utf-8")),
        dry_run=False,
        user=manager,
        rollback_on_validation_errors=True,
    )
    if result.has_errors() or result.has_validation_errors():
        raise SystemExit("The import refused the file.")
    print(f"Imported {Visit.objects.count():,} visits.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=60)
    parser.add_argument("step", nargs="?", choices=["export", "import"])
    parser.add_argument("file", nargs="?", type=Path)
    args = parser.parse_args()
    if args.step == "export":
        return export(args.file)
    if args.step == "import":
        return import_(args.file)

    manage = str(ROOT / "manage.py")
    this = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory(prefix="resq-old-system-") as tmp:
        generated, imported, old_csv = (
            Path(tmp, "a.sqlite3"),
            Path(tmp, "b.sqlite3"),
            Path(tmp, "old.csv"),
        )
        for database in (generated, imported):
            run(database, manage, "migrate", "--verbosity", "0")
        run(generated, manage, "demo_data", "--weeks", str(args.weeks), "--today", "0")
        run(generated, this, "export", str(old_csv))
        print(f"Old-system CSV: {old_csv.stat().st_size / 1e6:.1f} MB")
        print(run(imported, this, "import", str(old_csv)).strip())
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        span = ["--from", str(yesterday - timedelta(weeks=args.weeks) + timedelta(days=28)),
                "--to", str(yesterday)]  # fmt: skip
        print("Imported old-system history (no staffing recorded):")
        print(run(imported, manage, "replay_estimates", *span).strip())
        print("The same weeks as generated, with their staffing:")
        print(run(generated, manage, "replay_estimates", *span).strip())


if __name__ == "__main__":
    main()
