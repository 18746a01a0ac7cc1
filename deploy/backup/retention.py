"""Which database backups to keep: the last 14 days' and the last 8 weeks'.

`backup.sh` runs this after each good backup. Only files named as `backup.sh` names
them (`resq-20261201T013000+0800.dump`: the local time the backup started and its UTC
offset) are ever considered; anything else in the directory is left alone, so a dump
copied there by hand under another name is kept.

The rule, counted over the backups that exist rather than over the calendar:
- daily: the newest backup of each of the `daily` most recent days that have one;
- weekly: the newest backup of each of the `weekly` most recent ISO weeks (Monday to
  Sunday) that have one, which is Sunday's when the nightly job ran that day.
Days and weeks are those of the local time in the name. Counting backups rather than
days means that if the nightly job stops for a month, the next run still keeps two
weeks of dailies and two months of weeklies instead of finding them all "too old".
The newest backup is always kept.

Standard library only: it runs in the scheduler container with nothing else.

    python3 retention.py [--daily 14] [--weekly 8] [--dry-run] BACKUP_DIR
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

NAME = re.compile(r"^resq-(?P<stamp>\d{8}T\d{6}[+-]\d{4})\.dump$")
STAMP_FORMAT = "%Y%m%dT%H%M%S%z"
DEFAULT_DAILY = 14
DEFAULT_WEEKLY = 8


def backup_time(name: str) -> datetime | None:
    """When a backup started, from its file name; None for any other file."""
    match = NAME.match(name)
    if match is None:
        return None
    try:
        # The stamp ends in its UTC offset (%z), so the result is aware.
        return datetime.strptime(match["stamp"], STAMP_FORMAT)  # noqa: DTZ007
    except ValueError:
        return None


def backups_to_keep(
    names: Iterable[str], *, daily: int = DEFAULT_DAILY, weekly: int = DEFAULT_WEEKLY
) -> set[str]:
    """The backup names the rule keeps; every other backup name may be deleted."""
    backups = sorted(
        ((when, name) for name in names if (when := backup_time(name)) is not None),
        reverse=True,
    )
    newest_of_day: dict[date, str] = {}
    newest_of_week: dict[tuple[int, int], str] = {}
    for when, name in backups:  # newest first, so the first seen of a period wins
        newest_of_day.setdefault(when.date(), name)
        newest_of_week.setdefault(when.isocalendar()[:2], name)
    keep = set(list(newest_of_day.values())[:daily])
    keep |= set(list(newest_of_week.values())[:weekly])
    if backups:
        keep.add(backups[0][1])
    return keep


def prune(
    directory: Path,
    *,
    daily: int = DEFAULT_DAILY,
    weekly: int = DEFAULT_WEEKLY,
    dry_run: bool = False,
) -> list[Path]:
    """Delete the backups in `directory` that the rule does not keep; returns them."""
    names = [path.name for path in directory.iterdir() if path.is_file()]
    keep = backups_to_keep(names, daily=daily, weekly=weekly)
    doomed = sorted(
        directory / name for name in names if backup_time(name) is not None and name not in keep
    )
    if not dry_run:
        for path in doomed:
            path.unlink()
    return doomed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--daily", type=int, default=DEFAULT_DAILY, help="days to keep (14)")
    parser.add_argument("--weekly", type=int, default=DEFAULT_WEEKLY, help="weeks to keep (8)")
    parser.add_argument("--dry-run", action="store_true", help="say what would go; delete nothing")
    args = parser.parse_args(argv)
    if args.daily < 1 or args.weekly < 0:
        parser.error("keep at least one daily backup, and zero or more weekly ones")
    if not args.directory.is_dir():
        parser.error(f"{args.directory} is not a directory")
    doomed = prune(args.directory, daily=args.daily, weekly=args.weekly, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for path in doomed:
        print(f"retention: {verb} {path.name}")
    kept = sum(1 for p in args.directory.iterdir() if backup_time(p.name) is not None)
    if args.dry_run:
        kept -= len(doomed)
    print(f"retention: {kept} backups kept ({args.daily} daily, {args.weekly} weekly)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
