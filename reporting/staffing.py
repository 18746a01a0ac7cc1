"""How many advisers an hour needs: Erlang C (the M/M/c queue).

Students arrive at random (a Poisson stream of `arrivals_per_hour`), each session lasts
`mean_minutes` on average (exponentially distributed), and `advisers` see one student
each; a student who finds them all busy waits in line. These are the model's
assumptions, not the desk's measurements: the forecast that feeds it says where they
hold (docs/design.md, foresight).

The coordinator's target reads "a share of students start within so many minutes"
(by default 80 % within 15). The advice for an hour is the fewest advisers that meet
it.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django.contrib.auth.decorators import permission_required
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from queueing.models import MAX_STAFF, StaffingChange, Team, Visit
from queueing.resources import formula_safe
from reporting.forms import EARLIEST, LATEST
from reporting.metrics import local_midnight
from reporting.models import Term


def erlang_c(load: float, advisers: int) -> float:
    """The probability that a student has to wait at all, for an offered load in
    erlangs (arrivals an hour × hours a session) and a number of advisers.

    Worked through Erlang B's recursion, which stays exact where the textbook form's
    factorials and powers would overflow. With no more advisers than the load the line
    grows without end: every student waits (1.0).
    """
    if load <= 0:
        return 0.0
    if advisers <= load:
        return 1.0
    blocked = 1.0
    for serving in range(1, advisers + 1):
        blocked = load * blocked / (serving + load * blocked)
    return advisers * blocked / (advisers - load * (1 - blocked))


def share_within(
    arrivals_per_hour: float, mean_minutes: float, advisers: int, within_minutes: float
) -> float:
    """The share of students whose session starts within `within_minutes` of arriving."""
    if arrivals_per_hour <= 0:
        return 1.0
    if mean_minutes <= 0:
        # Sessions that take no time: anyone there sees everyone at once.
        return 1.0 if advisers >= 1 else 0.0
    load = arrivals_per_hour * mean_minutes / 60
    if advisers <= load:
        return 0.0
    waits = erlang_c(load, advisers)
    return 1 - waits * math.exp(-(advisers - load) * within_minutes / mean_minutes)


def advisers_needed(
    arrivals_per_hour: float,
    mean_minutes: float,
    *,
    share: float = 0.8,
    within_minutes: float = 15,
    most: int = MAX_STAFF,
) -> int | None:
    """The fewest advisers with which `share` of students start within `within_minutes`:
    0 for an hour nobody comes, None when even `most` would not do."""
    if arrivals_per_hour <= 0:
        return 0
    load = arrivals_per_hour * mean_minutes / 60
    for advisers in range(max(1, math.floor(load) + 1), most + 1):
        if share_within(arrivals_per_hour, mean_minutes, advisers, within_minutes) >= share:
            return advisers
    return None


# --- the forecast ------------------------------------------------------------------------

#: Fewer finished sessions than this in an hour's cell, and its forecast session length
#: is the team's over all the weeks the forecast reads instead.
FEW_SESSIONS = 5


@dataclass(frozen=True)
class HourForecast:
    weekday: int  # ISO: 1 is Monday
    hour: int  # local
    arrivals: float  # students expected in the hour
    session_minutes: float | None  # their mean session length (None: no session seen)

    def advisers(self, *, share: float = 0.8, within_minutes: float = 15) -> int | None:
        if self.arrivals <= 0:
            return 0
        if self.session_minutes is None:
            return None
        return advisers_needed(
            self.arrivals, self.session_minutes, share=share, within_minutes=within_minutes
        )


@dataclass(frozen=True)
class WeekForecast:
    monday: date
    #: The Mondays it read: the same teaching week in earlier terms, and the weeks just
    #: before, each with at least one visit of the team.
    same_week: list[date]
    recent: list[date]
    hours: list[HourForecast]


def forecast_week(team: Team, monday: date, *, recent_weeks: int = 3) -> WeekForecast:
    """Arrivals and session length for each weekday × hour of a coming week, from one
    query of visits.

    An hour's arrivals are the mean of two means where both exist: over the same
    teaching week and weekday in earlier terms (the shape of the term: week 1's rush,
    the weeks before exams), and over the three weeks just before (this term's level).
    Its session length is the mean of the finished sessions in those weeks' same hour,
    or of all their sessions where the hour had few.
    """
    monday = monday - timedelta(days=monday.weekday())
    term = Term.for_date(monday)
    number = term.week_of(monday) if term is not None else None
    same_week = (
        [
            start
            for earlier in Term.objects.filter(first_day__lt=term.first_day)
            if (start := earlier.week_start(number)) is not None
        ]
        if term is not None and number is not None
        else []
    )
    # The weeks just before, teaching or not: early in a term its own weeks are too few,
    # and the weeks before it say more than none (the backtest, docs/design.md).
    recent = [
        start
        for weeks in range(recent_weeks, 0, -1)
        if (start := monday - timedelta(weeks=weeks)) not in same_week
    ]
    rows = hours_of_weeks(team, [*same_week, *recent])
    arrivals = {"same_week": Counter(), "recent": Counter()}
    sessions: Counter = Counter()
    session_seconds: Counter = Counter()
    # The weeks just before count by how recent they are (last week 3, the one before
    # 2, then 1), so a term's rise or fall shows sooner; the same weeks of earlier terms
    # count alike.
    weight = dict.fromkeys(same_week, 1) | {
        start: position for position, start in enumerate(recent, 1)
    }
    for row in rows:
        week = row["local_day"] - timedelta(days=row["local_day"].weekday())
        cell = (row["hour_of_week"] // 24 + 1, row["hour_of_week"] % 24)
        group = "same_week" if week in same_week else "recent"
        arrivals[group][cell] += row["n"] * weight[week]
        sessions[cell] += row["sessions"]
        session_seconds[cell] += row["session_seconds_total"] or 0
    # A week in which the team saw nobody at all says the desk was closed, or its
    # history is not in ResQ (before the first import): it is left out, not read as
    # a week nobody came.
    seen = {row["local_day"] - timedelta(days=row["local_day"].weekday()) for row in rows}
    same_week = [start for start in same_week if start in seen]
    recent = [start for start in recent if start in seen]
    counted = {
        "same_week": sum(weight[start] for start in same_week),
        "recent": sum(weight[start] for start in recent),
    }
    overall = sum(session_seconds.values()) / sum(sessions.values()) if sessions.total() else None
    hours = []
    for cell in sorted(set(arrivals["same_week"]) | set(arrivals["recent"])):
        means = [arrivals[group][cell] / counted[group] for group in arrivals if counted[group]]
        seconds = (
            session_seconds[cell] / sessions[cell] if sessions[cell] >= FEW_SESSIONS else overall
        )
        hours.append(
            HourForecast(
                weekday=cell[0],
                hour=cell[1],
                arrivals=sum(means) / len(means),
                session_minutes=None if seconds is None else seconds / 60,
            )
        )
    return WeekForecast(monday=monday, same_week=same_week, recent=recent, hours=hours)


def hours_of_weeks(team: Team, mondays: list[date]) -> list[dict]:
    """Arrivals and finished sessions of a team by local day and hour of the week,
    over the weeks starting on `mondays` (each read through the team and arrival
    index)."""
    if not mondays:
        return []
    weeks = Q()
    for start in mondays:
        weeks |= Q(
            arrived_at__gte=local_midnight(start),
            arrived_at__lt=local_midnight(start + timedelta(days=7)),
        )
    finished = Q(status=Visit.Status.FINISHED)
    return list(
        Visit.objects.filter(weeks, team=team)
        .values("local_day", "hour_of_week")
        .annotate(
            n=Count("pk"),
            sessions=Count("session_seconds", filter=finished),
            session_seconds_total=Sum("session_seconds", filter=finished),
        )
        .order_by()
    )


# --- the page ------------------------------------------------------------------------------

WEEKDAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
#: What a coordinator may ask for: a share of students, and minutes they start within.
SHARES, WITHIN = (50, 99), (1, 120)
DEFAULT_SHARE, DEFAULT_WITHIN = 80, 15


@dataclass(frozen=True)
class Target:
    share: int  # per cent of students
    within: int  # minutes

    def __str__(self) -> str:
        return f"{self.share} % of students start within {self.within} minutes"


@dataclass(frozen=True)
class Actual:
    """An hour that has passed: who came, how long their sessions were, and the staff
    on duty beside what the target needed."""

    arrivals: int
    session_minutes: float | None
    on_duty: float  # the hour's mean of staff available (or of sessions running at once)
    needed: int | None

    @property
    def difference(self) -> int | None:
        """Staff on duty (to the nearest whole one) less those needed."""
        return None if self.needed is None else round(self.on_duty) - self.needed

    @property
    def mark(self) -> str:
        """Shape and words, so that the mark does not rest on colour."""
        difference = self.difference
        if difference is None:
            return ""
        if difference < 0:
            return f"▼ {-difference} short"
        if difference > 0:
            return f"▲ {difference} more than needed"
        return "✓ as needed"

    @property
    def kind(self) -> str:
        difference = self.difference
        if difference is None or difference == 0:
            return "met"
        return "under" if difference < 0 else "over"


@dataclass(frozen=True)
class Cell:
    advisers: int | None  # None: no session length to go on, or more than MAX_STAFF
    forecast: HourForecast | None
    actual: Actual | None = None

    @property
    def text(self) -> str:
        """The advice as the page and the roster show it."""
        if self.actual is not None:
            if self.actual.arrivals and self.advisers is None:
                return "?" if self.actual.session_minutes is None else f"over {MAX_STAFF}"
            return str(self.advisers)
        if self.forecast is None:
            return "0"
        if self.advisers is None:
            return "?" if self.forecast.session_minutes is None else f"over {MAX_STAFF}"
        return str(self.advisers)

    @property
    def detail(self) -> str:
        """What the advice rests on, in words."""
        if self.actual is not None:
            if not self.actual.arrivals:
                return "nobody came"
            came = f"{self.actual.arrivals} student{'s' if self.actual.arrivals != 1 else ''}"
            if self.actual.session_minutes is None:
                return f"{came}, no session"
            return f"{came} · {self.actual.session_minutes:.0f} min"
        if self.forecast is None:
            return "nobody expected"
        students = (
            f"{self.forecast.arrivals:.1f} student{'s' if self.forecast.arrivals != 1 else ''}"
        )
        if self.forecast.session_minutes is None:
            return f"{students}, no session seen"
        return f"{students} · {self.forecast.session_minutes:.0f} min"


@dataclass(frozen=True)
class TeamAdvice:
    team: Team
    forecast: WeekForecast
    weekdays: list[int]  # ISO weekdays with any forecast arrivals (Monday to Friday always)
    rows: list[tuple[int, list[Cell]]]  # (hour, a cell per weekday)
    #: A past week: what happened, not the forecast. `inferred`: no staffing was
    #: recorded (imported history), so the staff on duty are the sessions at once.
    past: bool = False
    inferred: bool = False

    @property
    def days(self) -> list[date]:
        return [self.forecast.monday + timedelta(days=weekday - 1) for weekday in self.weekdays]

    @property
    def under(self) -> int:
        return sum(
            cell.actual is not None and cell.actual.kind == "under"
            for _, cells in self.rows
            for cell in cells
        )

    @property
    def adviser_hours(self) -> int:
        return sum(cell.advisers or 0 for _, cells in self.rows for cell in cells)


def team_advice(team: Team, monday: date, target: Target) -> TeamAdvice:
    forecast = forecast_week(team, monday)
    by_cell = {(hour.weekday, hour.hour): hour for hour in forecast.hours}
    weekdays = sorted({1, 2, 3, 4, 5} | {weekday for weekday, _ in by_cell})
    # The hours of opening, as the weeks read show them: an hour nobody came in any of
    # them gets no row.
    hours = sorted({hour for _, hour in by_cell})
    rows = []
    for hour in hours:
        cells = []
        for weekday in weekdays:
            forecast_hour = by_cell.get((weekday, hour))
            advisers = (
                0
                if forecast_hour is None
                else forecast_hour.advisers(share=target.share / 100, within_minutes=target.within)
            )
            cells.append(Cell(advisers=advisers, forecast=forecast_hour))
        rows.append((hour, cells))
    return TeamAdvice(team=team, forecast=forecast, weekdays=weekdays, rows=rows)


def past_advice(team: Team, monday: date, target: Target) -> TeamAdvice:
    """A week that has passed, hour by hour: the advisers its students needed for the
    target (from who came and how long their sessions were) beside the staff on duty.

    Three queries: the week's hours, the staffing changes up to its end, and the
    sessions of the week when no staffing was ever recorded for the team (the old
    system's history), whose most at once stand in for the staff on duty.
    """
    begin, end = local_midnight(monday), local_midnight(monday + timedelta(days=7))
    cells: dict[tuple[int, int], dict] = {}
    for row in hours_of_weeks(team, [monday]):
        cell = (row["local_day"].isoweekday(), row["hour_of_week"] % 24)
        cells[cell] = row
    sessions_total = sum(row["sessions"] for row in cells.values())
    seconds_total = sum(row["session_seconds_total"] or 0 for row in cells.values())
    overall = seconds_total / sessions_total if sessions_total else None
    history = list(
        StaffingChange.objects.filter(team=team, at__lt=end)
        .order_by("at", "pk")
        .values_list("at", "available", "delta")
    )
    changes = [(at, available) for at, available, _ in history]
    if history and history[0][0] > begin:
        # Until the first change, the count it started from.
        _, available, delta = history[0]
        changes.insert(0, (begin, available - delta))
    inferred = not changes
    running = (
        []
        if changes
        else list(
            Visit.objects.filter(
                team=team,
                started_at__lt=end,
                arrived_at__gte=begin - timedelta(days=1),
                arrived_at__lt=end,
            )
            .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=begin))
            .values_list("started_at", "ended_at")
        )
    )
    weekdays = sorted({1, 2, 3, 4, 5} | {weekday for weekday, _ in cells})
    rows = []
    for hour in sorted({hour for _, hour in cells}):
        row_cells = []
        for weekday in weekdays:
            day = monday + timedelta(days=weekday - 1)
            start = timezone.make_aware(datetime.combine(day, time(hour)))
            stop = start + timedelta(hours=1)
            found = cells.get((weekday, hour))
            arrivals = found["n"] if found else 0
            seconds = (
                found["session_seconds_total"] / found["sessions"]
                if found and found["sessions"] >= FEW_SESSIONS
                else overall
            )
            minutes_each = None if seconds is None else seconds / 60
            needed = (
                0
                if arrivals == 0
                else None
                if minutes_each is None
                else advisers_needed(
                    arrivals,
                    minutes_each,
                    share=target.share / 100,
                    within_minutes=target.within,
                )
            )
            on_duty = (
                _most_at_once(running, start, stop)
                if inferred
                else _mean_level(changes, start, stop)
            )
            actual = Actual(
                arrivals=arrivals, session_minutes=minutes_each, on_duty=on_duty, needed=needed
            )
            row_cells.append(Cell(advisers=needed, forecast=None, actual=actual))
        rows.append((hour, row_cells))
    forecast = WeekForecast(monday=monday, same_week=[], recent=[], hours=[])
    return TeamAdvice(
        team=team, forecast=forecast, weekdays=weekdays, rows=rows, past=True, inferred=inferred
    )


def _mean_level(changes: list[tuple[datetime, int]], start: datetime, stop: datetime) -> float:
    """The mean of the staff available over [start, stop), from every change up to then."""
    level, since, total = 0, start, 0.0
    for at, available in changes:
        if at >= stop:
            break
        if at > start:
            total += level * (at - since).total_seconds()
            since = at
        level = available
    total += level * (stop - since).total_seconds()
    return total / (stop - start).total_seconds()


def _most_at_once(
    sessions: list[tuple[datetime, datetime | None]], start: datetime, stop: datetime
) -> float:
    """The most sessions running at once within [start, stop)."""
    events = []
    for began, ended in sessions:
        if began < stop and (ended is None or ended > start):
            events.append((max(began, start), 1))
            if ended is not None and ended < stop:
                events.append((ended, -1))
    most = running = 0
    for _, step in sorted(events, key=lambda event: (event[0], event[1])):
        running += step
        most = max(most, running)
    return float(most)


def _whole(raw: str | None, bounds: tuple[int, int], default: int, what: str) -> tuple[int, str]:
    if not raw:
        return default, ""
    try:
        value = int(raw.strip())
    except ValueError:
        return default, f"“{raw[:20]}” is not a whole number; the {what} is {default}."
    low, high = bounds
    if not low <= value <= high:
        return default, f"The {what} must be between {low} and {high}; it is {default}."
    return value, ""


def advice_request(query: dict) -> tuple[date, Target, list[str]]:
    """The week (its Monday; next week unless asked) and the target a request asks
    for, with a message for each value that could not be used."""
    notes = []
    this_monday = timezone.localdate() - timedelta(days=timezone.localdate().weekday())
    monday = this_monday + timedelta(days=7)
    raw = query.get("week")
    if raw:
        try:
            day = date.fromisoformat(raw.strip())
        except ValueError:
            notes.append(f"“{raw[:40]}” is not a date like 2026-08-03; showing next week.")
        else:
            if EARLIEST <= day <= LATEST:
                monday = day - timedelta(days=day.weekday())
            else:
                notes.append(
                    f"Pick a week between {EARLIEST:%Y} and {LATEST:%Y}; showing next week."
                )
    share, note = _whole(query.get("share"), SHARES, DEFAULT_SHARE, "share of students")
    notes.append(note)
    within, note = _whole(query.get("within"), WITHIN, DEFAULT_WITHIN, "number of minutes")
    notes.append(note)
    return monday, Target(share=share, within=within), [note for note in notes if note]


@require_GET
@never_cache
@permission_required("reporting.view_reports", raise_exception=True)
def staffing_page(request: HttpRequest) -> HttpResponse:
    monday, target, notes = advice_request(request.GET)
    teams = list(Team.objects.filter(is_active=True))
    past = _is_past(monday)
    advise = past_advice if past else team_advice
    advice = [advise(team, monday, target) for team in teams]
    context = {
        "past": past,
        "monday": monday,
        "sunday": monday + timedelta(days=6),
        "target": target,
        "notes": notes,
        "advice": advice,
        "query": urlencode(
            {"week": monday.isoformat(), "share": target.share, "within": target.within}
        ),
        "previous_week": (monday - timedelta(days=7)).isoformat(),
        "next_week": (monday + timedelta(days=7)).isoformat(),
        "shares": SHARES,
        "within_bounds": WITHIN,
    }
    return render(request, "reporting/staffing.html", context)


@require_GET
@never_cache
@permission_required("reporting.view_reports", raise_exception=True)
def staffing_csv(request: HttpRequest) -> HttpResponse:
    """The page as a CSV, one line per team, day and hour: for a coming week the roster
    a coordinator would send, for a past week what was needed beside who was on duty."""
    monday, target, _ = advice_request(request.GET)
    past = _is_past(monday)
    response = HttpResponse(
        content_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": (
                f'attachment; filename="resq-staffing-{monday.isoformat()}.csv"'
            )
        },
    )
    writer = csv.writer(response)
    students = "Students" if past else "Students expected"
    extra = ["Staff on duty", "Against the target"] if past else []
    writer.writerow(
        ["Team", "Date", "Day", "Hour", "Advisers needed", students, "Session minutes",
         *extra, "Target"]
    )  # fmt: skip
    advise = past_advice if past else team_advice
    for advice in (advise(team, monday, target) for team in Team.objects.filter(is_active=True)):
        for hour, cells in advice.rows:
            for weekday, cell in zip(advice.weekdays, cells, strict=True):
                shown = cell.actual or cell.forecast
                minutes_each = None if shown is None else shown.session_minutes
                writer.writerow(
                    [
                        formula_safe(advice.team.name),
                        (monday + timedelta(days=weekday - 1)).isoformat(),
                        WEEKDAY_NAMES[weekday - 1],
                        f"{hour:02d}:00",
                        cell.text,
                        "" if shown is None else round(shown.arrivals, 1),
                        "" if minutes_each is None else round(minutes_each, 1),
                        *(
                            [round(cell.actual.on_duty, 1), cell.actual.mark]
                            if cell.actual is not None
                            else []
                        ),
                        str(target),
                    ]
                )
    return response


def _is_past(monday: date) -> bool:
    """Whether the whole week has passed (the current week still has its forecast)."""
    return monday + timedelta(days=7) <= timezone.localdate()
