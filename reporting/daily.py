"""The daily usage email: one local day's figures beside a usual day like it.

"Usual" is the average of the same weekday over the previous four weeks, counting only
the weeks that had visits: a public holiday or a closed study-break week would
otherwise drag the average down and make an ordinary day look busy. The email says
which days it averaged.

A day is sent once. `daily_report_send` claims the day with a `DailyReport` row before
sending (see that model for why the claim is not a transaction held across SMTP), gives
it back if sending fails, and records what went out when it succeeds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import fmean
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from queueing.models import Team

from . import metrics
from .forms import RANGE, day_label
from .metrics import Filter
from .models import DailyReport
from .weekly import (
    COUNT_WORDS,
    TOP_ENQUIRY_TYPES,
    TOP_UNITS,
    WAIT_WORDS,
    _count,
    _hour,
    _minutes,
    _number,
    describe_change,
)

#: How many earlier same weekdays make a usual day.
COMPARE_WEEKS = 4
#: The MAILERS alias the report goes out through.
MAILER = "default"


@dataclass(frozen=True)
class Line:
    """One figure of the day; `usual` and `change` stay empty when it is not compared."""

    label: str
    value: str
    usual: str = ""
    change: str = ""

    @property
    def change_parts(self) -> tuple[str, str]:
        """ "▲ 2 more" and "(+25 %)": a narrow screen may break between them, not inside."""
        words, _, percent = self.change.partition(" (")
        return words, f"({percent}" if percent else ""


@dataclass(frozen=True)
class Usual:
    """The same weekday over the previous weeks that had visits, averaged."""

    days: list[date]
    skipped: list[date]
    visits: float | None
    served: float | None
    removed: float | None
    median_wait: float | None
    teams: dict[str, float | None]


def _mean(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return fmean(known) if known else None


def _usual(day: date, teams: list[Team]) -> Usual:
    """1 query for the daily counts of all teams (with shared results; one per team
    otherwise), and one per averaged day for its median wait."""
    earlier = [day - timedelta(weeks=n) for n in range(1, COMPARE_WEEKS + 1)]
    span = Filter(earlier[-1], earlier[0])
    per_day = {row["day"]: row for row in metrics.visits_per_day(span)}
    days = [d for d in earlier if per_day[d]["total"]]
    team_visits = {}
    for team in teams:
        totals = {
            row["day"]: row["total"]
            for row in metrics.visits_per_day(Filter(span.start, span.end, team))
        }
        team_visits[team.name] = _mean([totals[d] for d in days])
    return Usual(
        days=days,
        skipped=[d for d in earlier if d not in days],
        visits=_mean([per_day[d]["total"] for d in days]),
        served=_mean([per_day[d]["served"] for d in days]),
        removed=_mean([per_day[d]["removed"] for d in days]),
        median_wait=_mean([metrics.wait_stats(Filter(d, d))["median"] for d in days]),
        teams=team_visits,
    )


def _short_day(day: date) -> str:
    return f"{day.day} {day:%b}"


def _usual_note(day: date, usual: Usual) -> str:
    weekdays = f"{day:%A}s"
    if not usual.days:
        return f"No visits on the previous {COMPARE_WEEKS} {weekdays} to compare with."
    listed = ", ".join(_short_day(d) for d in usual.days)
    if not usual.skipped:
        return f"Usual: the average of the previous {COMPARE_WEEKS} {weekdays} ({listed})."
    none = ", ".join(_short_day(d) for d in usual.skipped)
    return (
        f"Usual: the average of the previous {COMPARE_WEEKS} {weekdays} that had visits "
        f"({listed}); {none} had none."
    )


def _compared(
    label: str,
    now: float | None,
    usual: float | None,
    show: Callable[[float | None], str],
    words: dict[str, Any],
) -> Line:
    if usual is None:
        return Line(label, show(now), "—", "—")
    return Line(label, show(now), show(round(usual, 1)), describe_change(now, usual, **words).text)


def _count_text(value: float | None) -> str:
    return "—" if value is None else _number(value)


def _link(name: str, **query: str) -> str:
    """An absolute link into the site, or "" when RESQ_SITE_URL is not set."""
    base = settings.RESQ_SITE_URL.rstrip("/")
    return f"{base}{reverse(name)}?{urlencode(query)}" if base else ""


def day_summary_build(*, day: date) -> dict[str, Any]:
    """Every figure of one local day's email, ready for its templates, and the same
    figures as plain JSON-able data to record with the send."""
    f = Filter(day, day)
    with metrics.shared_results():
        teams = list(Team.objects.filter(is_active=True).order_by("display_order", "name"))
        counts = metrics.visit_counts(f)
        outcomes = metrics.outcomes(f)
        waits = metrics.wait_stats(f)
        by_hour = metrics.wait_by_hour(f)
        units = metrics.popular_units(f, limit=TOP_UNITS)
        enquiry_types = metrics.enquiry_types(f)[:TOP_ENQUIRY_TYPES]
        team_visits = metrics.team_share(f)
        usual = _usual(day, teams)

    # Ties go to the earlier hour, as on the weekly page: max() keeps the first it meets.
    peak = max(by_hour, key=lambda row: row["arrivals"], default=None)
    if peak is not None and not peak["arrivals"]:
        peak = None

    headline = [
        _compared("Visits", counts["visits"], usual.visits, _count_text, COUNT_WORDS),
        _compared("Served", counts["served"], usual.served, _count_text, COUNT_WORDS),
        _compared(
            "Removed (not served)", counts["removed"], usual.removed, _count_text, COUNT_WORDS
        ),
        Line("Unique students", _number(counts["unique_students"])),
        _compared("Median wait", waits["median"], usual.median_wait, _minutes, WAIT_WORDS),
        Line("90th percentile wait", _minutes(waits["p90"])),
        Line("Longest wait", _minutes(waits["max"])),
    ]
    team_lines = [
        _compared(name, n, usual.teams.get(name), _count_text, COUNT_WORDS)
        for name, n in team_visits
    ]
    still_open = counts["open"]
    outcome_lines = [
        Line(label, _number(n)) for label, n in outcomes if label != metrics.STILL_OPEN or n
    ]

    label = day_label(day)
    if counts["visits"]:
        subject = f"ResQ daily report: {label} · {_count(counts['visits'], 'visit')}"
    else:
        subject = f"ResQ daily report: {label} · no visits"
    iso = day.isoformat()
    figures = {
        "day": iso,
        **counts,
        "teams": [[name, n] for name, n in team_visits],
        "outcomes": [[name, n] for name, n in outcomes],
        "wait_minutes": {key: waits[key] for key in ("median", "p90", "max")},
        "peak_hour": {"hour": peak["hour"], "arrivals": peak["arrivals"]} if peak else None,
        "units": [[code, n] for code, n in units],
        "enquiry_types": [[name, n] for name, n in enquiry_types],
        "usual": {
            "days": [d.isoformat() for d in usual.days],
            "visits": usual.visits,
            "served": usual.served,
            "removed": usual.removed,
            "median_wait": usual.median_wait,
            "teams": [[name, n] for name, n in usual.teams.items()],
        },
    }
    return {
        "day": day,
        "day_label": label,
        "weekday": f"{day:%A}",
        "subject": subject,
        "empty": not counts["visits"],
        "counts": counts,
        "usual": usual,
        "usual_visits": None if usual.visits is None else _number(round(usual.visits, 1)),
        "visits_change": describe_change(counts["visits"], usual.visits, **COUNT_WORDS).text,
        "usual_note": _usual_note(day, usual),
        "headline": headline,
        "peak_hour": (
            f"{_hour(peak['hour'])} ({_count(peak['arrivals'], 'arrival')})" if peak else ""
        ),
        "peak_hours": _hour(peak["hour"]) if peak else "",
        "peak_arrivals": _count(peak["arrivals"], "arrival") if peak else "",
        "teams": team_lines,
        "outcomes": outcome_lines,
        "still_open": still_open,
        "still_open_text": _count(still_open, "visit"),
        "units": [Line(code, _number(n)) for code, n in units],
        "enquiry_types": [Line(name, _number(n)) for name, n in enquiry_types],
        "time_zone": settings.TIME_ZONE,
        "dashboard_url": _link("reporting:dashboard", view=RANGE, start=iso, end=iso),
        "weekly_url": _link("reporting:weekly", day=iso),
        "figures": figures,
    }


def _tidy(text: str) -> str:
    """Template tags leave trailing spaces and runs of blank lines in plain text."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def daily_report_render(summary: dict[str, Any]) -> tuple[str, str, str]:
    """The subject, plain text and HTML of a day's email."""
    text = _tidy(render_to_string("reporting/email/daily_report.txt", summary))
    html = render_to_string("reporting/email/daily_report.html", summary)
    return summary["subject"], text, html


def daily_report_message(summary: dict[str, Any], recipients: list[str]) -> EmailMultiAlternatives:
    subject, text, html = daily_report_render(summary)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        # RFC 3834: out-of-office replies should not answer a machine.
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(html, "text/html")
    return message


@dataclass(frozen=True)
class SendResult:
    sent: bool
    message: str
    report: DailyReport | None = None


def _when(report: DailyReport) -> str:
    moment = timezone.localtime(report.sent_at or report.claimed_at)
    return f"{moment:%a} {moment.day} {moment:%b %Y} at {moment:%H:%M}"


def daily_report_send(*, day: date, recipients: list[str], force: bool = False) -> SendResult:
    """Email one day's report unless it went out already (or `force`), and record it.

    A failed send leaves the day as it was (unsent, or sent before) and re-raises, so
    the next run tries again.
    """
    summary = day_summary_build(day=day)
    message = daily_report_message(summary, recipients)
    label = summary["day_label"]

    report, reason = DailyReport.claim(day, now=timezone.now(), force=force)
    if reason == "sent" and report is not None:
        return SendResult(
            False,
            f"The report for {label} was already sent on {_when(report)} to "
            f"{', '.join(report.recipients)}; nothing sent. Use --force to send it again.",
            report,
        )
    if report is None:
        return SendResult(False, f"Another run is sending the report for {label}; nothing sent.")

    resend = report.times_sent > 0
    try:
        message.send(using=MAILER)
    except BaseException:
        # Interrupted or refused, the day must not look sent.
        report.release()
        raise
    report.mark_sent(
        at=timezone.now(),
        recipients=recipients,
        subject=summary["subject"],
        figures=summary["figures"],
        forced=resend,
    )
    again = " again" if resend else ""
    return SendResult(
        True,
        f"Sent the report for {label}{again} to {_count(len(recipients), 'recipient')}: "
        f"{', '.join(recipients)}.",
        report,
    )
