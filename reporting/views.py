"""Data Analytics: the usage dashboard and the CSV of each chart.

Both read their filters from the query string, so every view is a bookmark; bad
values are corrected with a message, never answered with an error page.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from queueing.models import Team

from . import charts, metrics
from .forms import Report, ReportFilterForm
from .models import Term
from .weekly import (
    COUNT_WORDS,
    POINTS_WORDS,
    WAIT_WORDS,
    _minutes,
    _number,
    _points,
    describe_change,
)

DASHBOARD = "reporting/dashboard.html"

reports_permission = permission_required("reporting.view_reports", raise_exception=True)


@dataclass
class ChartContext:
    report: Report
    previous_term: Term | None


def _weekly_trend(ctx: ChartContext) -> charts.Chart:
    term = ctx.report.term
    team = ctx.report.filter.team
    if term is None:
        return charts.weekly_trend_chart([], [], current_name="This term", previous_name=None)
    previous = ctx.previous_term
    return charts.weekly_trend_chart(
        metrics.weekly_trend(term, team=team),
        metrics.weekly_trend(previous, team=team) if previous else [],
        current_name=term.name,
        previous_name=previous.name if previous else None,
    )


#: Every chart, in page order: its builder reads the metrics for one filter.
CHARTS: dict[str, Callable[[ChartContext], charts.Chart]] = {
    "visits-per-day": lambda c: charts.visits_per_day_chart(
        metrics.visits_per_day(c.report.filter)
    ),
    "popular-units": lambda c: charts.popular_units_chart(metrics.popular_units(c.report.filter)),
    "popular-faculties": lambda c: charts.popular_faculties_chart(
        metrics.popular_faculties(c.report.filter)
    ),
    "enquiry-types": lambda c: charts.enquiry_types_chart(metrics.enquiry_types(c.report.filter)),
    "team-comparison": lambda c: charts.team_comparison_chart(metrics.team_share(c.report.filter)),
    "wait-distribution": lambda c: charts.wait_distribution_chart(
        metrics.wait_distribution(c.report.filter)
    ),
    "peak-hours": lambda c: charts.peak_hours_chart(
        metrics.arrivals_by_weekday_hour(c.report.filter)
    ),
    "wait-by-hour": lambda c: charts.wait_by_hour_chart(metrics.wait_by_hour(c.report.filter)),
    "weekly-trend": _weekly_trend,
    "outcomes": lambda c: charts.outcomes_chart(metrics.outcomes(c.report.filter)),
    "utilisation": lambda c: charts.utilisation_chart(metrics.utilisation(c.report.filter)),
    "wait-estimates": lambda c: charts.wait_estimates_chart(
        metrics.wait_estimates(c.report.filter)
    ),
}


def _filters(request: HttpRequest) -> tuple[ReportFilterForm, ChartContext]:
    # Two queries whatever the filters: the teams and the terms (with their breaks,
    # which number the teaching weeks).
    teams = list(Team.objects.all())
    terms = list(Term.objects.prefetch_related("breaks"))
    form = ReportFilterForm(request.GET or None, teams=teams, terms=terms)
    report = form.report()
    return form, ChartContext(report=report, previous_term=form.previous_term(report.term))


def _overall_utilisation(rows: list[dict]) -> float | None:
    staffed = sum(r["staffed_minutes"] or 0 for r in rows)
    if not staffed:
        return None
    return sum(r["session_minutes"] or 0 for r in rows) / staffed


def _headlines(report: Report) -> list[dict]:
    """The period's figures against report.compare, told as the weekly page tells them."""
    current, previous = report.filter, report.compare
    counts, counts_before = metrics.visit_counts(current), metrics.visit_counts(previous)
    waits, waits_before = metrics.wait_stats(current), metrics.wait_stats(previous)
    use = _overall_utilisation(metrics.utilisation(current))
    use_before = _overall_utilisation(metrics.utilisation(previous))

    def points(ratio: float | None) -> float | None:
        return None if ratio is None else round(ratio * 100)

    figures = [
        ("Visits", counts["visits"], counts_before["visits"], _number, COUNT_WORDS),
        ("Served", counts["served"], counts_before["served"], _number, COUNT_WORDS),
        ("Removed", counts["removed"], counts_before["removed"], _number, COUNT_WORDS),
        (
            "Unique students",
            counts["unique_students"],
            counts_before["unique_students"],
            _number,
            COUNT_WORDS,
        ),
        ("Median wait", waits["median"], waits_before["median"], _minutes, WAIT_WORDS),
        ("90th percentile wait", waits["p90"], waits_before["p90"], _minutes, WAIT_WORDS),
        ("Utilisation", points(use), points(use_before), _points, POINTS_WORDS),
    ]
    return [
        {
            "label": label,
            "value": "—" if now is None else show(now),
            "previous": "—" if before is None else show(before),
            "change": describe_change(now, before, **words),
        }
        for label, now, before, show, words in figures
    ]


@require_GET
@vary_on_headers("HX-Request")
@never_cache
@reports_permission
def dashboard(request: HttpRequest) -> HttpResponse:
    form, ctx = _filters(request)
    with metrics.shared_results():
        headlines = _headlines(ctx.report)
        built = [build(ctx) for build in CHARTS.values()]
    context = {
        "form": form,
        "report": ctx.report,
        "headlines": headlines,
        "charts": built,
        "query": request.GET.urlencode(),
        "plotly_maplibre_style_id": charts.PLOTLY_MAPLIBRE_STYLE_ID,
    }
    template = f"{DASHBOARD}#charts" if request.htmx else DASHBOARD
    return render(request, template, context)


@require_GET
@never_cache
@reports_permission
def chart_csv(request: HttpRequest, name: str) -> HttpResponse:
    build = CHARTS.get(name)
    if build is None:
        raise Http404("No such chart.")
    _, ctx = _filters(request)
    chart = build(ctx)
    f = ctx.report.filter
    team = f"-{f.team.slug}" if f.team else ""
    filename = f"resq-{name}{team}-{f.start.isoformat()}-to-{f.end.isoformat()}.csv"
    response = HttpResponse(
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
    writer = csv.writer(response)
    writer.writerow([charts.csv_cell(h) for h in chart.headers])
    for row in chart.rows:
        writer.writerow([charts.csv_cell(cell) for cell in row])
    return response
