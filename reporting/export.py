"""Export Data: visits with student details as a CSV file for a spreadsheet, and the
data dictionary that says what each column and each dashboard figure means.

The file is streamed: rows are read from the database in chunks through one query and
written out as they come, so a worker's memory stays flat however many visits a
period holds. Filters live in the query string, so a download is a link.

Exporting names and student numbers is its own permission (`queueing.export_visits`),
held by coordinators; managers, who can see the dashboard, do not hold it.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from itertools import islice
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Min, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from queueing.models import Team, Visit

from .charts import csv_cell
from .forms import EXPORT_PERIODS, LAST_WEEK, ExportChoice, ExportForm
from .metrics import Filter, minutes

EXPORT_PAGE = "reporting/export.html"
DICTIONARY_PAGE = "reporting/data_dictionary.html"
#: Rows fetched from the database per round trip, and written per chunk of the response.
CHUNK_ROWS = 2000


@dataclass(frozen=True)
class Definition:
    """A name in the export or on the dashboard, and what it means."""

    name: str
    meaning: str


#: The file's columns in order. The header row, the page's data dictionary and
#: docs/data-dictionary.md all read this list (a test checks the docs).
EXPORT_COLUMNS = [
    Definition(
        "Visit ID",
        "The visit's number in ResQ, unique and never reused. Quote it to ask for a "
        "record to be corrected.",
    ),
    Definition(
        "Date",
        "The local day of arrival (YYYY-MM-DD) in the service's time zone, so a visit "
        "at 23:30 UTC is on the next day in Perth.",
    ),
    Definition(
        "Team",
        "The team whose queue the visit was in, such as STUDYSmarter or Librarian; "
        "after a transfer, the team it moved to.",
    ),
    Definition("Student Name", "As entered at the desk."),
    Definition(
        "Student Number",
        "As entered at the desk, kept as text so leading zeros stay. Import the file "
        "with this column set to Text to keep them in a spreadsheet.",
    ),
    Definition(
        "Unit Code",
        "The unit the enquiry is about, in capitals (such as CITS3200); blank when none was given.",
    ),
    Definition("Enquiry Type", "The kind of help asked for, such as Essay or Referencing."),
    Definition(
        "Outcome",
        "How the visit ended: Finished (seen), Left before being seen, No-show, or Out "
        "of time (still waiting when the queue closed). A visit still open when the file "
        "was made says Waiting or In session.",
    ),
    Definition(
        "Arrived",
        "When the student was added to the queue: local date and time with the offset "
        "from UTC, in ISO 8601 (2026-11-27T09:05:07+08:00).",
    ),
    Definition("Started", "When the session started, written the same way; blank if it never did."),
    Definition(
        "Ended",
        "When the session finished or the student left the queue, written the same way; "
        "blank while the visit is open.",
    ),
    Definition(
        "Wait Time (minutes)",
        "From Arrived to Started, in minutes to one decimal (from whole seconds); blank "
        "if no session started. The dashboard's waits are the same figure.",
    ),
    Definition(
        "Session Time (minutes)",
        "From Started to Ended, in minutes to one decimal; blank unless the session finished.",
    ),
    Definition(
        "Added by",
        "The staff member who added the student to the queue (first name, or username "
        "if none); blank if the account was deleted.",
    ),
    Definition(
        "Served by",
        "The staff member who started the session (first name, or username if none); "
        "blank if no session started or the account was deleted.",
    ),
]
HEADERS = [column.name for column in EXPORT_COLUMNS]

#: What the dashboard's figures and the reports' calendar words mean, as computed in
#: reporting/metrics.py. Shown on the data dictionary page and in the docs.
REPORT_TERMS = [
    Definition(
        "Visits",
        "Every visit that arrived in the period, whatever became of it: served, removed "
        "or still open.",
    ),
    Definition("Served", "Visits whose session finished (outcome Finished)."),
    Definition(
        "Removed",
        "Visits that left the queue without a session: Left before being seen, No-show "
        "or Out of time. A removed visit is never counted as served.",
    ),
    Definition("Still open", "Visits waiting or in a session when the report was made."),
    Definition(
        "Unique students",
        "Different student numbers among the period's visits: a student who came three "
        "times counts once.",
    ),
    Definition(
        "Wait",
        "From arrival to the start of the session, in whole seconds, shown in minutes. "
        "Only visits that started a session have a wait; removed students do not.",
    ),
    Definition(
        "Median wait",
        "Half the waits were this long or shorter. Read from the period's waits in order "
        "at position 0.5 × (n − 1), between the two nearest waits by linear "
        "interpolation (as PostgreSQL's percentile_cont).",
    ),
    Definition(
        "90th percentile wait",
        "Nine waits in ten were this long or shorter: position 0.9 × (n − 1) in the "
        "waits in order, interpolated the same way.",
    ),
    Definition(
        "Session length",
        "From the start of a session to its finish; finished sessions only.",
    ),
    Definition(
        "Utilisation",
        "Session minutes divided by staffed minutes. Staffed minutes add up, minute by "
        "minute over the period (never past now), how many staff the staffing history "
        "says were available; the count at the start is the one set by the last change "
        "before it. Session minutes add the part of each session inside the period, a "
        "running session counting up to now.",
    ),
    Definition(
        "Change",
        "Each headline figure against the term before, for a whole term, or else against "
        "the same number of days just before the period; told by arrow, amount and word "
        "(▲ 12 more (+20 %), ▼ 1 min shorter, ▲ 2 pts higher). No colour says whether "
        "that is good. A period still running is compared with the same number of days "
        "of the other, up to today.",
    ),
    Definition(
        "Wait distribution",
        "Waits in 5-minute bands (a wait of exactly 5:00 is in 5–10), then 60+ for an "
        "hour or more.",
    ),
    Definition("Peak hours", "Arrivals by local weekday and local hour of arrival."),
    Definition("Wait by hour", "Median and 90th percentile wait by local hour of arrival."),
    Definition(
        "Wait estimate",
        "The desk's Expected Start: minutes until the session starts, as a range from the "
        "10th to the 90th percentile of a simulation of the team's queue, made as the "
        "student joined and again when their place in line or the team's staff changed. "
        "The one shown as the student joined is the one checked.",
    ),
    Definition(
        "Median absolute error",
        "Of the students seen, half had an actual wait closer than this to the middle of "
        "the estimate shown as they joined.",
    ),
    Definition(
        "Inside the range shown",
        "The share of students seen whose actual wait was within the estimate's range "
        "shown as they joined; meant to be about 80 %.",
    ),
    Definition(
        "Popular units",
        "The ten unit codes with the most visits, ties in alphabetical order; visits "
        "without a unit code are left out.",
    ),
    Definition(
        "Faculties", "Visits by the letters that begin the unit code: CITS3200 counts for CITS."
    ),
    Definition("Enquiry types", "Visits per enquiry type, most first."),
    Definition("Visits by team", "Visits per active team, whichever team the filter names."),
    Definition("Outcomes", "Visits per outcome, then the visits still open."),
    Definition(
        "Local day",
        "A calendar day, midnight to midnight, in the service's time zone (TIME_ZONE, "
        "Australia/Perth unless set otherwise). Every day, weekday, hour and week in the "
        "reports and the export is local: a visit at 23:30 UTC is on the next day in "
        "Perth.",
    ),
    Definition(
        "Week",
        "Monday to Sunday, in local days: the dashboard's Week view and the printable "
        "weekly summary.",
    ),
    Definition(
        "Teaching week",
        "A Monday-to-Sunday week of a term, numbered from the week of the term's first "
        "day. Weeks that touch a term break get no number; the last week stops at the "
        "term's last day.",
    ),
    Definition(
        "Weekly trend",
        "Visits per teaching week of the term, beside the same weeks of the term before.",
    ),
]

export_permission = permission_required("queueing.export_visits", raise_exception=True)


def local_today() -> date:
    return timezone.localdate()


# --- the file ------------------------------------------------------------------------

_FIELDS = (
    "pk",
    "arrived_at",
    "team__name",
    "student_name",
    "student_number",
    "unit_code",
    "enquiry_type__name",
    "status",
    "outcome",
    "started_at",
    "ended_at",
    "added_by__first_name",
    "added_by__username",
    "started_by__first_name",
    "started_by__username",
)


def export_visits(f: Filter) -> QuerySet:
    """One query: every visit of the filter, open and removed ones included, in order of
    arrival, with the names it shows joined in (plain tuples, no model instances)."""
    return f.visits().order_by("arrived_at", "pk").values_list(*_FIELDS)


def _local(moment: datetime | None, tz: tzinfo) -> str:
    return "" if moment is None else moment.astimezone(tz).isoformat(timespec="seconds")


def _minutes(start: datetime | None, end: datetime | None) -> float | str:
    if start is None or end is None:
        return ""
    # Whole seconds first (half a second up), as the dashboard counts waits.
    return minutes(math.floor((end - start).total_seconds() + 0.5))


class _Cells(dict):
    """csv_cell of each value, worked out once: for the columns whose values repeat
    (teams, enquiry types, staff), never for students' details, so it stays small."""

    def __missing__(self, value: str) -> Any:
        self[value] = cell = csv_cell(value)
        return cell


def export_rows(visits: Iterable[tuple]) -> Iterator[list[Any]]:
    """The cells of each visit, in EXPORT_COLUMNS order. Text anyone could type is passed
    through csv_cell, so a name such as =HYPERLINK(…) cannot run in a spreadsheet."""
    tz = timezone.get_default_timezone()
    outcomes = dict(Visit.Outcome.choices)
    statuses = dict(Visit.Status.choices)
    finished = Visit.Status.FINISHED
    repeated = _Cells()
    for (
        pk,
        arrived,
        team,
        name,
        number,
        unit,
        enquiry_type,
        status,
        outcome,
        started,
        ended,
        added_first,
        added_username,
        served_first,
        served_username,
    ) in visits:
        local_arrival = arrived.astimezone(tz)
        yield [
            pk,
            local_arrival.date().isoformat(),
            repeated[team],
            csv_cell(name),
            csv_cell(number),
            csv_cell(unit),
            repeated[enquiry_type],
            outcomes.get(outcome) or statuses.get(status, status),
            local_arrival.isoformat(timespec="seconds"),
            _local(started, tz),
            _local(ended, tz),
            _minutes(arrived, started),
            _minutes(started, ended) if status == finished else "",
            repeated[added_first or added_username or ""],
            repeated[served_first or served_username or ""],
        ]


def csv_chunks(rows: Iterable[list[Any]], *, rows_per_chunk: int = CHUNK_ROWS) -> Iterator[bytes]:
    """UTF-8 with a byte order mark (Excel reads the file as UTF-8 only with one), the
    header row, then the rows, a few thousand to a chunk: one write per row would cost
    a system call per row in the server."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(HEADERS)
    remaining = iter(rows)
    while True:
        writer.writerows(islice(remaining, rows_per_chunk))
        chunk = buffer.getvalue()
        if not chunk:
            return
        yield chunk.encode()
        buffer.seek(0)
        buffer.truncate()


def export_stream(f: Filter) -> Iterator[bytes]:
    """The whole file, read as it is sent.

    On PostgreSQL, iterator() reads through a server-side cursor. Outside a transaction
    Django declares it WITH HOLD, and PostgreSQL then runs the query to the end and
    stores every row before sending the first; inside one, rows flow as they are read.
    SQLite reads in chunks either way, and a transaction there (BEGIN IMMEDIATE in this
    project) would hold the desk's write lock for the whole download, so it gets none.
    """
    chunks = csv_chunks(export_rows(export_visits(f).iterator(chunk_size=CHUNK_ROWS)))
    if connection.vendor != "postgresql":
        yield from chunks
        return
    with transaction.atomic():
        yield from chunks


def first_visit_day(team: Team | None) -> date | None:
    """The local day of the first visit (of a team), for All Time: one indexed query."""
    visits = Visit.objects.all() if team is None else Visit.objects.filter(team=team)
    first = visits.aggregate(first=Min("arrived_at"))["first"]
    return None if first is None else timezone.localdate(first)


# --- views ---------------------------------------------------------------------------


def _form(data: QueryDict) -> ExportForm:
    return ExportForm(data, teams=list(Team.objects.all()), today=local_today())


def _page(request: HttpRequest, form: ExportForm, *, refused: bool = False) -> HttpResponse:
    choice: ExportChoice | None = None
    count = None
    if form.is_valid():
        choice = form.choice(first_day=first_visit_day)
        count = choice.filter.visits().count()
    monday = form.today - timedelta(days=form.today.weekday())
    context = {
        "form": form,
        "periods": form.period_dates(),
        "choice": choice,
        "count": count,
        "time_zone": settings.TIME_ZONE,
        "download_refused": refused,
        # The Monday-to-Sunday week containing today, as the dashboard opens on it.
        "calendar_week": (monday, monday + timedelta(days=6)),
    }
    return render(request, EXPORT_PAGE, context, status=400 if refused else 200)


@require_GET
@never_cache
@export_permission
def export_page(request: HttpRequest) -> HttpResponse:
    """The filters, and how many visits they cover (one COUNT) with the download link."""
    data = request.GET if request.GET else QueryDict(f"period={LAST_WEEK}")
    return _page(request, _form(data))


@require_GET
@never_cache
@export_permission
def export_csv(request: HttpRequest) -> HttpResponse:
    """The file; with filters it cannot use, the page again with what was wrong (400)."""
    form = _form(request.GET)
    if not form.is_valid():
        return _page(request, form, refused=True)
    choice = form.choice(first_day=first_visit_day)
    return StreamingHttpResponse(
        export_stream(choice.filter),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": content_disposition_header(True, choice.filename)},
    )


@require_GET
@never_cache
def data_dictionary(request: HttpRequest) -> HttpResponse:
    """For whoever reads the figures: the dashboard's users and the exporters."""
    user = request.user
    if not (user.has_perm("reporting.view_reports") or user.has_perm("queueing.export_visits")):
        raise PermissionDenied
    context = {
        "columns": EXPORT_COLUMNS,
        "terms": REPORT_TERMS,
        "periods": EXPORT_PERIODS,
        "time_zone": settings.TIME_ZONE,
        "can_export": user.has_perm("queueing.export_visits"),
    }
    return render(request, DICTIONARY_PAGE, context)
