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
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from import_export.instance_loaders import CachedInstanceLoader

from accounts.tests.helpers import pass_two_factor
from queueing.models import Board, EnquiryType, Team, Visit, VisitEvent
from queueing.tests.factories import EnquiryTypeFactory, VisitFactory, db_state
from reporting.metrics import Filter, visits_per_day
from resq.tests.test_xss import assert_csv_safe, assert_inert

pytestmark = pytest.mark.django_db


SAMPLE = Path(__file__).parent / "data" / "old_system_sample.csv"
HEADER = (
    "id,studentName,studentNumber,unitCode,enquiry,queue,status,"
    "enterQueueTime,changeSessionTime,exitSessionTime"
)


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


def upload(client, model: str, content: bytes, *, name: str = "file.csv"):
    return client.post(
        reverse(f"admin:queueing_{model}_import"),
        {
            "resource": "0",
            "format": "0",
            "import_file": SimpleUploadedFile(name, content, content_type="text/csv"),
        },
    )


def confirm(client, model: str, preview):
    assert "confirm_form" in preview.context, preview.text
    return client.post(
        reverse(f"admin:queueing_{model}_process_import"), preview.context["confirm_form"].initial
    )


def import_file(client, model: str, content: bytes):
    return confirm(client, model, upload(client, model, content))


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


def left_out(response) -> dict[int, str]:
    """The preview's rows left out, by line: why, as one text."""
    assert "confirm_form" in response.context, page_text(response)
    return {line: " ".join(reasons) for line, reasons, _ in response.context["result"].left_out}


@pytest.fixture
def board():
    Board.objects.get_or_create(pk=1)
    return Board.current_version


@pytest.fixture
def exporting_manager(manager):
    """A manager who also holds the permission to export visits (names and numbers)."""
    manager.user_permissions.add(
        Permission.objects.get(content_type__app_label="queueing", codename="export_visits")
    )
    return manager


def visit(ref: str) -> Visit:
    return Visit.objects.select_related("team", "enquiry_type").get(source_ref=f"legacy:{ref}")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- the old system's file ---------------------------------------------------------------------


def test_it_previews_the_old_systems_file_without_writing_anything(manager_client, board):
    before, version = db_state(), board()
    response = upload(manager_client, "visit", SAMPLE.read_bytes())
    assert response.status_code == 200
    result = response.context["result"]
    assert not result.has_errors() and not result.has_validation_errors()
    assert result.totals["new"] == 20
    assert (result.kept, result.left_out) == ([], [])
    text = page_text(response)
    assert "Preview: nothing has been imported yet" in text
    assert "Enquiries not recognised: filed under “Other”" in text
    assert result.unknown_enquiries == [("maths help", 2), ("stats", 1)]
    assert (
        "Student numbers whose leading zeros a spreadsheet had dropped, restored: 2 "
        "(e.g. 1234567 → 01234567, 2345678 → 02345678)." in text
    )
    assert "closed as out of time at the last time it recorded for them" in text
    assert "(nobody from 2021 is waiting today): 3." in text
    # The rows as ResQ will store them, times in Perth.
    assert "Zoë Ng" in text and "Mon 18 Oct 2021, 10:05" in text
    assert "Wed 20 Oct 2021, 01:30" in text  # 17:30 UTC on the 19th
    assert db_state() == before
    assert board() == version


def test_it_imports_the_old_systems_file_when_confirmed(manager_client, manager, board):
    version = board()
    response = import_file(manager_client, "visit", SAMPLE.read_bytes())
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
    import_file(manager_client, "visit", SAMPLE.read_bytes())
    page = manager_client.get(reverse("admin:queueing_visit_change", args=[visit("101").pk]))
    assert page.status_code == 200
    text = page_text(page)
    assert "Imported" in text and "Source reference: legacy:101" in text


def test_it_adds_nothing_when_the_same_file_comes_again(manager_client, board):
    import_file(manager_client, "visit", SAMPLE.read_bytes())
    before, version = db_state(), board()
    preview = upload(manager_client, "visit", SAMPLE.read_bytes())
    result = preview.context["result"]
    assert (result.totals["new"], result.totals["skip"]) == (0, 20)
    assert "Brought across by an earlier import, left as ResQ has them: 20." in page_text(preview)
    response = confirm(manager_client, "visit", preview)
    assert response.status_code == 302
    assert db_state() == before
    assert board() == version


def test_it_keeps_corrections_made_since_the_first_import(manager_client):
    import_file(manager_client, "visit", SAMPLE.read_bytes())
    Visit.objects.filter(source_ref="legacy:101").update(student_name="Zoë Ng-Smith")
    extra = old_row(id="121", studentName="Kai Moore", studentNumber="24000001")
    again = sample_text().rstrip("\r\n") + "\r\n" + extra + "\r\n"
    import_file(manager_client, "visit", again.encode())
    assert Visit.objects.count() == 21
    assert visit("101").student_name == "Zoë Ng-Smith"
    assert visit("121").student_name == "Kai Moore"


def test_it_counts_imported_visits_on_their_local_days(manager_client):
    import_file(manager_client, "visit", SAMPLE.read_bytes())
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


# --- what the old system accepted and today's desk would not ------------------------------------

#: Values the old desk took and today's would refuse, each on its own line of ODD_FILE.
ODD_NAMES = ['=HYPERLINK("http://x","y")', "+61 trick", "@SUM(A1)", "-2+3", "Zoë " + "x" * 196]
ODD_ROWS = [
    # Quoted as a spreadsheet writes a value with commas or quotes in it.
    *(
        old_row(id=str(n), studentName='"' + name.replace('"', '""') + '"')
        for n, name in enumerate(ODD_NAMES, start=1)
    ),
    old_row(id="6", unitCode="cits 3200 / 3201"),
    old_row(id="7", studentNumber="=A1+1"),
    old_row(id="8", studentName="<img src=x onerror=alert(1)>"),
    old_row(id="9", enterQueueTime=""),  # no arrival time: not a visit
    old_row(id="10", queue="Maths"),  # a team ResQ does not have: not a visit
]
ODD_FILE = old_file(*ODD_ROWS)


def test_it_keeps_what_the_desk_would_refuse_as_written_and_leaves_out_what_is_no_visit(
    manager_client, exporting_manager, board
):
    version = board()
    preview = upload(manager_client, "visit", ODD_FILE)

    result = preview.context["result"]
    assert (result.totals["new"], result.totals["skip"]) == (8, 2)
    kept = {(line, column): (value, why) for line, column, value, why in result.kept}
    assert {key: value for key, (value, _) in kept.items()} == {
        **{(line, "studentName"): name for line, name in enumerate(ODD_NAMES, start=2)},
        (7, "unitCode"): "cits 3200 / 3201",
        (8, "studentNumber"): "=A1+1",
        (9, "studentName"): "<img src=x onerror=alert(1)>",
    }
    assert "Student Name can hold letters" in kept[2, "studentName"][1]
    assert "Enter a Unit Code like CITS3200" in kept[7, "unitCode"][1]
    assert "Enter the Student Number as 8 digits" in kept[8, "studentNumber"][1]
    # Longer than the column: stored cut to fit, and said so.
    assert kept[6, "studentName"][1] == (
        "Longer than ResQ keeps: stored as its first 100 characters (the visit's history "
        "keeps it whole)."
    )
    assert "stored as its first 12 characters" in kept[7, "unitCode"][1]
    assert left_out(preview) == {
        10: "enterQueueTime: Every visit needs the time the student joined the queue.",
        11: "queue: “Maths” is not a team in ResQ (Librarian, STUDYSmarter). Add the team in "
        "admin, then import the file again: the visits already brought across are left alone.",
    }
    text = page_text(preview)
    assert "Kept as written" in text and "Left out: rows that cannot be a visit" in text
    assert "Rows that cannot be a visit, left out: 2 (lines 10, 11)." in text
    assert (
        "Names, student numbers and unit codes the desk would refuse today, kept as written: "
        "8 (lines 2, 3, 4, 5, 6, 7, 8, 9)." in text
    )
    assert_inert(preview.text, shows=(ODD_NAMES[0], "<img src=x onerror=alert(1)>"))
    assert not Visit.objects.exists()

    response = confirm(manager_client, "visit", preview)

    assert response.status_code == 302
    assert Visit.objects.count() == 8
    assert board() == version + 1
    for n, name in enumerate(ODD_NAMES[:4], start=1):
        assert visit(str(n)).student_name == name
    long_name = visit("5")
    assert long_name.student_name == ODD_NAMES[4][:100]
    assert VisitEvent.objects.get(visit=long_name).detail == {
        "source_ref": "legacy:5",
        "file": "file.csv",
        "student_name": ODD_NAMES[4],
    }
    assert (visit("6").unit_code, visit("7").student_number) == ("cits 3200 / ", "=A1+1")
    assert not Visit.objects.filter(source_ref__in=["legacy:9", "legacy:10"]).exists()
    assert LogEntry.objects.get().change_message == (
        "Imported file.csv: 8 new, 0 changed, 0 unchanged visits. 2 rows left out: not visits."
    )
    messages = page_text(manager_client.get(response["Location"]))
    assert "Rows that cannot be a visit, left out: 2 (lines 10, 11)." in messages

    # Inert wherever a manager reads them.
    changelist = manager_client.get(reverse("admin:queueing_visit_changelist"))
    change = manager_client.get(reverse("admin:queueing_visit_change", args=[visit("8").pk]))
    assert_inert(changelist.text, shows=(ODD_NAMES[0], "<img src=x onerror=alert(1)>"))
    assert_inert(change.text, shows=("<img src=x onerror=alert(1)>",))
    # And in the visit export, a spreadsheet runs none of them.
    content = export(manager_client, "visit").decode()
    assert_csv_safe(content)
    names = {row["student_name"] for row in csv.DictReader(io.StringIO(content))}
    assert {"'" + name for name in ODD_NAMES[:4]} <= names
    assert "'=A1+1" in content

    before = db_state()
    again = upload(manager_client, "visit", ODD_FILE)
    assert (again.context["result"].totals["new"], len(left_out(again))) == (0, 2)
    confirm(manager_client, "visit", again)
    assert db_state() == before


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ({"id": ""}, "id: Every row needs the old system's id"),
        ({"id": "7 8"}, "id: Every row needs the old system's id (no spaces)"),
        ({"enterQueueTime": ""}, "enterQueueTime: Every visit needs the time the student"),
        (
            {"enterQueueTime": "2021-10-18 2pm"},
            "enterQueueTime: “2021-10-18 2pm” is not a time like 2021-10-19 02:05:07 (UTC).",
        ),
        ({"queue": "Maths"}, "queue: “Maths” is not a team in ResQ (Librarian, STUDYSmarter)"),
        (
            {"status": "Done"},
            "status: “Done” is not one of the old statuses: In Queue, In Session, Completed, "
            "Ended.",
        ),
        ({"exitSessionTime": ""}, "exitSessionTime: A “Completed” visit needs the time it ended."),
        (
            {"status": "Ended", "changeSessionTime": "", "exitSessionTime": ""},
            "exitSessionTime: An “Ended” visit needs the time it ended.",
        ),
        (
            {"changeSessionTime": "2021-10-18 01:05:00"},
            "changeSessionTime: A session cannot start before the student arrived.",
        ),
        (
            {"exitSessionTime": "2021-10-18 02:01:00"},
            "exitSessionTime: A session cannot end before it started.",
        ),
        (
            {"exitSessionTime": "2099-01-01 00:00:00"},
            "exitSessionTime: A visit cannot end in the future",
        ),
    ],
)
def test_it_says_why_a_row_of_the_old_file_is_left_out(manager_client, values, why):
    content = old_file(old_row(id="1"), old_row(**{"id": "2", **values}), old_row(id="3"))
    preview = upload(manager_client, "visit", content)
    assert list(left_out(preview)) == [3]
    assert why in left_out(preview)[3]
    assert preview.context["result"].totals["new"] == 2
    confirm(manager_client, "visit", preview)
    assert sorted(Visit.objects.values_list("source_ref", flat=True)) == ["legacy:1", "legacy:3"]


def test_it_closes_a_session_whose_start_the_old_system_lost(manager_client):
    row = old_row(status="In Session", changeSessionTime="", exitSessionTime="")
    import_file(manager_client, "visit", old_file(row))
    closed = visit("7")
    assert (closed.status, closed.outcome, closed.started_at) == ("removed", "out_of_time", None)
    assert closed.ended_at == closed.arrived_at


def test_it_leaves_out_an_id_that_appears_twice_in_one_file(manager_client):
    rows = old_row(id="5"), old_row(id="6"), old_row(id="5", studentName="Cai Wu")
    preview = upload(manager_client, "visit", old_file(*rows))
    assert left_out(preview) == {
        4: "id: “5” is already on line 2: each id may appear only once in a file."
    }
    confirm(manager_client, "visit", preview)
    assert visit("5").student_name == "Zoë Ng"
    assert Visit.objects.count() == 2


def test_it_refuses_the_file_when_resq_has_no_other_enquiry_type(manager_client, board):
    EnquiryType.objects.filter(name="Other").delete()
    before, version = db_state(), board()
    response = upload(manager_client, "visit", SAMPLE.read_bytes())
    text = problems(response)
    assert "3 rows of the file have problems: nothing was imported" in text
    assert "enquiry: “maths help” is not an enquiry type ResQ knows" in text
    assert [row.line for row in response.context["result"].invalid_rows] == [6, 15, 18]
    assert db_state() == before and board() == version


def test_it_writes_nothing_when_a_row_fails_only_at_confirmation(manager_client, board):
    preview = upload(manager_client, "visit", SAMPLE.read_bytes())
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


def test_it_writes_nothing_when_another_import_brings_the_same_visits_first(
    manager_client, monkeypatch, board
):
    preview = upload(manager_client, "visit", SAMPLE.read_bytes())
    import_file(manager_client, "visit", SAMPLE.read_bytes())
    before, version = db_state(), board()
    # As if the other import committed after this one had looked for the old ids.
    monkeypatch.setattr(CachedInstanceLoader, "get_instance", lambda self, row: None)
    response = confirm(manager_client, "visit", preview)
    text = problems(response)
    assert "Nothing was imported: the file has problems now." in text
    assert "If someone else was importing the same file at the same time, wait" in text
    assert db_state() == before
    assert board() == version


def test_it_previews_and_imports_in_the_same_number_of_queries_whatever_the_length(
    manager_client,
):
    """No query per row: a file four times as long costs the same queries."""

    def rows(first: int, count: int) -> list[str]:
        every_kind = [
            {},
            {"studentNumber": "1234567", "enquiry": "maths help"},  # zeros, Other
            {"studentName": "=1+2", "unitCode": "n/a"},  # kept as written
            {"status": "In Queue", "changeSessionTime": "", "exitSessionTime": ""},
            {"queue": "Maths"},  # left out
        ]
        return [old_row(id=str(first + n), **every_kind[n % len(every_kind)]) for n in range(count)]

    import_file(manager_client, "visit", old_file(*rows(0, 5)))  # caches warm, as in use
    counts = []
    for first, count in ((1000, 50), (2000, 200)):
        with CaptureQueriesContext(connection) as preview_queries:
            preview = upload(manager_client, "visit", old_file(*rows(first, count)))
        with CaptureQueriesContext(connection) as import_queries:
            confirm(manager_client, "visit", preview)
        counts.append((len(preview_queries), len(import_queries)))
    assert Visit.objects.count() == 4 + 40 + 160
    assert counts[0] == counts[1]


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
        (b"id,,queue\r\n1,2,3\r\n", "Line 1, the header, has a column without a name."),
        (b"id,queue\r\n1,\x07\r\n", "Line 2 holds a control character"),
        (
            b",".join(b"c%d" % n for n in range(30_000)) + b"\r\n" + b"1," * 30_000 + b"\r\n",
            "The header line has 30,000 columns; ResQ's files have at most 50.",
        ),
    ],
)
def test_it_refuses_a_file_that_is_not_a_csv_with_a_message(manager_client, content, message):
    response = upload(manager_client, "visit", content, name="history.csv")
    assert response.status_code == 200
    assert "confirm_form" not in response.context
    errors = response.context["form"].errors["import_file"]
    assert any(message in error for error in errors), errors
    # Still says which columns the file needs.
    assert response.context["fields_list"] == [("Old system (2021) CSV", HEADER.split(","))]
    assert not Visit.objects.exists()


def test_it_refuses_a_file_over_the_size_limit_before_reading_it(manager_client, settings):
    settings.RESQ_IMPORT_MAX_BYTES = 2048
    content = SAMPLE.read_bytes()
    assert len(content) > 2048
    response = upload(manager_client, "visit", content)
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
    text = problems(upload(manager_client, "visit", content))
    assert "This file cannot be imported" in text
    assert (
        "The columns do not match “Old system (2021) CSV”: missing “studentName”, "
        "“changeSessionTime”, “exitSessionTime”; not expected “name”." in text
    )
    assert "Its header line is: " + HEADER in text
    assert not Visit.objects.exists()


def test_it_says_that_resqs_own_visit_export_is_not_imported(manager_client, exporting_manager):
    VisitFactory(student_name="Bo Li")
    before = db_state()
    text = problems(upload(manager_client, "visit", export(manager_client, "visit")))
    assert (
        "This is ResQ's own visit export: ResQ imports only the old system's visits. To "
        "correct a visit, open it in admin's list of visits and save the correction." in text
    )
    assert db_state() == before


def test_it_reads_headers_in_any_case_and_order(manager_client):
    reader = list(csv.reader(io.StringIO(sample_text())))
    order = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([reader[0][i].upper() for i in order])
    for row in reader[1:]:
        writer.writerow([row[i] for i in order])
    response = import_file(manager_client, "visit", out.getvalue().encode())
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
    preview = upload(manager_client, "visit", sample_text().encode(encoding))
    text = page_text(preview)
    if notice:
        assert notice in text
    else:
        assert "Windows-1252" not in text
    response = confirm(manager_client, "visit", preview)
    assert response.status_code == 302
    assert visit("101").student_name == "Zoë Ng"
    assert Visit.objects.count() == 20


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
def test_it_skips_blank_lines_and_keeps_line_numbers_true(manager_client, newline):
    lines = sample_text().splitlines()
    lines[3:3] = ["", ",,,,,,,,,", "   "]
    lines.insert(8, '999,"Bo\nLi",22345679,,Essay,Librarian,Ended,yesterday,,')  # two lines
    lines.append("998,Bo Li,22345679,,Essay,Librarian,Ended,yesterday,,")
    preview = upload(manager_client, "visit", newline.join(lines).encode())
    assert list(left_out(preview)) == [9, len(lines) + 1]
    response = confirm(manager_client, "visit", preview)
    assert response.status_code == 302
    assert Visit.objects.count() == 20


def test_it_says_a_comma_inside_a_value_needs_quotes(manager_client):
    row = old_row(id="8", studentName="Ng, Zoë")
    preview = upload(manager_client, "visit", old_file(old_row(), row))
    assert left_out(preview) == {
        3: "This line has 11 values but the header has 10 columns. A value with a comma in "
        "it needs double quotes around it."
    }
    quoted = old_row(studentName='"Ng, Zoë"')
    import_file(manager_client, "visit", old_file(quoted))
    assert visit("7").student_name == "Ng, Zoë"


# --- exporting visits ----------------------------------------------------------------------


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


def test_it_refuses_visit_export_to_a_manager_without_the_export_permission(
    manager_client, closed_visits
):
    changelist = manager_client.get(reverse("admin:queueing_visit_changelist"))
    assert reverse("admin:queueing_visit_import") in changelist.text
    assert reverse("admin:queueing_visit_export") not in changelist.text
    assert manager_client.get(reverse("admin:queueing_visit_export")).status_code == 403


def test_it_exports_visits_for_managers(manager_client, exporting_manager, closed_visits):
    content = export(manager_client, "visit").decode()
    assert content.splitlines()[0] == (
        "id,student_name,student_number,unit_code,team,enquiry_type,status,outcome,"
        "arrived_at,started_at,ended_at,source_ref"
    )
    rows = list(csv.DictReader(io.StringIO(content)))
    assert len(rows) == 2
    zoe = next(row for row in rows if row["student_name"] == "Zoë Ng")
    assert zoe["student_number"] == "01234567"
    assert zoe["team"] == "STUDYSmarter" and zoe["enquiry_type"] == "Essay"
    assert zoe["arrived_at"] == "2026-03-02T10:15:30.123456+08:00"
    assert (zoe["status"], zoe["outcome"], zoe["source_ref"]) == ("finished", "finished", "")


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
    assert upload(client, model, SAMPLE.read_bytes()).status_code == 403
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
    preview = upload(manager_client, "visit", SAMPLE.read_bytes())
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
    ["import form", "preview", "kept and left out", "problems", "export form", "teams preview"],
)
def test_it_keeps_the_import_pages_free_of_inline_code(manager_client, page):
    match page:
        case "import form":
            response = manager_client.get(reverse("admin:queueing_visit_import"))
        case "preview":
            response = upload(manager_client, "visit", SAMPLE.read_bytes())
        case "kept and left out":
            response = upload(manager_client, "visit", ODD_FILE)
        case "problems":
            response = upload(manager_client, "team", b"name,slug\r\nMaths,maths,x\r\n")
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
