"""Export Data: the page, the streamed CSV and the data dictionary.

"Today" is frozen at Saturday 28 November 2026, 10:00 in Perth (UTC+8 all year), by
patching django.utils.timezone.now. Every day in these tests is a Perth day.
"""

import codecs
import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import UserFactory
from queueing.models import EnquiryType, Team, Visit
from queueing.tests.factories import TeamFactory, VisitFactory
from reporting.export import EXPORT_COLUMNS, HEADERS, REPORT_TERMS
from reporting.forms import EXPORT_PERIODS, period_days

pytestmark = pytest.mark.django_db

PERTH = ZoneInfo("Australia/Perth")
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=PERTH)  # a Saturday
TODAY = NOW.date()
PAGE = reverse("reporting:export")
CSV = reverse("reporting:export_csv")
DICTIONARY = reverse("reporting:data_dictionary")
DOCS = Path(settings.BASE_DIR) / "docs" / "data-dictionary.md"


@pytest.fixture(autouse=True)
def _perth_today(settings, monkeypatch):
    settings.TIME_ZONE = "Australia/Perth"
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW.astimezone(UTC))


@pytest.fixture
def coordinator_client(client, coordinator):
    client.force_login(coordinator)
    return client


def perth(day: date, hour: int = 10, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=PERTH)


def finished(arrived: datetime, *, wait: timedelta, session: timedelta, **fields) -> Visit:
    started = arrived + wait
    return VisitFactory(
        arrived_at=arrived,
        started_at=started,
        ended_at=started + session,
        status=Visit.Status.FINISHED,
        outcome=Visit.Outcome.FINISHED,
        **fields,
    )


def removed(arrived: datetime, outcome: str, **fields) -> Visit:
    return VisitFactory(
        arrived_at=arrived,
        ended_at=arrived + timedelta(minutes=20),
        status=Visit.Status.REMOVED,
        outcome=outcome,
        **fields,
    )


def body(response) -> bytes:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content)


def rows(response) -> list[dict[str, str]]:
    """The file as a spreadsheet would read it: UTF-8 with its BOM, then CSV."""
    text = body(response).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def download(client, **query) -> list[dict[str, str]]:
    response = client.get(CSV, query)
    assert response.status_code == 200
    return rows(response)


def filename(response) -> str:
    match = re.fullmatch(r'attachment; filename="([^"]+)"', response["Content-Disposition"])
    assert match, response["Content-Disposition"]
    return match.group(1)


# --- the page ---------------------------------------------------------------------------


def test_it_shows_coordinators_the_page_with_last_week_and_its_count(coordinator_client):
    VisitFactory(arrived_at=perth(date(2026, 11, 22), 9))
    VisitFactory(arrived_at=perth(date(2026, 11, 27), 11))
    VisitFactory(arrived_at=perth(date(2026, 11, 21), 23, 59, 59))  # the day before

    response = coordinator_client.get(PAGE)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.text
    assert '<input type="radio" name="period" value="last-week"' in html
    assert 'value="last-week" id="id_period_1" required checked' in html
    assert "Last Week: Sun 22 Nov 2026 – Sat 28 Nov 2026" in html
    assert "<strong>2 visits</strong>, all teams" in html
    assert f'href="{CSV}?period=last-week"' in html
    assert "resq-visits-2026-11-22-to-2026-11-28.csv" in html


def test_it_says_which_days_each_period_covers_today(coordinator_client):
    html = coordinator_client.get(PAGE).text

    for expected in (
        "Sat 28 Nov 2026",
        "Sun 22 Nov 2026 – Sat 28 Nov 2026",
        "Thu 29 Oct 2026 – Sat 28 Nov 2026",
        "Sat 29 Nov 2025 – Sat 28 Nov 2026",
        "every visit up to Sat 28 Nov 2026",
    ):
        assert f'<span class="period-dates">{expected}</span>' in html


def test_it_counts_the_chosen_period_and_team_in_one_query(coordinator_client):
    librarian = Team.objects.get(slug="librarian")
    for day in (2, 3, 4):
        VisitFactory(arrived_at=perth(date(2026, 11, day)), team=librarian)
    VisitFactory(arrived_at=perth(date(2026, 11, 3)))  # another team

    with CaptureQueriesContext(connection) as queries:
        response = coordinator_client.get(
            PAGE,
            {"period": "custom", "start": "2026-11-02", "end": "2026-11-04", "team": "librarian"},
        )

    assert "<strong>3 visits</strong>, Librarian only" in response.text
    assert sum("COUNT(" in q["sql"].upper() for q in queries.captured_queries) == 1
    assert (
        f'href="{CSV}?period=custom&amp;start=2026-11-02&amp;end=2026-11-04&amp;team=librarian"'
        in response.text
    )


def test_it_says_an_empty_period_downloads_only_the_header(coordinator_client):
    response = coordinator_client.get(PAGE, {"period": "last-day"})

    assert "<strong>0 visits</strong>" in response.text
    assert "The file will hold only the header row" in response.text


def test_it_links_export_data_in_the_navigation_for_coordinators(coordinator_client):
    html = coordinator_client.get(PAGE).text
    assert f'href="{PAGE}" aria-current="page">Export Data</a>' in html


def test_it_hides_the_link_from_managers_and_student_leaders(client, manager, leader):
    client.force_login(manager)
    assert "Export Data" not in client.get(reverse("reporting:dashboard")).text
    client.force_login(leader)
    assert "Export Data" not in client.get(reverse("queueing:desk")).text


def test_it_keeps_the_page_free_of_inline_script_style_and_handlers(coordinator_client):
    html = coordinator_client.get(PAGE, {"period": "custom", "start": "x"}).text

    assert "<script>" not in html
    assert "<style" not in html
    assert " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)


def test_it_labels_every_control(coordinator_client):
    html = coordinator_client.get(PAGE).text

    for name in ("id_start", "id_end", "id_team", *(f"id_period_{n}" for n in range(6))):
        assert f'for="{name}"' in html, name
    assert "<legend>Period</legend>" in html


# --- permissions --------------------------------------------------------------------


@pytest.mark.parametrize("url", [PAGE, CSV])
def test_it_forbids_student_leaders(leader_client, url):
    assert leader_client.get(url, {"period": "all-time"}).status_code == 403


@pytest.mark.parametrize("url", [PAGE, CSV])
def test_it_forbids_managers_who_cannot_export(manager_client, url):
    # Managers see the dashboard but do not hold queueing.export_visits.
    assert manager_client.get(reverse("reporting:dashboard")).status_code == 200
    assert manager_client.get(url, {"period": "all-time"}).status_code == 403


@pytest.mark.parametrize("url", [PAGE, CSV, DICTIONARY])
def test_it_sends_anonymous_users_to_log_in(client, url):
    response = client.get(url, {"period": "all-time"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("url", [PAGE, CSV])
def test_it_refuses_post(coordinator_client, url):
    assert coordinator_client.post(url, {"period": "all-time"}).status_code == 405


def test_it_lets_a_user_given_only_the_export_permission_export(client):
    from django.contrib.auth.models import Permission

    user = UserFactory(username="exporter")
    user.user_permissions.add(Permission.objects.get(codename="export_visits"))
    client.force_login(user)

    assert client.get(CSV, {"period": "all-time"}).status_code == 200


# --- the presets ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "first", "last"),
    [
        ("last-day", date(2026, 11, 28), date(2026, 11, 28)),
        ("last-week", date(2026, 11, 22), date(2026, 11, 28)),
        ("last-month", date(2026, 10, 29), date(2026, 11, 28)),
        ("last-year", date(2025, 11, 29), date(2026, 11, 28)),
    ],
)
def test_it_exports_each_preset_as_whole_local_days_ending_today(
    coordinator_client, period, first, last
):
    before = VisitFactory(arrived_at=perth(first - timedelta(days=1), 23, 59, 59))
    at_start = VisitFactory(arrived_at=perth(first, 0, 0, 0))
    at_end = VisitFactory(arrived_at=perth(last, 23, 59, 59))
    after = VisitFactory(arrived_at=perth(last + timedelta(days=1), 0, 0, 0))

    response = coordinator_client.get(CSV, {"period": period})

    assert response.status_code == 200
    assert filename(response) == f"resq-visits-{first}-to-{last}.csv"
    ids = [int(row["Visit ID"]) for row in rows(response)]
    assert ids == [at_start.pk, at_end.pk]
    assert before.pk not in ids and after.pk not in ids


@pytest.mark.parametrize(
    ("period", "today", "first"),
    [
        ("last-month", date(2026, 3, 31), date(2026, 3, 1)),  # February has no 31st
        ("last-month", date(2027, 1, 1), date(2026, 12, 2)),  # across a year
        ("last-month", date(2028, 3, 29), date(2028, 3, 1)),  # leap year: 29 Feb exists
        ("last-year", date(2028, 2, 29), date(2027, 3, 1)),  # 2027 has no 29 Feb
        ("last-week", date(2026, 3, 3), date(2026, 2, 25)),
    ],
)
def test_it_counts_months_and_years_back_by_the_calendar(period, today, first):
    assert period_days(period, today) == (first, today)


def test_it_exports_all_time_from_the_first_visit(coordinator_client):
    oldest = VisitFactory(arrived_at=perth(date(2024, 2, 26), 10))
    newest = VisitFactory(arrived_at=perth(TODAY, 9, 30))

    response = coordinator_client.get(CSV, {"period": "all-time"})

    assert filename(response) == "resq-visits-2024-02-26-to-2026-11-28.csv"
    assert [int(row["Visit ID"]) for row in rows(response)] == [oldest.pk, newest.pk]


def test_it_exports_all_time_of_nothing_as_today(coordinator_client):
    response = coordinator_client.get(CSV, {"period": "all-time"})

    assert filename(response) == "resq-visits-2026-11-28-to-2026-11-28.csv"
    assert rows(response) == []


def test_it_includes_both_end_days_of_a_custom_range(coordinator_client):
    VisitFactory(arrived_at=perth(date(2026, 11, 1), 23, 59, 59))
    first = VisitFactory(arrived_at=perth(date(2026, 11, 2), 0, 0, 0))
    last = VisitFactory(arrived_at=perth(date(2026, 11, 6), 23, 59, 59))
    VisitFactory(arrived_at=perth(date(2026, 11, 7), 0, 0, 0))

    exported = download(coordinator_client, period="custom", start="2026-11-02", end="2026-11-06")

    assert [int(row["Visit ID"]) for row in exported] == [first.pk, last.pk]
    assert [row["Date"] for row in exported] == ["2026-11-02", "2026-11-06"]


def test_it_puts_a_visit_at_2330_utc_on_the_next_perth_day(coordinator_client):
    late = VisitFactory(arrived_at=datetime(2026, 11, 26, 23, 30, tzinfo=UTC))

    on_26th = download(coordinator_client, period="custom", start="2026-11-26", end="2026-11-26")
    on_27th = download(coordinator_client, period="custom", start="2026-11-27", end="2026-11-27")

    assert on_26th == []
    [row] = on_27th
    assert int(row["Visit ID"]) == late.pk
    assert row["Date"] == "2026-11-27"
    assert row["Arrived"] == "2026-11-27T07:30:00+08:00"


def test_it_accepts_dates_as_typed_in_australia(coordinator_client):
    visit = VisitFactory(arrived_at=perth(date(2026, 11, 2)))

    exported = download(coordinator_client, period="custom", start="2/11/2026", end="02/11/26")

    assert [int(row["Visit ID"]) for row in exported] == [visit.pk]


def test_it_ignores_leftover_dates_when_a_preset_is_chosen(coordinator_client):
    response = coordinator_client.get(
        CSV, {"period": "last-day", "start": "not a date", "end": "1999-01-01"}
    )

    assert response.status_code == 200
    assert filename(response) == "resq-visits-2026-11-28-to-2026-11-28.csv"


# --- the file ---------------------------------------------------------------------------


def test_it_writes_the_columns_in_the_documented_order(coordinator_client):
    response = coordinator_client.get(CSV, {"period": "last-day"})

    first_line = body(response).decode("utf-8-sig").splitlines()[0]
    assert first_line.split(",") == [
        "Visit ID",
        "Date",
        "Team",
        "Student Name",
        "Student Number",
        "Unit Code",
        "Enquiry Type",
        "Outcome",
        "Arrived",
        "Started",
        "Ended",
        "Wait Time (minutes)",
        "Session Time (minutes)",
        "Added by",
        "Served by",
    ]
    assert first_line.split(",") == HEADERS


def test_it_exports_a_finished_visit_with_local_times_and_minutes(coordinator_client):
    adviser = UserFactory(username="adviser", first_name="Sam")
    leader = UserFactory(username="lee-the-leader", first_name="")
    visit = finished(
        perth(date(2026, 11, 27), 9, 5, 7),
        wait=timedelta(minutes=12, seconds=30),
        session=timedelta(minutes=18),
        student_name="Mia Chen",
        student_number="21234567",
        unit_code="CITS3200",
        team=Team.objects.get(slug="librarian"),
        enquiry_type=EnquiryType.objects.get(name="Referencing"),
        added_by=leader,
        started_by=adviser,
        ended_by=adviser,
    )

    [row] = download(coordinator_client, period="last-week")

    assert row == {
        "Visit ID": str(visit.pk),
        "Date": "2026-11-27",
        "Team": "Librarian",
        "Student Name": "Mia Chen",
        "Student Number": "21234567",
        "Unit Code": "CITS3200",
        "Enquiry Type": "Referencing",
        "Outcome": "Finished",
        "Arrived": "2026-11-27T09:05:07+08:00",
        "Started": "2026-11-27T09:17:37+08:00",
        "Ended": "2026-11-27T09:35:37+08:00",
        "Wait Time (minutes)": "12.5",
        "Session Time (minutes)": "18.0",
        "Added by": "lee-the-leader",
        "Served by": "Sam",
    }


def test_it_includes_open_and_removed_visits_with_their_outcome(coordinator_client):
    day = date(2026, 11, 27)
    finished(perth(day, 10, 0), wait=timedelta(minutes=5), session=timedelta(minutes=10))
    removed(perth(day, 10, 1), Visit.Outcome.CANCELLED)
    removed(perth(day, 10, 2), Visit.Outcome.NO_SHOW)
    removed(perth(day, 10, 3), Visit.Outcome.OUT_OF_TIME)
    VisitFactory(
        arrived_at=perth(day, 10, 4),
        started_at=perth(day, 10, 9),
        status=Visit.Status.IN_SESSION,
    )
    VisitFactory(arrived_at=perth(day, 10, 5))

    exported = download(coordinator_client, period="last-week")

    assert [
        (r["Outcome"], r["Wait Time (minutes)"], r["Session Time (minutes)"]) for r in exported
    ] == [
        ("Finished", "5.0", "10.0"),
        ("Left before being seen", "", ""),
        ("No-show", "", ""),
        ("Out of time", "", ""),
        ("In session", "5.0", ""),
        ("Waiting", "", ""),
    ]
    waiting = exported[-1]
    assert (waiting["Started"], waiting["Ended"], waiting["Served by"]) == ("", "", "")
    assert exported[1]["Ended"] == "2026-11-27T10:21:00+08:00"


def test_it_orders_visits_by_arrival_then_id(coordinator_client):
    day = date(2026, 11, 25)
    third = VisitFactory(arrived_at=perth(day, 11, 30))
    first = VisitFactory(arrived_at=perth(day, 9, 15))
    tie_a = VisitFactory(arrived_at=perth(day, 10, 0))
    tie_b = VisitFactory(arrived_at=perth(day, 10, 0))
    earlier_day = VisitFactory(arrived_at=perth(day - timedelta(days=1), 11, 59))

    exported = download(coordinator_client, period="last-week")

    assert [int(r["Visit ID"]) for r in exported] == [
        earlier_day.pk,
        first.pk,
        tie_a.pk,
        tie_b.pk,
        third.pk,
    ]


def test_it_names_the_file_after_the_range_and_team(coordinator_client):
    response = coordinator_client.get(
        CSV, {"period": "custom", "start": "2026-11-01", "end": "2026-11-27", "team": "librarian"}
    )

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert filename(response) == "resq-visits-librarian-2026-11-01-to-2026-11-27.csv"
    assert "no-store" in response["Cache-Control"]
    assert "max-age=0" in response["Cache-Control"]


def test_it_filters_by_team(coordinator_client):
    librarian = Team.objects.get(slug="librarian")
    ours = VisitFactory(arrived_at=perth(date(2026, 11, 27)), team=librarian)
    VisitFactory(arrived_at=perth(date(2026, 11, 27)))

    exported = download(coordinator_client, period="last-week", team="librarian")

    assert [int(r["Visit ID"]) for r in exported] == [ours.pk]


def test_it_writes_utf8_with_a_bom_so_names_survive(coordinator_client):
    VisitFactory(arrived_at=perth(date(2026, 11, 27)), student_name="Zoë Ng")
    VisitFactory(arrived_at=perth(date(2026, 11, 27), 11), student_name="Nguyễn Thảo")

    response = coordinator_client.get(CSV, {"period": "last-week"})
    raw = body(response)

    assert raw.startswith(codecs.BOM_UTF8 + b"Visit ID,")
    assert raw.count(codecs.BOM_UTF8) == 1
    assert [r["Student Name"] for r in rows_of(raw)] == ["Zoë Ng", "Nguyễn Thảo"]


def rows_of(raw: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize(
    "typed",
    ['=HYPERLINK("http://x","y")', "+1", "-1", "@SUM(1)", "\t=1+1", "\r=1+1"],
)
def test_it_neutralises_formulas_in_names(coordinator_client, typed):
    number = typed[:20]  # the field's length
    VisitFactory(arrived_at=perth(date(2026, 11, 27)), student_name=typed, student_number=number)

    [row] = download(coordinator_client, period="last-week")

    # A leading apostrophe makes a spreadsheet read the cell as text: it shows, never runs.
    assert row["Student Name"] == "'" + typed
    assert row["Student Number"] == "'" + number


def test_it_neutralises_formulas_in_names_staff_chose(coordinator_client):
    team = TeamFactory(name="=cmd|' /C calc'!A0", slug="evil")
    VisitFactory(
        arrived_at=perth(date(2026, 11, 27)),
        team=team,
        enquiry_type=EnquiryType.objects.create(name="@SUM(A1)"),
        added_by=UserFactory(username="-leader", first_name=""),
    )

    [row] = download(coordinator_client, period="last-week")

    assert row["Team"] == "'=cmd|' /C calc'!A0"
    assert row["Enquiry Type"] == "'@SUM(A1)"
    assert row["Added by"] == "'-leader"


def test_it_keeps_leading_zeros_in_student_numbers(coordinator_client):
    VisitFactory(arrived_at=perth(date(2026, 11, 27)), student_number="00012345")

    raw = body(coordinator_client.get(CSV, {"period": "last-week"}))

    assert b",00012345," in raw  # as text, not 12345
    assert rows_of(raw)[0]["Student Number"] == "00012345"


def test_it_downloads_just_the_header_for_an_empty_range(coordinator_client):
    response = coordinator_client.get(
        CSV, {"period": "custom", "start": "2030-01-01", "end": "2030-01-31"}
    )

    assert response.status_code == 200
    assert body(response) == codecs.BOM_UTF8 + (",".join(HEADERS) + "\r\n").encode()


# --- streaming ----------------------------------------------------------------------------


def test_it_streams_the_file(coordinator_client):
    response = coordinator_client.get(CSV, {"period": "last-week"})

    assert isinstance(response, StreamingHttpResponse)
    assert not response.has_header("Content-Length")


@pytest.mark.parametrize("count", [5, 50])
def test_it_reads_the_visits_in_one_query_whatever_their_number(
    coordinator_client, django_assert_max_num_queries, count
):
    start = perth(date(2026, 11, 23), 10)
    staff = UserFactory(username="adviser")
    for n in range(count):
        finished(
            start + timedelta(minutes=n),
            wait=timedelta(minutes=3),
            session=timedelta(minutes=9),
            added_by=staff,
            started_by=staff,
            ended_by=staff,
        )

    # Session, user, permissions, teams and the visits; on PostgreSQL the read runs in
    # a transaction, which inside a test is a savepoint and its release.
    with django_assert_max_num_queries(7):
        response = coordinator_client.get(CSV, {"period": "last-week"})
        exported = rows(response)

    assert len(exported) == count


def test_it_writes_the_file_in_chunks(coordinator_client):
    from reporting import export

    for n in range(5):
        VisitFactory(arrived_at=perth(date(2026, 11, 27), 10, n))
    chunks = list(
        export.csv_chunks(
            export.export_rows(
                export.export_visits(export.Filter(date(2026, 11, 27), date(2026, 11, 27)))
            ),
            rows_per_chunk=2,
        )
    )

    assert len(chunks) == 3  # 2 + 2 rows (the first with the header), then the last one
    assert b"".join(chunks).count(b"\r\n") == 6


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (
            {"period": "custom", "start": "2026-11-20", "end": "2026-11-02"},
            "end",
            "The End Date (Mon 2 Nov 2026) is before the Start Date (Fri 20 Nov 2026).",
        ),
        (
            {"period": "custom", "start": "2026-02-30", "end": "2026-03-02"},
            "start",
            "“2026-02-30” is not a date.",
        ),
        ({"period": "custom", "start": "", "end": "2026-11-02"}, "start", "Enter the Start Date"),
        ({"period": "custom", "start": "2026-11-02", "end": ""}, "end", "Enter the End Date"),
        ({"period": "custom"}, "start", "Enter the Start Date"),
        (
            {"period": "custom", "start": "0001-01-01", "end": "2026-11-02"},
            "start",
            "Enter a date between 2000 and 2099.",
        ),
        (
            {"period": "custom", "start": "2026-11-02", "end": "99999-12-31"},
            "end",
            "“99999-12-31” is not a date.",
        ),
        (
            {"period": "custom", "start": "2026-11-02", "end": "2150-01-01"},
            "end",
            "Enter a date between 2000 and 2099.",
        ),
        ({"period": "next-week"}, "period", "“next-week” is not one of the periods."),
        ({}, "period", "Choose a period to export."),
        (
            {"period": "last-week", "team": "no-such-team"},
            "team",
            "There is no team “no-such-team”.",
        ),
    ],
)
def test_it_explains_bad_input_and_downloads_nothing(coordinator_client, query, field, message):
    VisitFactory(arrived_at=perth(date(2026, 11, 3)))

    response = coordinator_client.get(CSV, query)

    assert response.status_code == 400
    assert not isinstance(response, StreamingHttpResponse)
    assert "Content-Disposition" not in response
    assert response["Content-Type"].startswith("text/html")
    assert "no-store" in response["Cache-Control"]
    html = response.text
    assert "Nothing was downloaded." in html
    assert message in html
    # The message is tied to its field for screen readers.
    assert f'id="id_{field}_error"' in html
    if field == "period":
        fieldset = '<fieldset class="export-periods" aria-describedby="{}">'
        assert fieldset.format("id_period_helptext id_period_error") in html
    else:
        assert re.search(
            rf'<[^>]*aria-describedby="[^"]*id_{field}_error[^"]*"[^>]*id="id_{field}"', html
        )
        assert re.search(rf'<[^>]*aria-invalid="true"[^>]*id="id_{field}"', html)


def test_it_shows_the_form_again_with_what_was_typed(coordinator_client):
    response = coordinator_client.get(
        PAGE,
        {"period": "custom", "start": "2026-11-20", "end": "2026-11-02", "team": "librarian"},
    )

    html = response.text
    assert response.status_code == 200
    assert 'value="custom" id="id_period_5" required checked' in html
    assert 'name="start" value="2026-11-20"' in html
    assert 'name="end" value="2026-11-02"' in html
    assert '<option value="librarian" selected>' in html
    assert "Please fix this:" in html
    assert "Nothing was downloaded" not in html  # only counting was asked for
    assert "export-summary" not in html


def test_it_cuts_a_very_long_bad_value_short_in_its_message(coordinator_client):
    response = coordinator_client.get(CSV, {"period": "custom", "start": "9" * 500, "end": "x"})

    assert response.status_code == 400
    [errors] = re.findall(r'<ul class="errorlist" id="id_start_error">(.*?)</ul>', response.text)
    assert errors == "<li>“" + "9" * 40 + "…” is not a date. Enter a day such as 27/11/2026.</li>"


# --- the data dictionary ---------------------------------------------------------------


@pytest.mark.parametrize("who", ["coordinator", "manager"])
def test_it_shows_the_data_dictionary_to_report_readers(client, request, who):
    client.force_login(request.getfixturevalue(who))

    response = client.get(DICTIONARY)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.text
    for column in EXPORT_COLUMNS:
        assert f'<th scope="row">{column.name}</th><td>{column.meaning}</td>' in html.replace(
            "&#x27;", "'"
        )
    for term in REPORT_TERMS:
        assert f'<th scope="row">{term.name}</th>' in html


def test_it_forbids_the_data_dictionary_to_student_leaders(leader_client):
    assert leader_client.get(DICTIONARY).status_code == 403


def test_it_links_the_data_dictionary_from_the_export_page(coordinator_client):
    assert f'href="{DICTIONARY}"' in coordinator_client.get(PAGE).text


def _docs_rows() -> set[str]:
    return {line.strip() for line in DOCS.read_text(encoding="utf-8").splitlines()}


@pytest.mark.parametrize(
    "definition",
    [
        *(pytest.param(c, id=f"column {c.name}") for c in EXPORT_COLUMNS),
        *(pytest.param(t, id=f"figure {t.name}") for t in REPORT_TERMS),
    ],
)
def test_the_docs_define_every_column_and_figure_as_the_page_does(definition):
    row = f"| {definition.name} | {definition.meaning} |"
    assert row in _docs_rows(), f"docs/data-dictionary.md lacks (or words differently):\n{row}"


@pytest.mark.parametrize("period", EXPORT_PERIODS, ids=lambda p: p.value)
def test_the_docs_define_every_period_as_the_page_does(period):
    row = f"| {period.label} | {period.meaning} |"
    assert row in _docs_rows(), f"docs/data-dictionary.md lacks (or words differently):\n{row}"


def test_it_tells_last_week_from_the_dashboards_calendar_week(coordinator_client):
    html = coordinator_client.get(PAGE).content.decode()

    # Today is Saturday 28 November: Last Week is Sunday to today, the dashboard's week
    # Monday 23 to Sunday 29 November; the page offers that one too.
    assert "Last Week is the 7 days ending today" in html
    link = re.search(r'href="([^"]*)"[^>]*>the calendar week Data Analytics shows', html)
    assert link, "no link to the dashboard's calendar week"
    assert link.group(1) == f"{PAGE}?period=custom&amp;start=2026-11-23&amp;end=2026-11-29"
