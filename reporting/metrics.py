"""Usage metrics over a filtered set of visits, each a bounded number of SQL queries.

Every "day", "weekday" and "hour" is local to the service (settings.TIME_ZONE): a visit
at 23:30 UTC is the next day in Perth. Removed students are never counted as served.

Percentiles are not portable SQL (PostgreSQL has percentile_cont, SQLite has nothing),
so the database groups durations into a histogram of whole seconds and Python reads the
median and 90th percentile from that histogram. Its size is bounded by the number of
distinct seconds a wait can take, not by the number of visits. Percentiles use linear
interpolation between the two nearest ranks (the same definition as PostgreSQL's
percentile_cont and numpy's default): position p × (n − 1) in the sorted waits.
"""

from __future__ import annotations

import math
import re
import statistics
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import wraps
from typing import Any

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import (
    Coalesce,
    Greatest,
    Least,
)
from django.utils import timezone

from queueing.expressions import SecondsBetween
from queueing.models import StaffingChange, Team, Visit
from reporting.models import Term

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
#: The hours a chart shows when there is nothing to show, so it still has axes.
DEFAULT_HOURS = [10, 11]
#: Wait distribution: 5-minute buckets up to an hour, then one open bucket.
BUCKET_MINUTES = 5
BUCKET_COUNT = 12
STILL_OPEN = "Still open"
OPEN_STATUSES = [Visit.Status.WAITING, Visit.Status.IN_SESSION]

Histogram = dict[int, int]  # whole seconds -> number of visits


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_default_timezone())


@dataclass(frozen=True)
class Filter:
    """Which visits a report covers: local days start..end inclusive, and a team."""

    start: date
    end: date
    team: Team | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("A report's last day must be on or after its first day.")

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """[start 00:00 local, end + 1 day 00:00 local): a half-open UTC-comparable range."""
        return local_midnight(self.start), local_midnight(self.end + timedelta(days=1))

    def visits(self) -> QuerySet[Visit]:
        begin, end = self.bounds
        visits = Visit.objects.filter(arrived_at__gte=begin, arrived_at__lt=end)
        if self.team is not None:
            visits = visits.filter(team=self.team)
        return visits

    def previous(self) -> Filter:
        return self.shifted(-len(self.days))

    def shifted(self, days: int) -> Filter:
        step = timedelta(days=days)
        return Filter(self.start + step, self.end + step, self.team)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


# --- the columns the metrics read ---------------------------------------------------

# Stored generated columns of the visit (queueing.expressions): the database computed
# them when the row was written, so a report groups by plain columns.
WAIT = F("wait_seconds")
SESSION = F("session_seconds")
LOCAL_DAY = F("local_day")
HOUR_OF_WEEK = F("hour_of_week")


def _at(moment: datetime) -> Value:
    return Value(moment, output_field=DateTimeField())


# --- histogram arithmetic (bounded data, in Python) --------------------------------


def _value_at(histogram: Histogram, rank: int) -> int:
    """The value at a 0-based rank of the sorted data the histogram counts."""
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen > rank:
            return value
    raise IndexError(rank)


def _percentile(histogram: Histogram, fraction: float) -> float | None:
    """The value at `fraction` of the sorted data, interpolating between ranks."""
    total = sum(histogram.values())
    if total == 0:
        return None
    position = fraction * (total - 1)
    lower = _value_at(histogram, math.floor(position))
    upper = _value_at(histogram, math.ceil(position))
    return lower + (upper - lower) * (position - math.floor(position))


def minutes(seconds: float | None) -> float | None:
    """Seconds as minutes to a tenth, as every report and export shows them."""
    return None if seconds is None else round(seconds / 60, 1)


def _stats(histogram: Histogram) -> dict[str, Any]:
    return {
        "count": sum(histogram.values()),
        "median": minutes(_percentile(histogram, 0.5)),
        "p90": minutes(_percentile(histogram, 0.9)),
        "max": minutes(max(histogram) if histogram else None),
    }


_shared: ContextVar[dict | None] = ContextVar("resq_metric_results", default=None)


@contextmanager
def shared_results() -> Iterator[None]:
    """Within one report, a query that several figures read runs once (the waits for
    the median and the distribution, the unit counts for units and faculties, the
    utilisation for a headline and its chart). Outside, every call queries afresh."""
    token = _shared.set({})
    try:
        yield
    finally:
        _shared.reset(token)


def _shareable[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        results = _shared.get()
        if results is None:
            return function(*args, **kwargs)
        key = (function.__qualname__, args, tuple(sorted(kwargs.items())))
        if key not in results:
            results[key] = function(*args, **kwargs)
        return results[key]

    return wrapper


def _histogram(visits: QuerySet[Visit], seconds: F) -> Histogram:
    rows = visits.values(seconds=seconds).annotate(n=Count("pk")).order_by()
    return {row["seconds"]: row["n"] for row in rows}


def _started(f: Filter) -> QuerySet[Visit]:
    return f.visits().filter(started_at__isnull=False)


# --- the metrics -------------------------------------------------------------------


def _without_team(f: Filter) -> Filter:
    return Filter(f.start, f.end)


@_shareable
def _daily(f: Filter) -> list[dict[str, Any]]:
    """Visits per local day, team and status, every team: at most days × teams × 4 rows.

    One pass over the period feeds the visits per day, the team comparison and the
    weekly trend; callers pick their team's rows here rather than asking again.
    """
    return list(
        f.visits().values("team_id", "status", day=LOCAL_DAY).annotate(n=Count("pk")).order_by()
    )


def _daily_rows(f: Filter) -> Iterator[dict[str, Any]]:
    rows = _daily(_without_team(f))
    return (row for row in rows if f.team is None or row["team_id"] == f.team.pk)


@_shareable
def _outcome_waits(f: Filter) -> list[dict[str, Any]]:
    """Visits per status, outcome, local hour of the week and whole seconds of wait
    (null until a session starts): a few thousand rows at most. One pass gives the
    counts, the outcomes, the wait histogram and the peak-hours grid."""
    return list(
        f.visits()
        .values("status", "outcome", cell=HOUR_OF_WEEK, seconds=WAIT)
        .annotate(n=Count("pk"))
        .order_by()
    )


def _waits(f: Filter) -> Histogram:
    histogram: Histogram = {}
    for row in _outcome_waits(f):
        if row["seconds"] is not None:
            histogram[row["seconds"]] = histogram.get(row["seconds"], 0) + row["n"]
    return histogram


def _status_counts(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts = {"visits": 0, "served": 0, "removed": 0, "open": 0}
    for row in rows:
        counts["visits"] += row["n"]
        if row["status"] == Visit.Status.FINISHED:
            counts["served"] += row["n"]
        elif row["status"] == Visit.Status.REMOVED:
            counts["removed"] += row["n"]
        else:
            counts["open"] += row["n"]
    return counts


def visit_counts(f: Filter) -> dict[str, int]:
    """2 queries (the first shared with outcomes and waits). Unique students are
    counted over SELECT DISTINCT, which the database hashes; COUNT(DISTINCT …) sorts
    every visit instead (measured on a term of 143,000 visits: 104 ms for one query)."""
    counts = _status_counts(_outcome_waits(f))
    counts["unique_students"] = f.visits().order_by().values("student_number").distinct().count()
    return counts


def visits_per_day(f: Filter) -> list[dict[str, Any]]:
    """1 query; every day of the range, zeros included."""
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for row in _daily_rows(f):
        by_day[row["day"]].append(row)
    result = []
    for day in f.days:
        counts = _status_counts(by_day.get(day, []))
        result.append(
            {
                "day": day,
                "served": counts["served"],
                "removed": counts["removed"],
                "open": counts["open"],
                "total": counts["visits"],
            }
        )
    return result


def visits_per_day_by_team(f: Filter) -> list[dict[str, Any]]:
    """1 query (shared with the visits per day); every day of the range with its visits
    per team id, teams without visits left out."""
    by_day: dict[date, Counter] = defaultdict(Counter)
    for row in _daily_rows(f):
        by_day[row["day"]][row["team_id"]] += row["n"]
    return [{"day": day, "teams": dict(by_day.get(day, {}))} for day in f.days]


def outcomes(f: Filter) -> list[tuple[str, int]]:
    """1 query; every outcome in Visit.Outcome order, then the visits still open."""
    counts: Counter = Counter()
    for row in _outcome_waits(f):
        counts[row["outcome"] if row["status"] not in OPEN_STATUSES else STILL_OPEN] += row["n"]
    rows = [(label, counts[value]) for value, label in Visit.Outcome.choices]
    return [*rows, (STILL_OPEN, counts[STILL_OPEN])]


def wait_stats(f: Filter) -> dict[str, Any]:
    """1 query; waits of the visits that started a session, in minutes."""
    return _stats(_waits(f))


def wait_distribution(f: Filter) -> list[tuple[str, int]]:
    """1 query; 5-minute buckets (a wait of exactly 5:00 is in "5–10"), then "60+"."""
    counts = [0] * (BUCKET_COUNT + 1)
    for seconds, n in _waits(f).items():
        counts[min(max(seconds, 0) // (BUCKET_MINUTES * 60), BUCKET_COUNT)] += n
    labels = [f"{i * BUCKET_MINUTES}–{(i + 1) * BUCKET_MINUTES}" for i in range(BUCKET_COUNT)]
    labels.append(f"{BUCKET_COUNT * BUCKET_MINUTES}+")
    return list(zip(labels, counts, strict=True))


#: Wait estimates are grouped by the estimate shown (its median), in minutes.
ESTIMATE_BANDS = (0, 5, 10, 15, 20, 30, 45, 60)


def wait_estimates(f: Filter) -> dict[str, Any]:
    """1 query; how the estimate shown as each student joined (`WaitEstimate.first`)
    compared with the wait they then had, for the students who started a session: the
    median absolute error, the share inside the range shown, and both per band of the
    estimate. Read row by row (a help desk's term is thousands of visits)."""
    rows = (
        f.visits()
        .filter(wait_seconds__isnull=False, estimates__first=True)
        .values_list(
            "estimates__low_minutes",
            "estimates__median_minutes",
            "estimates__high_minutes",
            "wait_seconds",
        )
        .order_by()
    )
    bands: list[list[tuple[float, float, bool]]] = [[] for _ in ESTIMATE_BANDS]
    for low, median, high, seconds in rows:
        waited = seconds / 60
        band = bisect_right(ESTIMATE_BANDS, median) - 1
        bands[band].append((median, waited, low <= waited <= high))
    every = [row for band in bands for row in band]

    def summary(rows: list[tuple[float, float, bool]]) -> dict[str, Any]:
        if not rows:
            return {"count": 0, "error": None, "within": None, "estimate": None, "actual": None}
        return {
            "count": len(rows),
            "error": round(statistics.median(abs(e - a) for e, a, _ in rows), 1),
            "within": round(100 * sum(held for *_, held in rows) / len(rows)),
            "estimate": round(statistics.median(e for e, _, _ in rows), 1),
            "actual": round(statistics.median(a for _, a, _ in rows), 1),
        }

    edges = [*ESTIMATE_BANDS[1:], None]
    return {
        **summary(every),
        "bands": [
            {"label": f"{low}–{high}" if high else f"{low}+", **summary(rows)}
            for low, high, rows in zip(ESTIMATE_BANDS, edges, bands, strict=True)
        ],
    }


def session_stats(f: Filter) -> dict[str, Any]:
    """1 query; lengths of finished sessions, in minutes."""
    return _stats(_histogram(f.visits().filter(status=Visit.Status.FINISHED), SESSION))


@_shareable
def _grid(f: Filter) -> tuple[Counter, dict[tuple, Histogram]]:
    """Arrivals and wait histograms per local (weekday, hour) cell, from the pass
    shared with the outcomes and waits.

    Visits never started have a null wait: they count as arrivals only.
    """
    arrivals: Counter = Counter()
    waits: dict[tuple, Histogram] = defaultdict(dict)
    for row in _outcome_waits(f):
        cell = (row["cell"] // 24 + 1, row["cell"] % 24)  # (ISO weekday, hour)
        arrivals[cell] += row["n"]
        if row["seconds"] is not None:
            histogram = waits[cell]
            histogram[row["seconds"]] = histogram.get(row["seconds"], 0) + row["n"]
    return arrivals, waits


def arrivals_by_weekday_hour(f: Filter) -> dict[str, Any]:
    """1 query; a weekday × local hour grid of arrivals and median waits."""
    arrivals, waits = _grid(f)
    hours_seen = sorted({hour for _, hour in arrivals})
    hours = list(range(hours_seen[0], hours_seen[-1] + 1)) if hours_seen else DEFAULT_HOURS
    weekend = {day for day, _ in arrivals if day > 5}
    numbers = [day for day in range(1, 8) if day <= 5 or day in weekend]
    return {
        "weekdays": [WEEKDAYS[day - 1] for day in numbers],
        "hours": hours,
        "counts": [[arrivals[(day, hour)] for hour in hours] for day in numbers],
        "median_wait": [
            [minutes(_percentile(waits.get((day, hour), {}), 0.5)) for hour in hours]
            for day in numbers
        ],
    }


def wait_by_hour(f: Filter) -> list[dict[str, Any]]:
    """1 query (shared with the outcomes and waits); one row per local hour that had
    arrivals."""
    cells, cell_waits = _grid(f)
    arrivals: Counter = Counter()
    waits: dict[tuple, Histogram] = defaultdict(dict)
    for (_, hour), n in cells.items():
        arrivals[(hour,)] += n
    for (_, hour), histogram in cell_waits.items():
        merged = waits[(hour,)]
        for seconds, n in histogram.items():
            merged[seconds] = merged.get(seconds, 0) + n
    return [
        {
            "hour": hour,
            "arrivals": arrivals[(hour,)],
            "median_wait": minutes(_percentile(waits.get((hour,), {}), 0.5)),
            "p90_wait": minutes(_percentile(waits.get((hour,), {}), 0.9)),
        }
        for (hour,) in sorted(arrivals)
    ]


@_shareable
def _unit_enquiry_counts(f: Filter) -> list[dict[str, Any]]:
    """Visits per unit code and enquiry type: units × types rows at most (a few
    thousand in a busy term), one pass for the units, faculties and enquiry types."""
    return list(
        f.visits().values("unit_code", "enquiry_type__name").annotate(n=Count("pk")).order_by()
    )


def _ranked(totals: Counter, limit: int | None = None) -> list[tuple[str, int]]:
    """Most first, ties alphabetical."""
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]


def _unit_totals(f: Filter) -> Counter:
    totals: Counter = Counter()
    for row in _unit_enquiry_counts(f):
        if row["unit_code"]:
            totals[row["unit_code"]] += row["n"]
    return totals


def popular_units(f: Filter, limit: int = 10) -> list[tuple[str, int]]:
    """1 query; most visited unit codes, ties alphabetical."""
    return _ranked(_unit_totals(f), limit)


FACULTY_PREFIX = re.compile(r"[A-Z]+")


def popular_faculties(f: Filter, limit: int = 10) -> list[tuple[str, int]]:
    """1 query; visits by the letter prefix of the unit code (CITS3200 -> CITS).

    Prefixes vary in length, which no portable SQL can cut, so the database counts per
    unit code (a few hundred rows at most) and the prefixes are summed here.
    """
    totals: Counter = Counter()
    for unit, n in _unit_totals(f).items():
        match = FACULTY_PREFIX.match(unit.upper())
        if match:
            totals[match.group()] += n
    return _ranked(totals, limit)


def enquiry_types(f: Filter) -> list[tuple[str, int]]:
    """1 query; enquiry types that had visits, most first."""
    totals: Counter = Counter()
    for row in _unit_enquiry_counts(f):
        totals[row["enquiry_type__name"]] += row["n"]
    return _ranked(totals)


def team_share(f: Filter) -> list[tuple[str, int]]:
    """2 queries (visits per day, shared, and the teams); every active team in display
    order, whatever team the filter names."""
    totals: Counter = Counter()
    for row in _daily(_without_team(f)):
        totals[row["team_id"]] += row["n"]
    teams = Team.objects.filter(is_active=True).order_by("display_order", "name")
    return [(team.name, totals[team.pk]) for team in teams]


def _staffed_seconds(
    initial: int, changes: Iterable[tuple[datetime, int]], begin: datetime, end: datetime
) -> float:
    """The integral of available staff over [begin, end): a step function."""
    total = 0.0
    level, since = initial, begin
    for at, available in changes:
        if at >= end:
            break
        total += level * (at - since).total_seconds()
        level, since = available, at
    return total + level * max((end - since).total_seconds(), 0)


@_shareable
def utilisation(f: Filter) -> list[dict[str, Any]]:
    """3 queries: teams with their staffing at the start, changes within, session time.

    Staffed minutes integrate `available` over the range (never past now: the future is
    not staffed yet); session minutes sum the part of each session inside the range,
    a running session counting up to now.
    """
    begin, end = f.bounds
    end = min(end, timezone.now())
    teams = Team.objects.filter(pk=f.team.pk) if f.team else Team.objects.filter(is_active=True)
    changes_of_team = StaffingChange.objects.filter(team=OuterRef("pk"))
    teams = teams.annotate(
        # The value in force at the start: the last change before it, else what the
        # first later change started from, else (no history at all) today's count.
        before=Subquery(
            changes_of_team.filter(at__lt=begin).order_by("-at", "-pk").values("available")[:1]
        ),
        after=Subquery(
            changes_of_team.filter(at__gte=begin)
            .order_by("at", "pk")
            .annotate(was=F("available") - F("delta"))
            .values("was")[:1]
        ),
    ).order_by("display_order", "name")
    teams = list(teams)

    changes: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    sessions: dict[int, int] = {}
    if begin < end:
        for team_id, at, available in (
            StaffingChange.objects.filter(team__in=teams, at__gte=begin, at__lt=end)
            .order_by("at", "pk")
            .values_list("team_id", "at", "available")
        ):
            changes[team_id].append((at, available))
        overlap = SecondsBetween(
            Greatest("started_at", _at(begin)), Least(Coalesce("ended_at", _at(end)), _at(end))
        )
        sessions = dict(
            Visit.objects.filter(
                team__in=teams,
                status__in=[Visit.Status.FINISHED, Visit.Status.IN_SESSION],
                started_at__lt=end,
            )
            .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=begin))
            # A drop-in session does not outlive the day after its arrival, and starts
            # after it: the bounds let the arrival index find the sessions instead of
            # scanning every later visit too.
            .filter(arrived_at__gte=begin - timedelta(days=1), arrived_at__lt=end)
            .values("team")
            # A session inside the range counts whole: its stored length, with no
            # clipping to compute; only those crossing an end are cut to the range.
            .annotate(
                seconds=Sum(
                    Case(
                        When(Q(started_at__gte=begin, ended_at__lte=end), then=SESSION),
                        default=overlap,
                    )
                )
            )
            .order_by()
            .values_list("team", "seconds")
        )

    result = []
    for team in teams:
        initial = next(
            value for value in (team.before, team.after, team.available_staff) if value is not None
        )
        staffed = _staffed_seconds(initial, changes[team.pk], begin, end) if begin < end else 0.0
        in_session = float(sessions.get(team.pk) or 0)
        result.append(
            {
                "team": team.name,
                "staffed_minutes": minutes(staffed),
                "session_minutes": minutes(in_session),
                "utilisation": round(in_session / staffed, 3) if staffed else None,
            }
        )
    return result


def weekly_trend(term: Term, team: Team | None = None) -> list[tuple[int, int]]:
    """2 queries (the term's breaks, visits per local day); (teaching week, visits).

    A teaching week runs Monday to Sunday, cut at the term's last day.
    """
    weeks = term.teaching_weeks()
    if not weeks:
        return []
    f = Filter(weeks[0][1], min(weeks[-1][1] + timedelta(days=6), term.last_day), team)
    per_week: Counter = Counter()
    for row in _daily_rows(f):
        per_week[row["day"] - timedelta(days=row["day"].weekday())] += row["n"]
    return [(number, per_week[monday]) for number, monday in weeks]
