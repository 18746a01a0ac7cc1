"""Plotly figures built from the metrics' plain data, each with the table it plots.

A chart's `rows` are exactly the numbers in its figure: the data table and the CSV
are made from them, so what a screen reader hears and what a spreadsheet gets match
what the plot shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import plotly.graph_objects as go

from queueing.resources import formula_safe

ACCENT = "#0b5cad"
COLOURS = {"served": "#1e7b3c", "removed": "#a4161a", "open": "#b07d00"}
PREVIOUS = "#8c959f"
#: plotly.js injects MapLibre's stylesheet as a <style> at load unless an element with
#: this id exists. We draw no maps, so the dashboard puts an empty placeholder with the
#: id in the head and style-src stays 'self'. The id is fixed per plotly.js build; a
#: test fails if an upgrade changes it.
PLOTLY_MAPLIBRE_STYLE_ID = "9f215cf04c5486422605d13261cb87401f4e7763b6296af81e98efbc0130da53"


@dataclass
class Chart:
    name: str
    title: str
    figure: dict[str, Any]
    headers: list[str]
    rows: list[list[Any]]
    empty: bool = False
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dom_id(self) -> str:
        return f"figure-{self.name}"


def plotly_text(text: Any) -> str:
    """Text that plotly.js shows as typed, for every name staff type (teams, enquiry
    types, unit codes, terms) that goes into a figure.

    plotly.js reads a subset of HTML in tick labels, legend entries, hover text and
    annotations: a team named "<b>Bold</b>" would be drawn bold, and an <a href> would
    be a working link on the dashboard. It decodes &amp; &lt; &gt; back to characters
    drawn as text, so those three are all that needs writing as entities. Only the
    figure gets this: the data table and the CSV hold the names as they are.
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _layout(**layout: Any) -> dict[str, Any]:
    # No Plotly template: the default one adds ~7 kB of JSON to every figure.
    base: dict[str, Any] = {
        "template": "none",
        "font": {"family": "system-ui, sans-serif", "size": 13, "color": "#1b1f24"},
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
        "height": 320,
        "xaxis": {"gridcolor": "#e5e8eb", "automargin": True},
        "yaxis": {"gridcolor": "#e5e8eb", "automargin": True, "rangemode": "tozero"},
        # Above the plot, where it cannot collide with an x-axis title.
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "hoverlabel": {"namelength": -1},
    }
    for key, value in layout.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = base[key] | value
        else:
            base[key] = value
    return base


def _figure(traces: Sequence[go.BaseTraceType], **layout: Any) -> dict[str, Any]:
    # go.Figure validates every property name, so a typo fails in a test, not silently
    # in the browser.
    return go.Figure(data=list(traces), layout=_layout(**layout)).to_plotly_json()


def _bar_chart(
    name: str,
    title: str,
    pairs: Sequence[tuple[str, int]],
    headers: list[str],
    *,
    horizontal: bool = False,
) -> Chart:
    labels = [str(label) for label, _ in pairs]
    values = [n for _, n in pairs]
    plotted = [plotly_text(label) for label in labels]
    if horizontal:
        # Largest at the top, as people read a ranking.
        trace = go.Bar(
            x=values[::-1], y=plotted[::-1], orientation="h", marker_color=ACCENT, name=headers[1]
        )
        layout = {"yaxis": {"type": "category"}, "xaxis": {"title": {"text": headers[1]}}}
    else:
        trace = go.Bar(x=plotted, y=values, marker_color=ACCENT, name=headers[1])
        layout = {"xaxis": {"type": "category"}, "yaxis": {"title": {"text": headers[1]}}}
    return Chart(
        name=name,
        title=title,
        figure=_figure([trace], **layout),
        headers=headers,
        rows=[[label, n] for label, n in zip(labels, values, strict=True)],
        empty=not any(values),
    )


def visits_per_day_chart(days: Sequence[dict]) -> Chart:
    """Stacked bars: served, removed and still open visits on each day."""
    x = [d["day"].isoformat() for d in days]
    traces = [
        go.Bar(x=x, y=[d[key] for d in days], name=key.capitalize(), marker_color=colour)
        for key, colour in COLOURS.items()
    ]
    return Chart(
        name="visits-per-day",
        title="Visits per day",
        figure=_figure(
            traces,
            barmode="stack",
            xaxis={"type": "date", "tickformat": "%a %-d %b"},
            yaxis={"title": {"text": "Visits"}},
        ),
        headers=["Day", "Served", "Removed", "Open"],
        rows=[[d["day"], d["served"], d["removed"], d["open"]] for d in days],
        empty=not any(d["total"] for d in days),
    )


def popular_units_chart(units: Sequence[tuple[str, int]]) -> Chart:
    return _bar_chart("popular-units", "Popular units", units, ["Unit", "Visits"], horizontal=True)


def popular_faculties_chart(faculties: Sequence[tuple[str, int]]) -> Chart:
    return _bar_chart(
        "popular-faculties",
        "Faculties (unit code prefix)",
        faculties,
        ["Prefix", "Visits"],
        horizontal=True,
    )


def enquiry_types_chart(types: Sequence[tuple[str, int]]) -> Chart:
    return _bar_chart(
        "enquiry-types", "Enquiry types", types, ["Enquiry type", "Visits"], horizontal=True
    )


def team_comparison_chart(teams: Sequence[tuple[str, int]]) -> Chart:
    return _bar_chart("team-comparison", "Visits by team", teams, ["Team", "Visits"])


def wait_distribution_chart(buckets: Sequence[tuple[str, int]]) -> Chart:
    chart = _bar_chart(
        "wait-distribution", "Wait before a session", buckets, ["Wait (minutes)", "Visits"]
    )
    chart.figure["layout"]["xaxis"]["title"] = {"text": "Minutes waited"}
    return chart


def outcomes_chart(outcomes: Sequence[tuple[str, int]]) -> Chart:
    return _bar_chart("outcomes", "Outcomes", outcomes, ["Outcome", "Visits"])


def peak_hours_chart(grid: dict) -> Chart:
    """Heatmap of arrivals, weekday by hour of the day."""
    hours = [f"{h:02d}:00" for h in grid["hours"]]
    weekdays = list(grid["weekdays"])
    counts = [list(row) for row in grid["counts"]]
    trace = go.Heatmap(
        x=hours,
        y=weekdays,
        z=counts,
        colorscale="Blues",
        # Numbers in the cells instead of a colour bar: readable without judging
        # shades, and plotly.js draws the colour bar with a style attribute that a
        # strict CSP (style-src-attr) refuses.
        showscale=False,
        texttemplate="%{z:,}",
        hovertemplate="%{y} %{x}: %{z:,} arrivals<extra></extra>",
        xgap=2,
        ygap=2,
    )
    return Chart(
        name="peak-hours",
        title="Peak hours (arrivals)",
        figure=_figure(
            [trace],
            xaxis={"type": "category", "title": {"text": "Hour of arrival"}},
            yaxis={"type": "category", "autorange": "reversed", "rangemode": "normal"},
        ),
        headers=["Weekday", *hours],
        rows=[[weekday, *row] for weekday, row in zip(weekdays, counts, strict=True)],
        empty=not any(any(row) for row in counts),
    )


def wait_by_hour_chart(hours: Sequence[dict]) -> Chart:
    """When the wait was worst: median and 90th percentile by hour of arrival."""
    labels = [f"{row['hour']:02d}:00" for row in hours]
    medians = [row["median_wait"] for row in hours]
    p90s = [row["p90_wait"] for row in hours]
    traces = [
        go.Bar(x=labels, y=medians, name="Median wait", marker_color=ACCENT),
        go.Bar(x=labels, y=p90s, name="90th percentile", marker_color="#8fb3de"),
    ]
    return Chart(
        name="wait-by-hour",
        title="Wait by hour of arrival",
        figure=_figure(
            traces,
            barmode="group",
            xaxis={"type": "category", "title": {"text": "Hour of arrival"}},
            yaxis={"title": {"text": "Minutes waited"}},
        ),
        headers=["Hour", "Median wait (min)", "90th percentile wait (min)"],
        rows=[[label, m, p] for label, m, p in zip(labels, medians, p90s, strict=True)],
        empty=not any(m is not None for m in medians),
    )


def wait_estimates_chart(figures: dict) -> Chart:
    """The estimate shown as students joined against the wait they had, per band of the
    estimate, with the figures that say how good it was."""
    bands = [band for band in figures["bands"] if band["count"]]
    labels = [f"{band['label']} min" for band in bands]
    traces = [
        go.Bar(
            x=labels, y=[b["estimate"] for b in bands], name="Median estimate shown",
            marker_color="#8fb3de",
        ),
        go.Bar(
            x=labels, y=[b["actual"] for b in bands], name="Median actual wait",
            marker_color=ACCENT,
        ),
    ]  # fmt: skip
    description = ""
    if figures["count"]:
        description = (
            f"{figures['count']:,} waits estimated as the student joined: median absolute "
            f"error {figures['error']:.1f} min; {figures['within']} % inside the range "
            "shown (meant to be about 80 %)."
        )
    return Chart(
        name="wait-estimates",
        title="Wait estimates: shown against actual",
        figure=_figure(
            traces,
            barmode="group",
            xaxis={"type": "category", "title": {"text": "Estimate shown as the student joined"}},
            yaxis={"title": {"text": "Minutes"}},
        ),
        headers=[
            "Estimate shown (min)",
            "Waits",
            "Median estimate (min)",
            "Median actual wait (min)",
            "Median absolute error (min)",
            "Inside the range shown (%)",
        ],
        rows=[
            [b["label"], b["count"], b["estimate"], b["actual"], b["error"], b["within"]]
            for b in bands
        ],
        empty=not bands,
        description=description,
        extra={
            "empty_text": "No wait estimates in this period: the desk stores one as each "
            "student joins."
        },
    )


def weekly_trend_chart(
    current: Sequence[tuple[int, int]],
    previous: Sequence[tuple[int, int]],
    *,
    current_name: str,
    previous_name: str | None,
) -> Chart:
    """Visits per teaching week of this term, against the same weeks of the one before."""
    this = dict(current)
    before = dict(previous)
    weeks = sorted(set(this) | set(before))
    traces = [
        go.Scatter(
            x=weeks,
            y=[this.get(w) for w in weeks],
            name=plotly_text(current_name),
            mode="lines+markers",
            line={"color": ACCENT, "width": 3},
        )
    ]
    headers = ["Week of term", current_name]
    if previous_name:
        traces.append(
            go.Scatter(
                x=weeks,
                y=[before.get(w) for w in weeks],
                name=plotly_text(previous_name),
                mode="lines+markers",
                line={"color": PREVIOUS, "dash": "dash"},
            )
        )
        headers.append(previous_name)
    rows = [[w, this.get(w)] + ([before.get(w)] if previous_name else []) for w in weeks]
    return Chart(
        name="weekly-trend",
        title="Weekly trend across the term",
        figure=_figure(
            traces,
            xaxis={"title": {"text": "Teaching week"}, "dtick": 1},
            yaxis={"title": {"text": "Visits"}},
        ),
        headers=headers,
        rows=rows,
        empty=not any(this.values()) and not any(before.values()),
    )


def utilisation_chart(teams: Sequence[dict]) -> Chart:
    """Share of staffed time spent in sessions, per team, as a percentage."""
    rows = [
        [t["team"], None if t["utilisation"] is None else round(t["utilisation"] * 100, 1)]
        for t in teams
    ]
    trace = go.Bar(
        x=[plotly_text(r[0]) for r in rows],
        y=[r[1] for r in rows],
        marker_color=ACCENT,
        name="Utilisation",
    )
    return Chart(
        name="utilisation",
        title="Staffing utilisation",
        figure=_figure(
            [trace],
            xaxis={"type": "category"},
            yaxis={"title": {"text": "% of staffed time in session"}, "ticksuffix": "%"},
        ),
        headers=["Team", "Utilisation (%)"],
        rows=rows,
        empty=not any(t["staffed_minutes"] for t in teams),
    )


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run: text that could start a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return formula_safe(value)
