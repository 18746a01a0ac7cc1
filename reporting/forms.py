"""The dashboard's filters, read from the query string so any view can be bookmarked.

The form never rejects a request: a value it cannot use is replaced by a sensible
default and the page says so. A bookmark from an old term, a mistyped date or a
hand-edited URL should still show a report, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import urlencode

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
    term_week = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label="Week of term",
        choices=[("", "Whole term")] + [(str(n), f"Week {n}") for n in range(1, 27)],
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
        return report

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
