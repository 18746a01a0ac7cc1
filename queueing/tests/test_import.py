"""Admin import and export, through the real admin views: upload, preview, confirm."""

import csv
import html
import io
import random
import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from accounts.tests.helpers import pass_two_factor
from queueing.models import Board, EnquiryType, Team, Visit, VisitEvent
from queueing.tests.factories import EnquiryTypeFactory, VisitFactory, db_state
from reporting.metrics import Filter, visits_per_day

pytestmark = pytest.mark.django_db


SAMPLE = Path(__file__).parent / "data" / "old_system_sample.csv"
HEADER = (
    "id,studentName,studentNumber,unitCode,enquiry,queue,status,"
    "enterQueueTime,changeSessionTime,exitSessionTime"
)
RESQ, OLD_SYSTEM = "0", "1"  # the visit list's layouts, in the order admin offers them


def sample_text() -> str:
    return SAMPLE.read_text(encoding="utf-8")


#: A row of the old file that imports as it is; tests change what they need.
GOOD_ROW = {
    "id": "7",
    "studentName": "Zoë Ng",
    "studentNumber": "21234567",
    "unitCode": "",
    "enquiry": "Essay",
    "queue": "Librarian",
    "status": "Completed",
    "enterQueueTime": "2021-10-18 02:00:00",
    "changeSessionTime": "2021-10-18 02:05:00",
    "exitSessionTime": "2021-10-18 02:20:00",
}


def old_row(**values: str) -> str:
    row = {**GOOD_ROW, **values}
    return ",".join(row[column] for column in HEADER.split(","))


def old_file(*rows: str) -> bytes:
    return "\r\n".join([HEADER, *rows, ""]).encode()


def upload(client, model: str, content: bytes, *, layout: str = "0", name: str = "file.csv"):
    return client.post(
        reverse(f"admin:queueing_{model}_import"),
        {
            "resource": layout,
            "format": "0",
            "import_file": SimpleUploadedFile(name, content, content_type="text/csv"),
        },
    )


def confirm(client, model: str, preview):
    assert "confirm_form" in preview.context, preview.text
    return client.post(
        reverse(f"admin:queueing_{model}_process_import"), preview.context["confirm_form"].initial
    )


def import_file(client, model: str, content: bytes, *, layout: str = "0"):
    return confirm(client, model, upload(client, model, content, layout=layout))


def export(client, model: str) -> bytes:
    response = client.post(reverse(f"admin:queueing_{model}_export"), {"format": "0"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return response.content


def page_text(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def problems(response) -> str:
    """The import page's report of what is wrong, as text; nothing to confirm."""
    assert response.status_code == 200
    assert "confirm_form" not in response.context
    return page_text(response)


@pytest.fixture
def board():
    Board.objects.get_or_create(pk=1)
    return Board.current_version


def visit(ref: str) -> Visit:
    return Visit.objects.select_related("team", "enquiry_type").get(source_ref=f"legacy:{ref}")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- the old system's file ---------------------------------------------------------------------


def test_it_previews_the_old_systems_file_without_writing_anything(manager_client, board):
    before, version = db_state(), board()
    response = upload(manager_client, "visit", SAMPLE.read_bytes(), layout=OLD_SYSTEM)
    assert response.status_code == 200
    result = response.context["result"]
    assert not result.has_errors() and not result.has_validation_errors()
    assert result.totals["new"] == 20
    text = page_text(response)
    assert "Preview: nothing has been imported yet" in text
    assert "Enquiries not recognised: filed under “Other”" in text
    assert result.unknown_enquiries == [("maths help", 2), ("stats", 1)]
    assert "Leading zeros restored to 2 student numbers" in text
    assert "1234567 → 01234567" in text
    assert (
        "3 visits still “In Queue” or “In Session” in the old system closed as out of time" in text
    )
    # The rows as ResQ will store them, times in Perth.
    assert "Zoë Ng" in text and "Mon 18 Oct 2021, 10:05" in text
    assert "Wed 20 Oct 2021, 01:30" in text  # 17:30 UTC on the 19th
    assert db_state() == before
    assert board() == version


def test_it_imports_the_old_systems_file_when_confirmed(manager_client, manager, board):
    version = board()
    response = import_file(manager_client, "visit", SAMPLE.read_bytes(), layout=OLD_SYSTEM)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:queueing_visit_changelist")
    assert Visit.objects.count() == 20

    completed = visit("101")
    assert (completed.student_name, completed.student_number, completed.unit_code) == (
        "Zoë Ng",
        "21234567",
        "CITS3200",
    )
    assert (completed.team.name, completed.enquiry_type.name) == ("STUDYSmarter", "Essay")
    assert (completed.status, completed.outcome) == ("finished", "finished")
    assert completed.arrived_at == utc(2021, 10, 18, 2, 5, 7, 123456)
    assert completed.started_at == utc(2021, 10, 18, 2, 15)
    assert completed.ended_at == utc(2021, 10, 18, 2, 40, 30, 500000)
    assert completed.added_by == manager

    padded = visit("102")
    assert (padded.student_number, padded.unit_code, padded.enquiry_type.name) == (
        "01234567",
        "CITS1001",
        "Grammar",
    )
    left = visit("104")  # Ended, never started
    assert (left.status, left.outcome, left.started_at) == ("removed", "cancelled", None)
    assert left.enquiry_type.name == "Literature Research"
    assert left.team.name == "Librarian"
    seen = visit("105")  # Ended after a session started
    assert (seen.status, seen.outcome, seen.enquiry_type.name) == ("finished", "finished", "Other")
    assert seen.unit_code == ""  # "N/A"
    waiting = visit("106")  # still In Queue in 2021
    assert (waiting.status, waiting.outcome) == ("removed", "out_of_time")
    assert waiting.started_at is None and waiting.ended_at == waiting.arrived_at
    in_session = visit("107")
    assert (in_session.status, in_session.outcome) == ("removed", "out_of_time")
    assert in_session.ended_at == in_session.started_at == utc(2021, 10, 19, 3, 55)
    late = visit("108")
    assert late.arrived_at == utc(2021, 10, 19, 17, 30)
    assert timezone.localtime(late.arrived_at).date() == date(2021, 10, 20)
    assert visit("108").enquiry_type.name == "Thesis/Paper"  # "thesis"
    assert visit("112").enquiry_type.name == "Oral Presentation"  # "Presentation"
    assert visit("114").enquiry_type.name == "Other"  # "stats"

    events = VisitEvent.objects.filter(action=VisitEvent.Action.IMPORTED)
    assert events.count() == 20
    assert set(events.values_list("by", flat=True)) == {manager.pk}
    assert events.get(visit=completed).detail == {"source_ref": "legacy:101", "file": "file.csv"}
    assert not VisitEvent.objects.exclude(action=VisitEvent.Action.IMPORTED).exists()
    assert board() == version + 1
    [entry] = LogEntry.objects.all()  # admin's log: one line for the file
    assert (entry.user, entry.object_repr) == (manager, "Import of file.csv")
    assert entry.change_message == "Imported file.csv: 20 new, 0 changed, 0 unchanged visits."

    page = manager_client.get(response["Location"])
    text = page_text(page)
    assert "Import finished: 20 new" in text
    assert "Not a known enquiry type, so filed under “Other”: “maths help” (2), “stats” (1)" in text


def test_it_shows_the_import_in_the_visits_history(manager_client):
    import_file(manager_client, "visit", SAMPLE.read_bytes(), layout=OLD_SYSTEM)
    page = manager_client.get(reverse("admin:queueing_visit_change", args=[visit("101").pk]))
    assert page.status_code == 200
    text = page_text(page)
    assert "Imported" in text and "Source reference: legacy:101" in text


def test_it_adds_nothing_when_the_same_file_comes_again(manager_client, board):
    import_file(manager_client, "visit", SAMPLE.read_bytes(), layout=OLD_SYSTEM)
    before, version = db_state(), board()
    preview = upload(manager_client, "visit", SAMPLE.read_bytes(), layout=OLD_SYSTEM)
    result = preview.context["result"]
    assert (result.totals["new"], result.totals["skip"]) == (0, 20)
    assert "20 visits already brought across by an earlier import" in page_text(preview)
    response = confirm(manager_client, "visit", preview)
    assert response.status_code == 302
    assert db_state() == before
    assert board() == version


def test_it_keeps_corrections_made_since_the_first_import(manager_client):
    import_file(manager_client, "visit", SAMPLE.read_bytes(), layout=OLD_SYSTEM)
    Visit.objects.filter(source_ref="legacy:101").update(student_name="Zoë Ng-Smith")
    extra = old_row(id="121", studentName="Kai Moore", studentNumber="24000001")
    again = sample_text().rstrip("\r\n") + "\r\n" + extra + "\r\n"
    import_file(manager_client, "visit", again.encode(), layout=OLD_SYSTEM)
    assert Visit.objects.count() == 21
    assert visit("101").student_name == "Zoë Ng-Smith"
    assert visit("121").student_name == "Kai Moore"


def test_it_counts_imported_visits_on_their_local_days(manager_client):
    import_file(manager_client, "visit", SAMPLE.read_bytes(), layout=OLD_SYSTEM)
    days = visits_per_day(Filter(date(2021, 10, 17), date(2021, 10, 22)))
    counts = {row["day"]: (row["total"], row["served"], row["removed"]) for row in days}
    assert counts == {
        date(2021, 10, 17): (0, 0, 0),
        date(2021, 10, 18): (5, 4, 1),
        date(2021, 10, 19): (6, 3, 3),
        # 17:30 UTC on the 19th is 01:30 on the 20th in Perth.
        date(2021, 10, 20): (6, 5, 1),
        date(2021, 10, 21): (3, 2, 1),
        date(2021, 10, 22): (0, 0, 0),
    }
    assert not any(row["open"] for row in days)


# --- a row that fails ------------------------------------------------------------------------


def test_it_writes_nothing_when_one_row_fails_and_names_its_line(manager_client, board):
    lines = sample_text().splitlines()
    lines[7] = lines[7].replace("2021-10-19 03:40:00.000000", "19/10/2021 3:40")  # visit 107
    before, version = db_state(), board()
    response = upload(manager_client, "visit", "\r\n".join(lines).encode(), layout=OLD_SYSTEM)
    text = problems(response)
    assert "1 row of the file has a problem: nothing was imported" in text
    assert "enterQueueTime: “19/10/2021 3:40” is not a time like 2021-10-19 02:05:07 (UTC)." in text
    [invalid] = response.context["result"].invalid_rows
    assert invalid.line == 8
    assert db_state() == before
    assert board() == version


def test_it_writes_nothing_when_a_row_fails_only_at_confirmation(manager_client, board):
    preview = upload(manager_client, "visit", SAMPLE.read_bytes(), layout=OLD_SYSTEM)
    # Between the preview and the confirmation, someone deletes the enquiry type that
    # the unrecognised enquiries were going to.
    EnquiryType.objects.filter(name="Other").delete()
    before, version = db_state(), board()
    response = confirm(manager_client, "visit", preview)
    text = problems(response)
    assert "Nothing was imported: the file has problems now." in text
    assert "“maths help” is not an enquiry type ResQ knows" in text
    assert db_state() == before
    assert board() == version


@pytest.mark.parametrize(
    ("values", "column", "message"),
    [
        ({"queue": "Maths"}, "queue", "“Maths” is not a team in ResQ (Librarian, STUDYSmarter)"),
        (
            {"status": "Done"},
            "status",
            "“Done” is not one of the old statuses: In Queue, In Session, Completed, Ended.",
        ),
        (
            {"exitSessionTime": ""},
            "exitSessionTime",
            "A “Completed” visit needs the time it ended.",
        ),
        (
            {"changeSessionTime": "2021-10-18 01:05:00"},
            "changeSessionTime",
            "The session starts before the student joined the queue",
        ),
        (
            {"studentNumber": "abc"},
            "studentNumber",
            "“abc” is not a student number (8 digits, e.g. 21234567)",
        ),
        (
            {"studentName": "=HYPERLINK()"},
            "studentName",
            "“=HYPERLINK()” is not a name ResQ accepts",
        ),
        ({"id": ""}, "id", "Every row needs the old system's id"),
        (
            {"enterQueueTime": "2021-10-18 2pm"},
            "enterQueueTime",
            "“2021-10-18 2pm” is not a time like 2021-10-19 02:05:07 (UTC).",
        ),
    ],
)
def test_it_says_why_a_row_of_the_old_file_fails(manager_client, values, column, message):
    content = old_file(old_row(id="1"), old_row(**values))
    response = upload(manager_client, "visit", content, layout=OLD_SYSTEM)
    text = problems(response)
    assert f"{column}: {message}" in text
    [invalid] = response.context["result"].invalid_rows
    assert invalid.line == 3
    assert not Visit.objects.exists()


def test_it_refuses_an_id_that_appears_twice_in_one_file(manager_client):
    rows = old_row(id="5"), old_row(id="6"), old_row(id="5", studentName="Cai Wu")
    response = upload(manager_client, "visit", old_file(*rows), layout=OLD_SYSTEM)
    text = problems(response)
    assert "id: “5” is already on line 2: each id may appear only once in a file." in text
    assert [row.line for row in response.context["result"].invalid_rows] == [4]
    assert not Visit.objects.exists()


# --- files that are not what they should be -------------------------------------------------


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (PNG, "This is a PNG image, not a CSV file."),
        (b"PK\x03\x04\x14\x00\x06\x00", "This is a zip archive (an Excel .xlsx workbook is one)"),
        (random.Random(4).randbytes(4096), "not"),
        (b"", "The submitted file is empty."),
        (b"\r\n\r\n", "The file is empty."),
        (HEADER.encode() + b"\r\n", "The file has a header line but no rows under it."),
        (b"Zo\x81 Ng,\x8d\r\n", "The file is neither UTF-8 nor Windows-1252 text."),
        (b'id,"unterminated\r\n1,2\r\n' + b"x" * 200_000, "cannot be read as CSV"),
        (b"id,id,queue\r\n1,2,3\r\n", "The column “id” appears twice in the header."),
        (
            b",".join(b"c%d" % n for n in range(30_000)) + b"\r\n" + b"1," * 30_000 + b"\r\n",
            "The header line has 30,000 columns; ResQ's files have at most 50.",
        ),
    ],
)
def test_it_refuses_a_file_that_is_not_a_csv_with_a_message(manager_client, content, message):
    response = upload(manager_client, "visit", content, layout=OLD_SYSTEM, name="history.csv")
    assert response.status_code == 200
    assert "confirm_form" not in response.context
    errors = response.context["form"].errors["import_file"]
    assert any(message in error for error in errors), errors
    # Still says which columns each layout has.
    assert [name for name, _ in response.context["fields_list"]] == [
        "ResQ visits (CSV, as exported)",
        "Old system (2021) CSV",
    ]
    assert not Visit.objects.exists()


def test_it_refuses_a_file_over_the_size_limit_before_reading_it(manager_client, settings):
    settings.RESQ_IMPORT_MAX_BYTES = 2048
    content = SAMPLE.read_bytes()
    assert len(content) > 2048
    response = upload(manager_client, "visit", content, layout=OLD_SYSTEM)
    assert "confirm_form" not in response.context
    assert "result" not in response.context  # not a row was read
    [error] = response.context["form"].errors["import_file"]
    assert " ".join(error.split()) == (
        f"The file is {len(content) / 1024:.1f} KB; ResQ imports files up to 2.0 KB. "
        "Split it into smaller files (by date, say) and import each in turn."
    )
    assert not Visit.objects.exists()


def test_it_names_the_missing_and_unexpected_columns(manager_client):
    content = (
        b"id,name,studentNumber,unitCode,enquiry,queue,status,enterQueueTime\r\n1,Zo,1,,,,,\r\n"
    )
    text = problems(upload(manager_client, "visit", content, layout=OLD_SYSTEM))
    assert "This file cannot be imported" in text
    assert (
        "The columns do not match “Old system (2021) CSV”: missing “studentName”, "
        "“changeSessionTime”, “exitSessionTime”; not expected “name”." in text
    )
    assert "Its header line is: " + HEADER in text
    assert not Visit.objects.exists()


def test_it_suggests_the_other_layout_when_the_columns_are_its(manager_client):
    text = problems(upload(manager_client, "visit", SAMPLE.read_bytes(), layout=RESQ))
    assert (
        "This file has the columns of “Old system (2021) CSV”, not of “ResQ visits (CSV, as "
        "exported)”: choose that layout and upload it again." in text
    )
    assert not Visit.objects.exists()


def test_it_reads_headers_in_any_case_and_order(manager_client):
    reader = list(csv.reader(io.StringIO(sample_text())))
    order = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([reader[0][i].upper() for i in order])
    for row in reader[1:]:
        writer.writerow([row[i] for i in order])
    response = import_file(manager_client, "visit", out.getvalue().encode(), layout=OLD_SYSTEM)
    assert response.status_code == 302
    assert visit("101").arrived_at == utc(2021, 10, 18, 2, 5, 7, 123456)


@pytest.mark.parametrize(
    ("encoding", "notice"),
    [
        ("utf-8-sig", None),
        ("utf-16", "The file is UTF-16 text"),
        ("cp1252", "read as Windows-1252"),
        ("latin-1", "read as Windows-1252"),
    ],
)
def test_it_reads_the_encodings_spreadsheets_save(manager_client, encoding, notice):
    preview = upload(manager_client, "visit", sample_text().encode(encoding), layout=OLD_SYSTEM)
    text = page_text(preview)
    if notice:
        assert notice in text
    else:
        assert "Windows-1252" not in text
    response = confirm(manager_client, "visit", preview)
    assert response.status_code == 302
    assert visit("101").student_name == "Zoë Ng"
    assert Visit.objects.count() == 20


def test_it_skips_blank_lines_and_keeps_line_numbers_true(manager_client):
    lines = sample_text().splitlines()
    lines[3:3] = ["", ",,,,,,,,,", "   "]
    lines.append("")
    response = import_file(manager_client, "visit", "\r\n".join(lines).encode(), layout=OLD_SYSTEM)
    assert response.status_code == 302
    assert Visit.objects.count() == 20

    lines[-1] = "999,Bo Li,22345679,,Essay,Librarian,Ended,yesterday,,"
    response = upload(manager_client, "visit", "\r\n".join(lines).encode(), layout=OLD_SYSTEM)
    [invalid] = response.context["result"].invalid_rows
    assert invalid.line == len(lines)


def test_it_says_a_comma_inside_a_value_needs_quotes(manager_client):
    row = old_row(studentName="Ng, Zoë")
    text = problems(upload(manager_client, "visit", old_file(row), layout=OLD_SYSTEM))
    assert "This line has 11 values but the header has 10 columns." in text
    assert "needs double quotes around it" in text
    quoted = old_row(studentName='"Ng, Zoë"')
    response = upload(manager_client, "visit", old_file(quoted), layout=OLD_SYSTEM)
    assert "“Ng, Zoë” is not a name" not in page_text(response)


def test_it_previews_a_hundred_thousand_rows_in_a_fixed_number_of_queries(
    manager_client, django_assert_max_num_queries, settings
):
    settings.RESQ_IMPORT_MAX_BYTES = 20 * 1024 * 1024  # the default takes a year's history
    start = datetime(2021, 3, 1, 2, 0)  # noqa: DTZ001 - the old system's naive UTC
    statuses = ["Completed", "Ended", "In Queue", "In Session"]
    rows = []
    for n in range(100_000):
        arrived = start + timedelta(minutes=n)
        began, left = arrived + timedelta(minutes=5), arrived + timedelta(minutes=25)
        status = statuses[n % 4]
        times = [f"{moment:%Y-%m-%d %H:%M:%S.%f}" for moment in (arrived, began, left)]
        if status == "In Session":
            times[2] = ""
        enquiry = "maths help" if n % 5 == 0 else "Essay"
        team = "Librarian" if n % 3 else "STUDYSmarter"
        # Seven-digit numbers: each lost its leading zero.
        name, number = f"Student {chr(65 + n % 26)}", 2100000 + n
        rows.append(f"{n},{name},{number},CITS3200,{enquiry},{team},{status},{','.join(times)}")
    # Batches of lookups and inserts, never a query per row.
    with django_assert_max_num_queries(400):
        response = upload(manager_client, "visit", old_file(*rows), layout=OLD_SYSTEM)
    result = response.context["result"]
    assert result.totals["new"] == 100_000
    assert len(result.preview_rows) == 100 and result.rows_not_shown == 99_900
    assert not result.has_errors(), [e.error for e in result.base_errors]
    assert "and 99900 more, not shown here" in response.text
    assert "Leading zeros restored to 100000 student numbers" in response.text
    assert not Visit.objects.exists()


# --- ResQ's own visits ---------------------------------------------------------------------


@pytest.fixture
def closed_visits(leader):
    arrived = datetime(2026, 3, 2, 2, 15, 30, 123456, tzinfo=UTC)
    return [
        VisitFactory(
            student_name="Zoë Ng",
            student_number="01234567",
            arrived_at=arrived,
            started_at=arrived + timedelta(minutes=12, seconds=1, microseconds=5),
            started_by=leader,
            ended_at=arrived + timedelta(minutes=40),
            ended_by=leader,
            status=Visit.Status.FINISHED,
            outcome=Visit.Outcome.FINISHED,
        ),
        VisitFactory(
            student_name="Bo Li",
            unit_code="",
            team=Team.objects.get(slug="librarian"),
            arrived_at=arrived + timedelta(hours=20),  # the next day in Perth
            ended_at=arrived + timedelta(hours=20, minutes=3),
            status=Visit.Status.REMOVED,
            outcome=Visit.Outcome.NO_SHOW,
        ),
    ]


@pytest.fixture
def exporting_manager(manager):
    """A manager who also holds the permission to export visits (names and numbers)."""
    manager.user_permissions.add(
        Permission.objects.get(content_type__app_label="queueing", codename="export_visits")
    )
    return manager


def test_it_refuses_visit_export_to_a_manager_without_the_export_permission(
    manager_client, closed_visits
):
    changelist = manager_client.get(reverse("admin:queueing_visit_changelist"))
    assert reverse("admin:queueing_visit_import") in changelist.text
    assert reverse("admin:queueing_visit_export") not in changelist.text
    assert manager_client.get(reverse("admin:queueing_visit_export")).status_code == 403


def test_it_exports_visits_for_managers(manager_client, exporting_manager, closed_visits):
    rows = list(csv.DictReader(io.StringIO(export(manager_client, "visit").decode())))
    assert len(rows) == 2
    zoe = next(row for row in rows if row["student_name"] == "Zoë Ng")
    assert zoe["student_number"] == "01234567"
    assert zoe["team"] == "STUDYSmarter" and zoe["enquiry_type"] == "Essay"
    assert zoe["arrived_at"] == "2026-03-02T10:15:30.123456+08:00"
    assert (zoe["status"], zoe["outcome"], zoe["source_ref"]) == ("finished", "finished", "")


def test_it_changes_nothing_when_an_export_comes_back_unchanged(
    manager_client, exporting_manager, closed_visits, board
):
    VisitFactory(student_name="Still Waiting")
    content = export(manager_client, "visit")
    before, version = db_state(), board()
    preview = upload(manager_client, "visit", content, layout=RESQ)
    assert "Nothing in this file would change anything in ResQ." in page_text(preview)
    assert preview.context["result"].totals["skip"] == 3
    assert confirm(manager_client, "visit", preview).status_code == 302
    assert db_state() == before
    assert board() == version


def test_it_corrects_visits_from_an_edited_export(
    manager_client, manager, exporting_manager, closed_visits, board
):
    rows = list(csv.DictReader(io.StringIO(export(manager_client, "visit").decode())))
    edited = next(row for row in rows if row["student_name"] == "Bo Li")
    edited.update(unit_code="cits 3001", enquiry_type="grammar", outcome="Left before being seen")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    version = board()
    preview = upload(manager_client, "visit", out.getvalue().encode(), layout=RESQ)
    text = page_text(preview)
    assert "unit_code: — → CITS3001" in text
    assert "outcome: no_show → cancelled" in text
    response = confirm(manager_client, "visit", preview)
    assert response.status_code == 302
    bo = Visit.objects.get(student_name="Bo Li")
    assert (bo.unit_code, bo.enquiry_type.name, bo.outcome) == ("CITS3001", "Grammar", "cancelled")
    event = VisitEvent.objects.get(visit=bo)
    assert (event.action, event.by, event.from_status, event.to_status) == (
        "corrected",
        manager,
        "removed",
        "removed",
    )
    assert event.detail == {
        "unit_code": ["", "CITS3001"],
        "enquiry_type": [EnquiryType.objects.get(name="Essay").pk, bo.enquiry_type_id],
        "outcome": ["no_show", "cancelled"],
    }
    assert VisitEvent.objects.count() == 1
    assert board() == version + 1


def test_it_clears_who_started_a_session_with_its_start(
    manager_client, closed_visits, exporting_manager
):
    rows = list(csv.DictReader(io.StringIO(export(manager_client, "visit").decode())))
    zoe = next(row for row in rows if row["student_name"] == "Zoë Ng")
    zoe.update(status="removed", outcome="cancelled", started_at="")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerow(zoe)
    assert import_file(manager_client, "visit", out.getvalue().encode()).status_code == 302
    visit = Visit.objects.get(student_name="Zoë Ng")
    assert (visit.status, visit.started_at, visit.started_by) == ("removed", None, None)
    assert visit.ended_by is not None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status": "waiting"}, "is finished in ResQ and this row would change “status”"),
        ({"status": "removed"}, "A removed visit needs a reason"),
        ({"ended_at": "2026-03-02T10:00:00+08:00"}, "A visit cannot end before it started."),
        ({"team": "Maths"}, "team: “Maths” is not a team"),
        ({"student_number": "abc123"}, "Enter the Student Number as 8 digits"),
        ({"arrived_at": "2 March"}, "arrived_at: “2 March” is not a time like"),
        ({"id": "999999"}, "There is no visit 999999 in ResQ."),
    ],
)
def test_it_refuses_a_correction_that_does_not_fit(
    manager_client, closed_visits, board, changes, message, exporting_manager
):
    rows = list(csv.DictReader(io.StringIO(export(manager_client, "visit").decode())))
    zoe = next(row for row in rows if row["student_name"] == "Zoë Ng")
    zoe.update(changes)
    if changes.get("status") == "removed":
        zoe["outcome"] = "finished"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    before, version = db_state(), board()
    text = problems(upload(manager_client, "visit", out.getvalue().encode(), layout=RESQ))
    assert message in text
    assert db_state() == before
    assert board() == version


def test_it_leaves_a_visit_open_on_the_desk_to_the_desk(
    manager_client, closed_visits, exporting_manager
):
    VisitFactory(student_name="Still Waiting")
    rows = list(csv.DictReader(io.StringIO(export(manager_client, "visit").decode())))
    waiting = next(row for row in rows if row["student_name"] == "Still Waiting")
    waiting["unit_code"] = "CITS1001"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    text = problems(upload(manager_client, "visit", out.getvalue().encode(), layout=RESQ))
    assert "is waiting in ResQ and this row would change “unit_code”" in text
    assert "is changed on the desk" in text
    assert Visit.objects.get(student_name="Still Waiting").unit_code == "CITS3200"


# --- teams and enquiry types -----------------------------------------------------------------


def test_it_round_trips_the_teams_without_changing_them(manager_client, board):
    content = export(manager_client, "team")
    assert content.decode().splitlines()[0] == (
        "name,slug,available_label,display_order,is_active,available_staff"
    )
    before, version = db_state(), board()
    preview = upload(manager_client, "team", content)
    assert preview.context["result"].totals["skip"] == 2
    assert confirm(manager_client, "team", preview).status_code == 302
    assert db_state() == before
    assert board() == version


def test_it_adds_and_changes_teams_from_a_file(manager_client, board):
    version = board()
    content = (
        b"name,slug,available_label,display_order,is_active\r\n"
        b"Librarian,librarian,Librarians on duty,2,yes\r\n"
        b"Maths,maths,Maths tutors available,3,yes\r\n"
    )
    assert import_file(manager_client, "team", content).status_code == 302
    assert Team.objects.get(slug="librarian").available_label == "Librarians on duty"
    maths = Team.objects.get(slug="maths")
    assert (maths.name, maths.display_order, maths.is_active, maths.available_staff) == (
        "Maths",
        3,
        True,
        0,
    )
    assert board() == version + 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("STUDYSmarter,maths,,3,yes", "Team with this Name already exists."),
        ("Maths,maths,,-1,yes", "Ensure this value is greater than or equal to 0."),
        ("Maths,maths,,3,maybe", "“maybe” is not yes or no."),
        ("Maths,maths,,three,yes", "“three” is not a whole number."),
        ("Maths,maths,,3,yes,-1", "Staff available cannot be negative."),
        ("Maths,maths,,3,yes,4", "It is counted on the desk"),
        ("Maths,Not a slug!,,3,yes", "Enter a valid “slug”"),
        ("STUDYSmarter,studysmarter,,1,no", "STUDYSmarter has 1 student waiting or in a session."),
        ("Maths,librarian,,3,yes", "“librarian” is already on line 2"),
    ],
)
def test_it_says_why_a_team_row_fails(manager_client, board, row, message):
    VisitFactory()
    content = (
        "name,slug,available_label,display_order,is_active,available_staff\r\n"
        "Librarian,librarian,Librarians Available,2,yes,0\r\n" + row + "\r\n"
    ).encode()
    before, version = db_state(), board()
    response = upload(manager_client, "team", content)
    text = problems(response)
    assert message in text
    assert [invalid.line for invalid in response.context["result"].invalid_rows] == [3]
    assert db_state() == before
    assert list(Team.objects.values_list("slug", flat=True)) == ["studysmarter", "librarian"]
    assert board() == version


def test_it_imports_enquiry_types_keyed_on_their_name(manager_client):
    content = export(manager_client, "enquirytype").decode()
    assert content.splitlines()[:2] == ["name,display_order,is_active", "Essay,1,yes"]
    content = content.replace("EndNote,12,yes", "EndNote,12,no") + "Statistics,14,yes\r\n"
    assert import_file(manager_client, "enquirytype", content.encode()).status_code == 302
    assert not EnquiryType.objects.get(name="EndNote").is_active
    assert EnquiryType.objects.get(name="Statistics").display_order == 14
    assert EnquiryType.objects.count() == 14


def test_it_exports_formula_like_names_as_text_and_reads_them_back(
    manager_client, exporting_manager, board
):
    EnquiryTypeFactory(name="=HYPERLINK(1)", display_order=20)
    content = export(manager_client, "enquirytype")
    assert "'=HYPERLINK(1),20,yes" in content.decode()
    before, version = db_state(), board()
    preview = upload(manager_client, "enquirytype", content)
    assert preview.context["result"].totals["skip"] == 14
    confirm(manager_client, "enquirytype", preview)
    assert db_state() == before and board() == version
    assert EnquiryType.objects.filter(name="=HYPERLINK(1)").exists()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["essay,20,yes"], "“essay” differs from the existing “Essay” only in case"),
        (["Statistics,20,yes", "Statistics,21,yes"], "“Statistics” is already on line 2"),
        (["Statistics,-2,yes"], "Ensure this value is greater than or equal to 0."),
        ([",20,yes"], "This field cannot be blank."),
    ],
)
def test_it_says_why_an_enquiry_type_row_fails(manager_client, rows, message):
    EnquiryTypeFactory(name="Unused")
    content = "\r\n".join(["name,display_order,is_active", *rows, ""]).encode()
    text = problems(upload(manager_client, "enquirytype", content))
    assert message in text
    assert EnquiryType.objects.count() == 14


# --- who may import and export -----------------------------------------------------------------


MODELS = ["visit", "team", "enquirytype"]


@pytest.mark.parametrize("model", MODELS)
def test_it_offers_import_and_export_to_managers(manager_client, exporting_manager, model):
    response = manager_client.get(reverse(f"admin:queueing_{model}_changelist"))
    assert response.status_code == 200
    assert reverse(f"admin:queueing_{model}_import") in response.text
    assert reverse(f"admin:queueing_{model}_export") in response.text
    assert manager_client.get(reverse(f"admin:queueing_{model}_import")).status_code == 200
    assert manager_client.get(reverse(f"admin:queueing_{model}_export")).status_code == 200


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("role", ["coordinator", "leader"])
def test_it_refuses_import_and_export_to_staff_who_are_not_managers(client, request, model, role):
    user = request.getfixturevalue(role)
    user.is_staff = True
    user.save()
    client.force_login(user)
    pass_two_factor(client, user)
    changelist = client.get(reverse(f"admin:queueing_{model}_changelist"))
    if role == "coordinator":  # reads the lists, without the buttons
        assert changelist.status_code == 200
    assert reverse(f"admin:queueing_{model}_import") not in changelist.text
    assert reverse(f"admin:queueing_{model}_export") not in changelist.text
    assert client.get(reverse(f"admin:queueing_{model}_import")).status_code == 403
    assert upload(client, model, SAMPLE.read_bytes(), layout="0").status_code == 403
    process = client.post(
        reverse(f"admin:queueing_{model}_process_import"),
        {"import_file_name": "x", "original_file_name": "x.csv", "format": "0"},
    )
    assert process.status_code == 403
    assert client.get(reverse(f"admin:queueing_{model}_export")).status_code == 403
    assert (
        client.post(reverse(f"admin:queueing_{model}_export"), {"format": "0"}).status_code == 403
    )
    assert not Visit.objects.exists()


@pytest.mark.parametrize("model", MODELS)
def test_it_sends_anonymous_users_to_log_in(client, model):
    response = client.get(reverse(f"admin:queueing_{model}_import"))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_it_confirms_only_by_post(manager_client):
    response = manager_client.get(reverse("admin:queueing_visit_process_import"))
    assert response.status_code == 405


def test_it_says_so_when_the_uploaded_file_is_gone(manager_client):
    preview = upload(manager_client, "visit", SAMPLE.read_bytes(), layout=OLD_SYSTEM)
    confirm(manager_client, "visit", preview)
    response = confirm(manager_client, "visit", preview)  # the same confirmation again
    assert response.status_code == 302
    page = manager_client.get(response["Location"])
    assert "The uploaded file is no longer on the server" in page.text
    assert Visit.objects.count() == 20


# --- the pages keep to the Content-Security-Policy ---------------------------------------------


class _InlineCode(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("inline <script>")
        self.found += [f"{tag} {name}" for name in names if name.startswith("on")]
        if "style" in names:
            self.found.append(f"{tag} style")
        if tag == "style":
            self.found.append("<style>")


@pytest.mark.parametrize(
    "page",
    ["import form", "preview", "problems", "export form", "teams preview"],
)
def test_it_keeps_the_import_pages_free_of_inline_code(manager_client, page):
    match page:
        case "import form":
            response = manager_client.get(reverse("admin:queueing_visit_import"))
        case "preview":
            response = upload(manager_client, "visit", SAMPLE.read_bytes(), layout=OLD_SYSTEM)
        case "problems":
            response = upload(manager_client, "visit", old_file("1,Zo,1,,,,,,,"), layout=OLD_SYSTEM)
        case "export form":
            response = manager_client.get(reverse("admin:queueing_team_export"))
        case _:
            content = "name,slug,available_label,display_order,is_active\r\nMaths,maths,,3,yes\r\n"
            response = upload(manager_client, "team", content.encode())
    assert response.status_code == 200
    parser = _InlineCode()
    parser.feed(response.text)
    assert parser.found == []
    assert "script-src 'self'" in response["Content-Security-Policy"]
