"""The weekly at-a-glance page: one printable A4 sheet per Monday–Sunday week.

Every figure is shown beside the previous week and the same teaching week of the
previous term, so a coordinator can tell a busy week from a busy time of term.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from queueing.models import Team

from . import bars, metrics
from .forms import EARLIEST, LATEST
from .metrics import Filter
from .models import Term

# Far enough either side of any real data that the previous/next links and the
# comparison weeks stay inside what `date` can hold.
TOP_UNITS = 5
TOP_ENQUIRY_TYPES = 8
#: The drawing width of the three small charts side by side (the per-day one is wider),
#: so their text prints at about the size of the tables'.
SMALL_CHART = 230


@dataclass(frozen=True)
class Change:
    """A difference told in symbols and words, never by colour alone."""

    text: str
    direction: str = "none"  # "up", "down", "same" or "none" (nothing to compare)


NOTHING = Change("—")


@dataclass(frozen=True)
class Period:
    label: str
    start: date | None = None
    end: date | None = None
    # Why a comparison period is missing, e.g. "no earlier term".
    missing: str = ""


@dataclass(frozen=True)
class Row:
    label: str
    value: str
    vs_previous: Change = NOTHING
    vs_last_term: Change = NOTHING


@dataclass
class Section:
    title: str
    heading: str
    rows: list[Row] = field(default_factory=list)
    empty: str = "None this week."


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def describe_change(
    now: float | None,
    before: float | None,
    *,
    unit: str = "",
    more: str = "",
    fewer: str = "",
    percent: bool = True,
) -> Change:
    """ "▲ 12 more (+20 %)": arrow, amount, word and percent, or "—" when either
    side is unknown."""
    if now is None or before is None:
        return NOTHING
    diff = now - before
    if abs(diff) < 0.05:
        return Change("= no change", "same")
    up = diff > 0
    words = [("▲" if up else "▼"), f"{_number(round(abs(diff), 1))}{unit}"]
    if more or fewer:
        words.append(more if up else fewer)
    if percent:
        if before:
            sign = "+" if up else "−"
            percent_change = round(abs(diff) / before * 100)
            # A change too small to show as a whole percent is not "−0 %".
            words.append(f"({sign}{percent_change:,} %)" if percent_change else "(under 1 %)")
        else:
            words.append("(none before)")
    return Change(" ".join(words), "up" if up else "down")


#: How each kind of figure's change is told, here and in the dashboard and the email.
COUNT_WORDS = {"more": "more", "fewer": "fewer"}
WAIT_WORDS = {"unit": " min", "more": "longer", "fewer": "shorter", "percent": False}
# Ratios compare in percentage points: "+20 %" of a percentage misleads.
POINTS_WORDS = {"unit": " pts", "more": "higher", "fewer": "lower", "percent": False}


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _minutes(value: float | None) -> str:
    return "—" if value is None else f"{_number(round(value, 1))} min"


def _hour(hour: int | None) -> str:
    return "—" if hour is None else f"{hour:02d}:00–{(hour + 1) % 24:02d}:00"


def _points(points: float) -> str:
    """A percentage already in points (42 -> "42 %")."""
    return f"{round(points)} %"


def _percent(ratio: float | None) -> str:
    return "—" if ratio is None else f"{round(ratio * 100)} %"


@dataclass
class Figures:
    """What the metrics say about one period."""

    counts: dict
    per_day: list[dict]
    waits: dict
    by_hour: list[dict]
    units: dict[str, int]
    enquiry_types: dict[str, int]
    outcomes: dict[str, int]
    utilisation: dict[str, dict]

    @classmethod
    def of(cls, f: Filter) -> Figures:
        return cls(
            counts=metrics.visit_counts(f),
            per_day=metrics.visits_per_day(f),
            waits=metrics.wait_stats(f),
            by_hour=metrics.wait_by_hour(f),
            units=dict(metrics.popular_units(f, limit=TOP_UNITS)),
            enquiry_types=dict(metrics.enquiry_types(f)),
            outcomes=dict(metrics.outcomes(f)),
            utilisation={str(row["team"]): row for row in metrics.utilisation(f)},
        )

    @property
    def peak_hour(self) -> dict | None:
        # Ties go to the earlier hour: max() keeps the first it meets.
        busiest = max(self.by_hour, key=lambda row: row["arrivals"], default=None)
        return busiest if busiest and busiest["arrivals"] else None

    @property
    def busiest_day(self) -> dict | None:
        busiest = max(self.per_day, key=lambda row: row["total"], default=None)
        return busiest if busiest and busiest["total"] else None


def _peak_hour_text(figures: Figures | None) -> str:
    peak = figures.peak_hour if figures else None
    if peak is None:
        return "—"
    return f"{_hour(peak['hour'])} ({_count(peak['arrivals'], 'arrival')})"


def _busiest_day_text(figures: Figures | None) -> str:
    busiest = figures.busiest_day if figures else None
    if busiest is None:
        return "—"
    day = busiest["day"]
    return f"{day:%a} {day.day} {day:%b} ({_count(busiest['total'], 'visit')})"


def _previous_term_week(monday: date) -> tuple[Term | None, int | None, Period]:
    """This week's term and teaching week, and the same teaching week of the term
    before it (by first day), or why there is none."""
    term = Term.for_date(monday) or Term.for_date(monday + timedelta(days=6))
    number = None
    if term is not None:
        number = term.week_of(max(monday, term.first_day))
    if term is None or number is None:
        return term, number, Period("Same week last term", missing="not a teaching week")
    earlier = Term.objects.filter(first_day__lt=term.first_day).order_by("-first_day").first()
    if earlier is None:
        return term, number, Period("Same week last term", missing="no earlier term")
    start = earlier.week_start(number)
    if start is None:
        return term, number, Period(f"{earlier}", missing=f"{earlier} has no week {number}")
    return (
        term,
        number,
        Period(f"{earlier}, week {number}", start=start, end=start + timedelta(days=6)),
    )


def _compare_rows(
    label_values: Iterable[tuple[str, Callable[[Figures], float | None], Callable, dict]],
    this: Figures,
    previous: Figures,
    last_term: Figures | None,
) -> list[Row]:
    rows = []
    for label, get, show, words in label_values:
        now = get(this)
        rows.append(
            Row(
                label,
                show(now),
                describe_change(now, get(previous), **words),
                describe_change(now, get(last_term), **words) if last_term else NOTHING,
            )
        )
    return rows


def _named_section(
    title: str,
    heading: str,
    values: Callable[[Figures], dict[str, float]],
    this: Figures,
    previous: Figures,
    last_term: Figures | None,
    *,
    show: Callable[[float], str] = _number,
    limit: int | None = None,
    absent: float | None = 0,
    ranked: bool = True,
    **words,
) -> Section:
    """One row per name this week (largest first if `ranked`, else in the metric's own
    order), each compared with the same name in the other periods, where a missing
    name counts as `absent`."""
    now = values(this)
    before = values(previous)
    term_before = values(last_term) if last_term else None
    names = list(now)
    if ranked:
        names.sort(key=lambda name: (-(now[name] or 0), name))
    names = names[:limit]
    rows = [
        Row(
            name,
            show(now[name]),
            describe_change(now[name], before.get(name, absent), **words),
            describe_change(now[name], term_before.get(name, absent), **words)
            if term_before is not None
            else NOTHING,
        )
        for name in names
    ]
    return Section(title, heading, rows)


@dataclass
class SheetChart:
    """One small chart of the sheet, and the table of its numbers for screen readers."""

    slug: str
    title: str
    chart: bars.Chart
    headers: list[str]
    rows: list[list[str]]
    note: str = ""


def _day_label(day: date) -> str:
    return f"{day:%a} {day.day}"


def _sheet_charts(f: Filter, this: Figures, teams: list[Team]) -> list[SheetChart]:
    """Visits per day by team, arrivals by hour, the waits and the top units: the
    week's shape at a glance, in the service's days and hours."""
    per_day = metrics.visits_per_day_by_team(f)
    seen = {team_id for row in per_day for team_id in row["teams"]}
    shown = [t for t in teams if t.pk in seen or t == f.team]
    stacks = [[row["teams"].get(t.pk, 0) for t in shown] for row in per_day]
    totals = [sum(stack) for stack in stacks]
    busiest = totals.index(max(totals)) if any(totals) else None
    days = SheetChart(
        "days",
        "Visits per day, by team",
        bars.columns(
            [_day_label(row["day"]) for row in per_day],
            stacks,
            series=[t.name for t in shown],
            highlight=busiest,
            # Beside the figures' table, about as tall as it.
            height=170,
        ),
        ["Day", *(t.name for t in shown), "All teams"],
        [
            [
                f"{row['day']:%A} {row['day'].day} {row['day']:%b}",
                *map(_number, stack),
                _number(sum(stack)),
            ]
            for row, stack in zip(per_day, stacks, strict=True)
        ],
    )

    arrivals = {row["hour"]: row["arrivals"] for row in this.by_hour}
    hours = list(range(min(arrivals), max(arrivals) + 1)) if arrivals else []
    peak = this.peak_hour
    by_hour = SheetChart(
        "hours",
        "Arrivals by hour",
        bars.columns(
            [f"{hour:02d}" for hour in hours],
            [[arrivals.get(hour, 0)] for hour in hours],
            highlight=hours.index(peak["hour"]) if peak else None,
            width=SMALL_CHART,
        ),
        ["Hour", "Arrivals"],
        [[_hour(hour), _number(arrivals.get(hour, 0))] for hour in hours],
        note="Hour the visit arrived, 24-hour clock",
    )

    buckets = metrics.wait_distribution(f)
    waits = SheetChart(
        "waits",
        "Waits before a session",
        bars.columns([label for label, _ in buckets], [[n] for _, n in buckets], width=SMALL_CHART),
        ["Wait (minutes)", "Visits"],
        [[f"{label} min", _number(n)] for label, n in buckets],
        note="Minutes from arrival to the start of the session",
    )

    units = list(this.units.items())
    top_units = SheetChart(
        "units",
        f"Top {TOP_UNITS} units",
        bars.rows(units, width=SMALL_CHART, label_width=62),
        ["Unit", "Visits"],
        [[unit, _number(n)] for unit, n in units],
    )
    return [days, by_hour, waits, top_units]


def week_summary_build(
    *, day: date, team: Team | None = None, teams: list[Team] | None = None
) -> dict:
    """Every figure of the weekly page for the Monday–Sunday week containing `day`;
    `teams` (all of them, in display order) name the series of the per-day chart."""
    if teams is None:
        teams = list(Team.objects.order_by("display_order", "name"))
    monday = day - timedelta(days=day.weekday())
    sunday = monday + timedelta(days=6)
    this_filter = Filter(start=monday, end=sunday, team=team)
    previous_filter = this_filter.previous()
    term, week_number, term_period = _previous_term_week(monday)

    this = Figures.of(this_filter)
    previous = Figures.of(previous_filter)
    last_term = None
    if term_period.start:
        last_term = Figures.of(Filter(start=term_period.start, end=term_period.end, team=team))

    headline = _compare_rows(
        [
            ("Visits", lambda f: f.counts["visits"], _number, COUNT_WORDS),
            ("Served", lambda f: f.counts["served"], _number, COUNT_WORDS),
            ("Removed (not served)", lambda f: f.counts["removed"], _number, COUNT_WORDS),
            ("Unique students", lambda f: f.counts["unique_students"], _number, COUNT_WORDS),
            ("Median wait", lambda f: f.waits["median"], _minutes, WAIT_WORDS),
            ("90th percentile wait", lambda f: f.waits["p90"], _minutes, WAIT_WORDS),
        ],
        this,
        previous,
        last_term,
    )
    headline += [
        Row(
            "Peak hour (most arrivals)",
            _peak_hour_text(this),
            Change(_peak_hour_text(previous)),
            Change(_peak_hour_text(last_term)) if last_term else NOTHING,
        ),
        Row(
            "Busiest day",
            _busiest_day_text(this),
            Change(_busiest_day_text(previous)),
            Change(_busiest_day_text(last_term)) if last_term else NOTHING,
        ),
    ]

    sections = [
        _named_section(
            f"Top {TOP_UNITS} units", "Unit", lambda f: f.units, this, previous, last_term
        ),
        _named_section(
            "Enquiry types",
            "Enquiry type",
            lambda f: f.enquiry_types,
            this,
            previous,
            last_term,
            limit=TOP_ENQUIRY_TYPES,
        ),
        _named_section(
            "Outcomes", "Outcome", lambda f: f.outcomes, this, previous, last_term, ranked=False
        ),
        _named_section(
            "Utilisation (time in session ÷ time staffed)",
            "Team",
            _utilisation_points,
            this,
            previous,
            last_term,
            show=_points,
            # A team with no staffed time has no utilisation, not a utilisation of 0.
            absent=None,
            **POINTS_WORDS,
        ),
    ]
    sections[0].empty = "No unit codes recorded this week."
    sections[3].empty = "No staffed time recorded this week."

    title = f"Week of {monday:%a} {monday.day} {monday:%b %Y}"
    if term is not None:
        title += f" · {term}, " + (f"week {week_number}" if week_number else "study break")
    return {
        "monday": monday,
        "sunday": sunday,
        "title": title,
        "term": term,
        "week_number": week_number,
        "team": team,
        "periods": {
            "this": Period("This week", monday, sunday),
            "previous": Period("Previous week", previous_filter.start, previous_filter.end),
            "last_term": term_period,
        },
        "empty": not this.counts["visits"],
        "headline": headline,
        "days": this.per_day,
        "busiest_day": (this.busiest_day or {}).get("day"),
        "charts": _sheet_charts(this_filter, this, teams),
        "sections": sections,
    }


def _utilisation_points(figures: Figures) -> dict[str, float]:
    return {
        name: row["utilisation"] * 100
        for name, row in figures.utilisation.items()
        if row["utilisation"] is not None
    }


def _parse_day(raw: str | None) -> tuple[date, str]:
    """The day asked for, or today with a message saying why not."""
    today = timezone.localdate()
    if not raw:
        return today, ""
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        return today, f"“{raw[:40]}” is not a date like 2026-08-03; showing this week."
    if not EARLIEST <= day <= LATEST:
        return today, (f"Pick a day between {EARLIEST:%Y} and {LATEST:%Y}; showing this week.")
    return day, ""


@require_GET
@never_cache
@permission_required("reporting.view_reports", raise_exception=True)
def week_summary(request: HttpRequest) -> HttpResponse:
    day, error = _parse_day(request.GET.get("day"))
    teams = list(Team.objects.order_by("display_order", "name"))
    team = next((t for t in teams if t.slug == request.GET.get("team")), None)
    if request.GET.get("team") and team is None:
        error = " ".join(filter(None, [error, "No such team; showing all teams."]))
    with metrics.shared_results():
        context = week_summary_build(day=day, team=team, teams=teams)
    monday = context["monday"]
    context.update(
        error=error,
        teams=teams,
        day=day,
        previous_day=max(monday - timedelta(days=7), EARLIEST),
        next_day=min(monday + timedelta(days=7), LATEST),
        has_previous=monday - timedelta(days=7) >= EARLIEST - timedelta(days=6),
        has_next=monday + timedelta(days=7) <= LATEST,
    )
    return render(request, "reporting/weekly.html", context)
