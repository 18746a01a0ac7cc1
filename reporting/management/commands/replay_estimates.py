"""Replay history as if the desk had been showing wait estimates then: each arrival is
estimated from what was known at its moment, then compared with the wait it had.

    manage.py replay_estimates --from YYYY-MM-DD --to YYYY-MM-DD [--team NAME]

Its last line: `N waits; median absolute error X.X min; within range P %; naive median
absolute error Y.Y min`, the naive estimate being (people ahead + 1) × the team's mean
session length of the previous four weeks ÷ staff on duty.
"""

from __future__ import annotations

import statistics
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from queueing.estimates import replay
from queueing.models import Team
from reporting.metrics import local_midnight


class Command(BaseCommand):
    help = "Check wait estimates against history: each arrival estimated as of its moment."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="start", type=date.fromisoformat, required=True,
                            metavar="YYYY-MM-DD")  # fmt: skip
        parser.add_argument("--to", dest="end", type=date.fromisoformat, required=True,
                            metavar="YYYY-MM-DD")  # fmt: skip
        parser.add_argument("--team", help="one team, by name (all teams if not given)")

    def handle(self, *args, start: date, end: date, team: str | None, **options) -> None:
        if end < start:
            raise CommandError("--to is before --from.")
        teams = Team.objects.all()
        if team:
            teams = teams.filter(name=team)
            if not teams:
                raise CommandError(f"No team is called {team!r}.")
        begin, stop = local_midnight(start), local_midnight(end + timedelta(days=1))
        errors, naive_errors, held, inferred = [], [], 0, 0
        for one in teams:
            for wait in replay(one, begin, stop):
                if wait.estimate is None or wait.naive is None:
                    continue
                errors.append(abs(wait.estimate.median - wait.actual))
                naive_errors.append(abs(wait.naive - wait.actual))
                held += wait.estimate.holds(wait.actual)
                inferred += wait.inferred
        if not errors:
            raise CommandError("No seen student with an estimate in that range.")
        if inferred:
            self.stdout.write(
                f"{inferred} of {len(errors)} estimates inferred the staff on duty from "
                "sessions at once (no staffing recorded)."
            )
        self.stdout.write(
            f"{len(errors)} waits; median absolute error {statistics.median(errors):.1f} min; "
            f"within range {100 * held / len(errors):.0f} %; "
            f"naive median absolute error {statistics.median(naive_errors):.1f} min"
        )
