"""How good the staffing forecast has been: each past teaching week forecast as the
Staffing page would have forecast it then, against what came, and against the naive
forecast (the same hour the week before).

    manage.py backtest_staffing [--team NAME] [--from YYYY-MM-DD] [--to YYYY-MM-DD]

Its last line: `N hours; forecast mean absolute error X.XX students an hour; naive
(same hour last week) Y.YY`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from queueing.models import Team
from reporting.models import Term
from reporting.staffing import forecast_week, hours_of_weeks


def _arrivals(team: Team, monday: date) -> Counter:
    """Students who came in each (ISO weekday, hour) of the week."""
    came: Counter = Counter()
    for row in hours_of_weeks(team, [monday]):
        came[row["local_day"].isoweekday(), row["hour_of_week"] % 24] += row["n"]
    return came


class Command(BaseCommand):
    help = "Backtest the staffing forecast over past teaching weeks against a naive one."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--team", help="one team, by name (all active teams if not given)")
        parser.add_argument("--from", dest="start", type=date.fromisoformat, metavar="YYYY-MM-DD")
        parser.add_argument("--to", dest="end", type=date.fromisoformat, metavar="YYYY-MM-DD")

    def handle(self, *args, team: str | None, start: date | None, end: date | None, **options):
        teams = Team.objects.filter(is_active=True)
        if team:
            teams = Team.objects.filter(name=team)
            if not teams:
                raise CommandError(f"No team is called {team!r}.")
        this_monday = timezone.localdate() - timedelta(days=timezone.localdate().weekday())
        weeks = sorted(
            monday
            for term in Term.objects.prefetch_related("breaks")
            for _, monday in term.teaching_weeks()
            if monday < this_monday
            and (start is None or monday + timedelta(days=6) >= start)
            and (end is None or monday <= end)
        )
        if not weeks:
            raise CommandError("No past teaching week in that range: nothing to backtest.")
        errors: dict[str, list[float]] = defaultdict(list)
        by_hour: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for one in teams:
            for monday in weeks:
                came = _arrivals(one, monday)
                before = _arrivals(one, monday - timedelta(days=7))
                forecast = {
                    (hour.weekday, hour.hour): hour.arrivals
                    for hour in forecast_week(one, monday).hours
                }
                for cell in set(came) | set(before) | set(forecast):
                    for name, guess in (
                        ("forecast", forecast.get(cell, 0.0)),
                        ("naive", before[cell]),
                    ):
                        error = abs(guess - came[cell])
                        errors[name].append(error)
                        by_hour[cell[1]][name].append(error)
        self.stdout.write(f"{len(weeks)} weeks, {teams.count()} team(s); per hour of the day:")
        for hour in sorted(by_hour):
            figures = by_hour[hour]
            self.stdout.write(
                f"  {hour:02d}:00  {len(figures['forecast'])} hours; forecast "
                f"{_mean(figures['forecast']):.2f}, naive {_mean(figures['naive']):.2f}"
            )
        self.stdout.write(
            f"{len(errors['forecast'])} hours; forecast mean absolute error "
            f"{_mean(errors['forecast']):.2f} students an hour; naive (same hour last week) "
            f"{_mean(errors['naive']):.2f}"
        )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
