"""The dashboard's filters, read from the query string so any view can be bookmarked.

The form never rejects a request: a value it cannot use is replaced by a sensible
default and the page says so. A bookmark from an old term, a mistyped date or a
hand-edited URL should still show a report, not an error.

The Export Data form at the end is the exception: it refuses what it cannot use,
since a downloaded file with a quietly corrected range would pass for the one asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import urlencode

from dateutil.relativedelta import relativedelta
from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from queueing.models import Team

from .metrics import Filter
from .models import Term

#: Longer ranges are clamped: they are almost always a typo, and would be slow.
MAX_RANGE_DAYS = 3 * 366

WEEK, RANGE, TERM = "week", "range", "term"
#: How messages name a field (its label reads oddly mid-sentence).
FIELD_NAMES = {
    "view": "view",
    "day": "day",
    "start": "start date",
    "end": "end date",
    "term": "term",
    "term_week": "week of term",
    "team": "team",
}
#: Dates far outside any service's life would overflow date arithmetic (previous
#: period, the next midnight) near year 1 or 9999.
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)


def validate_reportable(day: date) -> None:
    if not EARLIEST <= day <= LATEST:
        raise ValidationError(f"Enter a date between {EARLIEST.year} and {LATEST.year}.")


def day_label(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b %Y}"


def week_choices(term: Term | None) -> list[tuple[str, str]]:
    """The term's teaching weeks as the Week of term list offers them."""
    weeks = term.teaching_weeks() if term is not None else []
    return [("", "Whole term")] + [
        (str(n), f"Week {n} · {monday:%a} {monday.day} {monday:%b}") for n, monday in weeks
    ]


@dataclass
class Report:
    """What the filters resolved to: the metrics filter and how to describe it."""

    filter: Filter
    label: str
    view: str
    term: Term | None = None
    messages: list[str] = field(default_factory=list)
    previous_query: str = ""
    next_query: str = ""
    # What the headline figures are compared with, and how the page names it.
    compare: Filter | None = None
    compare_label: str = ""

    @property
    def last_monday(self) -> date:
        """The Monday of the period's last week, the week its printable summary shows."""
        end = self.filter.end
        return end - timedelta(days=end.weekday())


class ReportFilterForm(forms.Form):
    view = forms.ChoiceField(
        choices=[(WEEK, "Week"), (RANGE, "Date range"), (TERM, "Term")],
        required=False,
        initial=WEEK,
        widget=forms.RadioSelect,
        label="Show",
    )
    day = forms.DateField(
        required=False,
        validators=[validate_reportable],
        label="Week containing",
        initial=timezone.localdate,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    start = forms.DateField(
        required=False,
        validators=[validate_reportable],
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    end = forms.DateField(
        required=False,
        validators=[validate_reportable],
        label="To (inclusive)",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    term = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Term")
    # Any week number is read (a week the term lacks is explained, not refused); the
    # list offers the teaching weeks of the term shown, set once it is known.
    term_week = forms.IntegerField(
        required=False,
        min_value=1,
        label="Week of term",
        widget=forms.Select(choices=[("", "Whole term")]),
    )
    team = forms.ChoiceField(required=False, label="Team")

    def __init__(self, data, *, teams: list[Team], terms: list[Term], **kwargs) -> None:
        # Choices come from lists the view has already loaded, so validating and
        # rendering the form costs no further queries.
        super().__init__(data, **kwargs)
        self.teams = teams
        self.terms = terms
        self.fields["term"].choices = [("", "Current term")] + [(t.pk, t.name) for t in terms]
        self.fields["team"].choices = [("", "All teams")] + [(t.slug, t.name) for t in teams]

    def full_clean(self) -> None:
        # Links may name a team by id as well as by slug; translate before validating.
        if self.data and "team" in self.data:
            raw = str(self.data.get("team", "")).strip()
            if raw.isdigit():
                slug = next((t.slug for t in self.teams if t.pk == int(raw)), raw)
                self.data = self.data.copy()
                self.data["team"] = slug
        super().full_clean()

    def _raw(self, name: str) -> str:
        value = str(self.data.get(name, ""))
        return value if len(value) <= 40 else value[:40] + "…"

    def report(self, *, today: date | None = None) -> Report:
        """The metrics filter these values ask for, corrected where they cannot be used."""
        if today is None:
            today = timezone.localdate()
        if not self.is_valid() and not self.is_bound:
            self.cleaned_data = {}
        data = self.cleaned_data
        notes: list[str] = []
        for name in self.errors:
            notes.append(
                f"Ignored {FIELD_NAMES.get(name, name)} “{self._raw(name)}”: "
                f"{self.errors[name][0].rstrip('.')}."
            )

        team = next((t for t in self.teams if t.slug == data.get("team")), None)
        view = data.get("view") or WEEK
        if view == RANGE:
            report = self._range(data, today, team, notes)
        elif view == TERM:
            report = self._term(data, today, team, notes)
        else:
            report = None
        if report is None:
            report = self._week(data.get("day") or today, team)
        report.messages = notes
        report.compare, report.compare_label = self._comparison(report, today)
        chosen = next((t for t in self.terms if t.pk == data.get("term")), None)
        self.fields["term_week"].widget.choices = week_choices(chosen or self._term_for(today))
        return report

    def _comparison(self, report: Report, today: date) -> tuple[Filter, str]:
        """A whole term is compared with the term before it, like with like; anything
        else with the same number of days just before it. A period still running is
        compared with as many days of the other as it has had: on a Monday, this week
        so far against last Monday, not against all of last week."""
        f = report.filter
        term, earlier = report.term, self.previous_term(report.term)
        whole_term = term is not None and (term.first_day, term.last_day) == (f.start, f.end)
        if report.view == TERM and whole_term and earlier is not None:
            before, name = Filter(earlier.first_day, earlier.last_day, f.team), earlier.name
        else:
            before, name = f.previous(), ""
        if not f.start <= today < f.end:
            span = f"{day_label(before.start)} – {day_label(before.end)}"
            return before, f"{name} ({span})" if name else span
        # Whole days: today counts whole, as the period's own figures count it.
        before = Filter(before.start, min(before.start + (today - f.start), before.end), f.team)
        span = day_label(before.start)
        if before.end != before.start:
            span += f" – {day_label(before.end)}"
        if name:
            other, kind = f"the same days of {name}", "this term"
        elif len(f.days) == 7 and f.start.weekday() == 0:
            other, kind = "the same days of the previous week", "this week"
        else:
            other, kind = "the same days of the period before", "this period"
        return before, f"{other} ({span}), as {kind} runs only to today"

    def _query(self, **values) -> str:
        team = self.cleaned_data.get("team")
        if team:
            values["team"] = team
        return urlencode(values)

    def _week(self, day: date, team: Team | None) -> Report:
        monday = day - timedelta(days=day.weekday())
        return Report(
            filter=Filter(start=monday, end=monday + timedelta(days=6), team=team),
            label=f"Week of {day_label(monday)}",
            view=WEEK,
            term=self._term_for(monday),
            previous_query=self._query(view=WEEK, day=monday - timedelta(days=7)),
            next_query=self._query(view=WEEK, day=monday + timedelta(days=7)),
        )

    def _range(self, data: dict, today: date, team: Team | None, notes: list[str]) -> Report:
        start, end = data.get("start"), data.get("end")
        if start is None and end is None:
            notes.append("No dates were given; showing the last four weeks.")
        end = end or today
        start = start or end - timedelta(days=27)
        if start > end:
            notes.append("The dates were the wrong way round; they have been swapped.")
            start, end = end, start
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            start = end - timedelta(days=MAX_RANGE_DAYS - 1)
            notes.append(
                f"Ranges are limited to {MAX_RANGE_DAYS // 366} years; "
                f"showing the three years to {day_label(end)}."
            )
        return Report(
            filter=Filter(start=start, end=end, team=team),
            label=f"{day_label(start)} – {day_label(end)}",
            view=RANGE,
            term=self._term_for(end),
        )

    def _term(self, data: dict, today: date, team: Team | None, notes: list[str]) -> Report | None:
        term = next((t for t in self.terms if t.pk == data.get("term")), None)
        if term is None:
            term = self._term_for(today)
        if term is None:
            notes.append("No terms are set up; showing this week.")
            return None
        number = data.get("term_week")
        if number is not None:
            monday = term.week_start(number)
            if monday is None:
                notes.append(f"{term.name} has no teaching week {number}; showing the whole term.")
            else:
                return Report(
                    filter=Filter(
                        start=max(monday, term.first_day),
                        end=min(monday + timedelta(days=6), term.last_day),
                        team=team,
                    ),
                    label=f"{term.name}, week {number}",
                    view=TERM,
                    term=term,
                )
        return Report(
            filter=Filter(start=term.first_day, end=term.last_day, team=team),
            label=term.name,
            view=TERM,
            term=term,
        )

    def _term_for(self, day: date) -> Term | None:
        """The term containing the day, else the latest that began before it."""
        started = [t for t in self.terms if t.first_day <= day]
        containing = [t for t in started if t.last_day >= day]
        return (containing or started or [None])[0]

    def previous_term(self, term: Term | None) -> Term | None:
        if term is None:
            return None
        earlier = [t for t in self.terms if t.first_day < term.first_day]
        return max(earlier, key=lambda t: t.first_day, default=None)


# --- Export Data ---------------------------------------------------------------------

LAST_DAY, LAST_WEEK, LAST_MONTH, LAST_YEAR, ALL_TIME, CUSTOM = (
    "last-day",
    "last-week",
    "last-month",
    "last-year",
    "all-time",
    "custom",
)


@dataclass(frozen=True)
class ExportPeriod:
    """One choice of the export's period, in the original system's words, with what it
    means. The data dictionary (page and docs/data-dictionary.md) shows `meaning`."""

    value: str
    label: str
    meaning: str


#: Every preset ends today, a local day in the service's time zone, and includes it:
#: a coordinator exporting at the end of the morning's drop-in gets that morning.
EXPORT_PERIODS = [
    ExportPeriod(LAST_DAY, "Last Day", "Today, the local day the export is made."),
    ExportPeriod(LAST_WEEK, "Last Week", "The 7 days ending today: today and the 6 days before."),
    ExportPeriod(
        LAST_MONTH,
        "Last Month",
        "The month ending today: from the day after the same date last month to today, "
        "e.g. 29 Oct to 28 Nov; on 31 Mar, from 1 Mar, as February has no 31st.",
    ),
    ExportPeriod(
        LAST_YEAR,
        "Last Year",
        "The year ending today: from the day after the same date last year to today, "
        "e.g. 29 Nov 2025 to 28 Nov 2026.",
    ),
    ExportPeriod(ALL_TIME, "All Time", "Every visit recorded, from the first to today."),
    ExportPeriod(CUSTOM, "Custom", "From the Start Date to the End Date, both days included."),
]


def period_days(period: str, today: date) -> tuple[date, date]:
    """First and last local day of a preset (not All Time or Custom), both included."""
    if period == LAST_DAY:
        return today, today
    if period == LAST_WEEK:
        return today - timedelta(days=6), today
    if period == LAST_MONTH:
        return today - relativedelta(months=1) + timedelta(days=1), today
    if period == LAST_YEAR:
        return today - relativedelta(years=1) + timedelta(days=1), today
    raise ValueError(f"{period!r} has no fixed days.")


class ExportDateField(forms.DateField):
    """A date that names what it could not read: a date input cannot show it again."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValidationError:
            shown = str(value) if len(str(value)) <= 40 else str(value)[:40] + "…"
            raise ValidationError(
                "“%(value)s” is not a date. Enter a day such as 27/11/2026.",
                code="invalid",
                params={"value": shown},
            ) from None


@dataclass(frozen=True)
class ExportChoice:
    """What a valid export form asks for: the visits, and how to describe and name them."""

    filter: Filter
    period: ExportPeriod
    query: str

    @property
    def label(self) -> str:
        f = self.filter
        if f.start == f.end:
            return day_label(f.start)
        return f"{day_label(f.start)} – {day_label(f.end)}"

    @property
    def filename(self) -> str:
        f = self.filter
        team = f"-{f.team.slug}" if f.team else ""
        return f"resq-visits{team}-{f.start.isoformat()}-to-{f.end.isoformat()}.csv"


class ExportForm(forms.Form):
    """The Export Data filters. Unlike the dashboard's, this form refuses what it cannot
    use: a file downloaded with a silently corrected range would be mistaken for the
    one asked for."""

    period = forms.ChoiceField(
        label="Period",
        choices=[(p.value, p.label) for p in EXPORT_PERIODS],
        widget=forms.RadioSelect,
        help_text="Whole local days. Every period but Custom ends today and includes it.",
        error_messages={
            "required": "Choose a period to export.",
            "invalid_choice": "“%(value)s” is not one of the periods. Choose Last Day, "
            "Last Week, Last Month, Last Year, All Time or Custom.",
        },
    )
    start = ExportDateField(
        label="Start Date",
        required=False,
        validators=[validate_reportable],
        help_text="For Custom: the first day, included.",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    end = ExportDateField(
        label="End Date",
        required=False,
        validators=[validate_reportable],
        help_text="For Custom: the last day, included.",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    team = forms.ChoiceField(
        label="Team",
        required=False,
        error_messages={
            "invalid_choice": "There is no team “%(value)s”. Choose a team from the list."
        },
    )

    def __init__(self, data, *, teams: list[Team], today: date, **kwargs) -> None:
        # Choices come from the list the view loaded: validating costs no query.
        super().__init__(data, **kwargs)
        self.teams = teams
        self.today = today
        self.fields["team"].choices = [("", "All teams")] + [(t.slug, t.name) for t in teams]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("period") != CUSTOM:
            # Dates left over from an earlier Custom choice are not used, so they cannot
            # be wrong either.
            for name in ("start", "end"):
                self.errors.pop(name, None)
                data[name] = None
            return data
        start, end = data.get("start"), data.get("end")
        if start is None and "start" not in self.errors:
            self.add_error("start", "Enter the Start Date for a custom period.")
        if end is None and "end" not in self.errors:
            self.add_error("end", "Enter the End Date for a custom period.")
        if start and end and end < start:
            self.add_error(
                "end",
                f"The End Date ({day_label(end)}) is before the Start Date "
                f"({day_label(start)}). Choose an End Date on or after it.",
            )
        return data

    def period_dates(self) -> list[tuple[forms.BoundField, ExportPeriod, str]]:
        """Each period's radio button, its meaning, and the days it covers today."""
        dates = {}
        for period in EXPORT_PERIODS:
            if period.value == ALL_TIME:
                dates[period.value] = f"every visit up to {day_label(self.today)}"
            elif period.value == CUSTOM:
                dates[period.value] = "choose the Start Date and End Date"
            else:
                start, end = period_days(period.value, self.today)
                dates[period.value] = (
                    day_label(start) if start == end else f"{day_label(start)} – {day_label(end)}"
                )
        periods = {p.value: p for p in EXPORT_PERIODS}
        return [
            (radio, periods[radio.data["value"]], dates[radio.data["value"]])
            for radio in self["period"]
        ]

    def choice(self, *, first_day: Callable[[Team | None], date | None]) -> ExportChoice:
        """The visits a valid form asks for. `first_day(team)` is the local day of the
        first visit, asked only for All Time."""
        data = self.cleaned_data
        team = next((t for t in self.teams if t.slug == data.get("team")), None)
        period = next(p for p in EXPORT_PERIODS if p.value == data["period"])
        query = {"period": period.value}
        if period.value == CUSTOM:
            start, end = data["start"], data["end"]
            query |= {"start": start.isoformat(), "end": end.isoformat()}
        elif period.value == ALL_TIME:
            end = self.today
            start = min(first_day(team) or end, end)
        else:
            start, end = period_days(period.value, self.today)
        if team is not None:
            query["team"] = team.slug
        return ExportChoice(
            filter=Filter(start=start, end=end, team=team), period=period, query=urlencode(query)
        )
