"""Admin import and export as CSV (django-import-export).

Admin imports three layouts: the old system's 2021 export as it is (its rows mapped by
`import_legacy`), and the teams and enquiry types lists that Export writes. Visits are
exported as the visit list shows them; a visit is corrected in admin's visit form, not
by importing that file (docs/decisions/0010-old-history-in-visit-corrections-in-the-form.md).

Every import runs twice: a dry run for the preview, in a transaction rolled back, and
the real one when the manager confirms, in one transaction for the whole file
(IMPORT_EXPORT_USE_TRANSACTIONS). The library runs the rows; ResQ reads the file
itself (`CSVUpload`), so that a wrong file is named in words and every message gives
the file's own line numbers.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from datetime import datetime
from typing import Any

import tablib
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.translation import ngettext
from import_export import resources, widgets
from import_export.fields import Field
from import_export.formats import base_formats
from import_export.instance_loaders import CachedInstanceLoader
from import_export.resources import Diff
from import_export.results import Result, RowResult

from . import import_legacy
from .import_legacy import Lookups, match_key
from .models import Board, EnquiryType, Team, Visit, VisitEvent

#: Rows of the old file shown in the preview; the counts above it cover the whole file.
PREVIEW_ROWS = 100
#: Rows per insert: few queries, and well under PostgreSQL's 65,535 parameters per
#: statement (a visit has 16 columns).
BULK_BATCH = 2000
LOCAL_FORMAT = "D j M Y, H:i"


class ImportFileError(ValueError):
    """A file that cannot be imported at all; the message is for the manager."""


# --- reading the upload ----------------------------------------------------------------

#: What managers upload by mistake, by the bytes such files start with.
NOT_CSV = [
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook is one)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) or Word document"),
]
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: Columns a header may have: ResQ's widest layout has 10. Checked before any row is
#: read, since every row is padded to the header's width (a 200 KB file with 30,000
#: columns took half a gigabyte and six seconds to refuse).
MAX_COLUMNS = 50
SAVE_AS_CSV = "Save it from the spreadsheet as “CSV UTF-8 (comma delimited)” and upload that."


class UploadedRows(tablib.Dataset):
    """The rows of an uploaded CSV and what an import needs to speak about them."""

    def __init__(self) -> None:
        super().__init__()
        #: The file's line on which each row starts: blank lines are skipped, and a
        #: quoted value can span lines, so row numbers alone would not match the file.
        self.line_numbers: list[int] = []
        #: Rows with more values than the header has columns, by row number (1-based).
        self.row_problems: dict[int, str] = {}
        #: Said on the preview page, e.g. which encoding the file was read with.
        self.notices: list[str] = []


def decode_upload(data: bytes) -> tuple[str, str | None]:
    """The text of an uploaded file and, if it was not UTF-8, a notice saying how it
    was read. UTF-8 (with or without the BOM Excel writes) is what ResQ asks for;
    UTF-16 with a BOM and Windows-1252 (what older Excel saves as "CSV") are read too,
    since a name like "Zoë" survives both."""
    if not data.strip():
        raise ImportFileError("The file is empty.")
    for signature, what in NOT_CSV:
        if data.startswith(signature):
            raise ImportFileError(f"This is {what}, not a CSV file. {SAVE_AS_CSV}")
    notice = None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise ImportFileError(f"The file is not readable UTF-16 text. {SAVE_AS_CSV}") from error
        notice = "The file is UTF-16 text; it was read as such."
    elif b"\x00" in data:
        raise ImportFileError(f"This is not a text file (it holds binary data). {SAVE_AS_CSV}")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError as error:
                raise ImportFileError(
                    f"The file is neither UTF-8 nor Windows-1252 text. {SAVE_AS_CSV}"
                ) from error
            notice = (
                "The file is not UTF-8, so it was read as Windows-1252 (Western European, "
                "what older Excel saves as CSV). Check names with accents in the preview "
                "before you confirm."
            )
    control = CONTROL_CHARACTERS.search(text)
    if control:
        line = text.count("\n", 0, control.start()) + 1
        raise ImportFileError(
            f"Line {line} holds a control character, which a CSV export never does: this "
            f"is not the CSV it should be. {SAVE_AS_CSV}"
        )
    return text, notice


def parse_csv(text: str) -> UploadedRows:
    """Rows under the header line, skipping blank lines; a row with more values than
    the header has columns is noted (an unquoted comma, usually), not a crash."""
    rows = UploadedRows()
    # newline="": lines end in \r\n, \n or \r (old Macs), and quoted values keep theirs.
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    end_of_last = 0
    try:
        for record in reader:
            first_line, end_of_last = end_of_last + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                if len(record) > MAX_COLUMNS:
                    raise ImportFileError(
                        f"The header line has {len(record):,} columns; ResQ's files have at "
                        f"most {MAX_COLUMNS}. Is this the right file? {SAVE_AS_CSV}"
                    )
                header = [cell.strip() for cell in record]
                _check_header(header, first_line)
                rows.headers = header
                continue
            width = len(header)
            if len(record) > width and any(cell.strip() for cell in record[width:]):
                rows.row_problems[len(rows) + 1] = (
                    f"This line has {len(record)} values but the header has {width} columns. "
                    "A value with a comma in it needs double quotes around it."
                )
            rows.append((record + [""] * width)[:width])
            rows.line_numbers.append(first_line)
    except csv.Error as error:
        raise ImportFileError(
            f"Line {reader.line_num} cannot be read as CSV ({error}). {SAVE_AS_CSV}"
        ) from error
    if header is None:
        raise ImportFileError("The file has no header line: the first line names the columns.")
    if not len(rows):
        raise ImportFileError("The file has a header line but no rows under it.")
    return rows


def _check_header(header: list[str], line: int) -> None:
    seen: set[str] = set()
    for name in header:
        if not name:
            raise ImportFileError(f"Line {line}, the header, has a column without a name.")
        if name.casefold() in seen:
            raise ImportFileError(f"The column “{name}” appears twice in the header.")
        seen.add(name.casefold())


class CSVUpload(base_formats.CSV):
    """CSV, decoded and parsed by ResQ (see `decode_upload` and `parse_csv`).

    Declared binary so that django-import-export hands over the file's bytes as they
    are: decoding them is ours, because its own decoding fails on a Windows-1252
    file with a bare "UnicodeDecodeError encountered".
    """

    def is_binary(self) -> bool:
        return True

    def get_read_mode(self) -> str:
        return "rb"

    def create_dataset(self, in_stream: bytes, **kwargs: Any) -> UploadedRows:
        text, notice = decode_upload(in_stream)
        rows = parse_csv(text)
        if notice:
            rows.notices.append(notice)
        return rows


# --- what the preview shows ----------------------------------------------------------------


class ImportResult(Result):
    """The library's result, plus what the manager should know before confirming."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notes: list[str] = []
        #: (line, old column, value as written, what the desk would say of it)
        self.kept: list[tuple[int | None, str, str, str]] = []
        #: (line, why the row cannot be a visit, the row's values)
        self.left_out: list[tuple[int | None, list[str], tuple[str, ...]]] = []
        self.unknown_enquiries: list[tuple[str, int]] = []
        self.source_headers: list[str] = []

    def append_invalid_row(self, number: int, row: Any, validation_error: Any) -> None:
        super().append_invalid_row(number, row, validation_error)
        # What the file said, rather than the preview's columns.
        self.invalid_rows[-1].values = tuple(row.values())


class PlainDiff(Diff):
    """Before → after as text: the library's HTML diff styles its marks with inline
    style attributes, which the site's Content-Security-Policy refuses."""

    def as_html(self) -> list[str]:
        cells = []
        for before, after in zip(self.left, self.right, strict=False):
            if self.new or before == after:
                cells.append(str(after))
            else:
                cells.append(f"{before or '—'} → {after or '—'}")
        return cells


def local_time(value: datetime | None) -> str:
    """A time as managers read it in the admin and in import previews, on the service's clock."""
    return date_format(timezone.localtime(value), LOCAL_FORMAT) if value else ""


#: What makes a spreadsheet read a cell as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(value: Any) -> Any:
    """A cell a spreadsheet would run as a formula, with the apostrophe that makes it
    text; `formula_unescaped` takes it off again on import. Every CSV ResQ writes
    passes its text through this."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def formula_unescaped(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


# --- widgets -------------------------------------------------------------------------------


class LocalTimeWidget(widgets.Widget):
    """ISO 8601 in the service's time zone with its offset, to the microsecond."""

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return timezone.localtime(value).isoformat() if value else ""


class TextWidget(widgets.CharWidget):
    """Text as typed, without the spaces around it or doubled inside it."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> str:
        return " ".join(formula_unescaped(str(value if value is not None else "")).split())


class YesNoWidget(widgets.Widget):
    """Refuses what it does not understand, where the library's reads "yes" as False."""

    YES = {"1", "true", "yes", "y"}
    NO = {"0", "false", "no", "n"}

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> bool | None:
        text = str(value if value is not None else "").strip().casefold()
        if not text:
            return None
        if text in self.YES:
            return True
        if text in self.NO:
            return False
        raise ValueError(f"“{value}” is not yes or no.")

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "" if value is None else ("yes" if value else "no")


class WholeNumberWidget(widgets.Widget):
    """The library's reads "3.7" as 3 and fails on "three" with a decimal error."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> int | None:
        text = str(value if value is not None else "").strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"“{text}” is not a whole number.") from None

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "" if value is None else str(value)


class OldIdWidget(widgets.Widget):
    """The old system's id as the visit's source_ref (None if unusable), so that the
    library's CachedInstanceLoader finds the visits an earlier import brought across."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> str | None:
        return import_legacy.source_ref(str(value or ""))


# --- what every import shares ------------------------------------------------------------


class ResQResource(resources.ModelResource):
    """The header check, keys that may appear once in a file, the file's line numbers
    in every message, notes for the preview, formula-safe cells in every export, and
    one board bump for the whole import."""

    #: Columns a file must have (any order, any case); others are refused by name.
    required_columns: tuple[str, ...] = ()
    #: Columns a file may have: exported for reading, not imported.
    optional_columns: tuple[str, ...] = ()
    #: Columns whose values may appear only once in a file.
    key_columns: tuple[str, ...] = ()

    class Meta:
        # The rows a file names, read in one query rather than one per row.
        instance_loader_class = CachedInstanceLoader

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset: Any = None
        self.user_id: int | None = None
        self.file_name = ""
        #: Per key column, the row number where each value was first seen.
        self.seen_keys: dict[str, dict[str, int]] = {column: {} for column in self.key_columns}

    @classmethod
    def get_result_class(cls) -> type[ImportResult]:
        return ImportResult

    @classmethod
    def get_diff_class(cls) -> type[Diff]:
        return PlainDiff

    def get_user_visible_fields(self) -> list[Field]:
        # What the import page lists: the columns a file needs.
        return [Field(column_name=name) for name in self.required_columns]

    def export_field(self, field: Field, instance: Any, **kwargs: Any) -> Any:
        # Names come from people: one starting "=" must reach a spreadsheet as text.
        return formula_safe(super().export_field(field, instance, **kwargs))

    def line(self, row_number: int) -> int | None:
        numbers = getattr(self.dataset, "line_numbers", None)
        if numbers is None:
            return row_number + 1
        return numbers[row_number - 1] if 0 < row_number <= len(numbers) else None

    def before_import(self, dataset: Any, **kwargs: Any) -> None:
        self.dataset = dataset
        # The request's user is a lazy object: resolved once here, not once per row.
        self.user_id = getattr(kwargs.get("user"), "pk", None)
        self.file_name = kwargs.get("file_name") or ""
        problem = self.header_problem(dataset)
        if problem:
            # Nothing to do row by row: every row would fail the same way.
            del dataset[:]
            raise ImportFileError(problem)

    def header_problem(self, dataset: Any) -> str | None:
        """Names the missing and unexpected columns; corrects the case of the rest."""
        known = {name.casefold(): name for name in self.required_columns + self.optional_columns}
        headers = [
            known.get(name.strip().casefold(), name.strip()) for name in dataset.headers or []
        ]
        missing = [name for name in self.required_columns if name not in headers]
        unexpected = [name for name in headers if name.casefold() not in known]
        if not missing and not unexpected:
            dataset.headers = headers
            return None
        parts = []
        if missing:
            parts.append(f"missing {_names(missing)}")
        if unexpected:
            parts.append(f"not expected {_names(unexpected)}")
        return (
            f"The columns do not match “{self.get_display_name()}”: {'; '.join(parts)}. "
            f"Its header line is: {','.join(self.required_columns)}"
        )

    def row_problem(self, row: dict[str, Any], number: int) -> dict[str, list[str]] | None:
        """Why a row cannot be read: more values than columns, or a key already on an
        earlier line."""
        problems = getattr(self.dataset, "row_problems", {})
        if number in problems:
            return {NON_FIELD_ERRORS: [problems[number]]}
        for column in self.key_columns:
            value = str(row.get(column) or "").strip()
            if not value:
                continue
            first = self.seen_keys[column].setdefault(value.casefold(), number)
            if first != number:
                return {
                    column: [
                        f"“{value}” is already on line {self.line(first)}: each "
                        f"{column} may appear only once in a file."
                    ]
                }
        return None

    def before_import_row(self, row: dict[str, Any], **kwargs: Any) -> None:
        problem = self.row_problem(row, kwargs["row_number"])
        if problem:
            raise ValidationError(problem)

    def after_import(self, dataset: Any, result: ImportResult, **kwargs: Any) -> None:
        # No super(): ModelResource resets the table's id sequence there to the highest
        # id this transaction sees, which could set it back under a desk's insert not
        # yet committed; none of ResQ's files sets ids.
        result.source_headers = list(dataset.headers or [])
        result.notes.extend(getattr(dataset, "notices", []))
        self.add_notes(result)
        for problem in (*result.invalid_rows, *result.error_rows):
            problem.line = self.line(problem.number)
        if result.totals[RowResult.IMPORT_TYPE_NEW] or result.totals[RowResult.IMPORT_TYPE_UPDATE]:
            # Team rows before the board, the order every writer keeps: PostgreSQL
            # checks the new rows' teams when this transaction commits, holding the
            # board by then, while a start on the desk holds its team and waits for the
            # board. Teams are few, and this is the import's last moment.
            list(
                Team.objects.select_for_update(no_key=True)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            # Open desks show teams, enquiry types and visits: one bump for the file.
            Board.bump()

    def add_notes(self, result: ImportResult) -> None:
        """What the preview should point out about the whole file."""


def _names(names: list[str]) -> str:
    return ", ".join(f"“{name}”" for name in names)


def _lines(lines: list[int | None], shown: int = 20) -> str:
    listed = ", ".join(str(line) for line in lines[:shown])
    if len(lines) > shown:
        listed += f" and {len(lines) - shown} more"
    return ngettext("line %(lines)s", "lines %(lines)s", len(lines)) % {"lines": listed}


# --- visits -------------------------------------------------------------------------------


class VisitResource(ResQResource):
    """ResQ's visits as the visit list exports them, times in the service's time zone.
    Not imported: a visit is corrected in its admin form."""

    id = Field("id", "id", widgets.IntegerWidget())
    student_name = Field("student_name", "student_name")
    student_number = Field("student_number", "student_number")
    unit_code = Field("unit_code", "unit_code")
    team = Field("team__name", "team")
    enquiry_type = Field("enquiry_type__name", "enquiry_type")
    status = Field("status", "status")
    outcome = Field("outcome", "outcome")
    arrived_at = Field("arrived_at", "arrived_at", LocalTimeWidget())
    started_at = Field("started_at", "started_at", LocalTimeWidget())
    ended_at = Field("ended_at", "ended_at", LocalTimeWidget())
    source_ref = Field("source_ref", "source_ref", readonly=True)

    class Meta:
        model = Visit
        name = "ResQ visits (CSV)"
        fields = ("id", *Visit.CORRECTABLE, "source_ref")

    def filter_export(self, queryset: QuerySet[Visit], **kwargs: Any) -> QuerySet[Visit]:
        return queryset.select_related("team", "enquiry_type")


class LegacyVisitResource(ResQResource):
    """The old system's CSV export, as it is (see `import_legacy`). Every row that can be
    a visit comes in; the others are left out and listed. A visit brought across before
    (same old id) is left as ResQ has it now: importing the file again adds nothing,
    and does not undo corrections made in ResQ since."""

    # The id finds the visits an earlier import brought across; import_instance maps
    # the rest of the row.
    source_ref = Field("source_ref", "id", OldIdWidget())

    required_columns = import_legacy.COLUMNS
    key_columns = ("id",)

    class Meta:
        model = Visit
        name = "Old system (2021) CSV"
        fields = ("source_ref",)
        import_id_fields = ("source_ref",)
        use_bulk = True
        batch_size = BULK_BATCH
        skip_diff = True
        report_skipped = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lookups: Lookups | None = None
        self.refusal: dict[str, list[str]] | None = None
        #: The row being imported: its visit, and what the mapping said about it.
        self.current: tuple[Visit, import_legacy.LegacyVisit] | None = None
        self.kept: list[tuple[int | None, str, str, str]] = []
        self.left_out: list[tuple[int | None, list[str], tuple[str, ...]]] = []
        #: Values cut to fit their column, whole, by source_ref: the "imported" event keeps them.
        self.cut: dict[str, dict[str, str]] = {}
        self.unknown_enquiries: Counter[str] = Counter()
        self.padded_numbers: list[str] = []
        self.closed_stale = 0
        self.previewed = 0

    def get_diff_headers(self) -> list[str]:
        return [
            "Old id",
            "Student Name",
            "Student Number",
            "Unit Code",
            "Team",
            "Enquiry Type",
            "Status",
            "Outcome",
            "Arrived (local)",
            "Session started (local)",
            "Ended (local)",
            "Notes",
        ]

    def header_problem(self, dataset: Any) -> str | None:
        headers = {name.strip().casefold() for name in dataset.headers or []}
        if {"id", *Visit.CORRECTABLE} <= headers:
            return (
                "This is ResQ's own visit export: ResQ imports only the old system's visits. "
                "To correct a visit, open it in admin's list of visits and save the correction."
            )
        return super().header_problem(dataset)

    def before_import(self, dataset: Any, **kwargs: Any) -> None:
        super().before_import(dataset, **kwargs)
        self.lookups = Lookups.load()

    def before_import_row(self, row: dict[str, Any], **kwargs: Any) -> None:
        # A row of the old file that cannot be read is left out, not a reason to refuse
        # the file: see import_instance.
        self.refusal = self.row_problem(row, kwargs["row_number"])

    def import_instance(self, instance: Visit, row: dict[str, Any], **kwargs: Any) -> None:
        line = self.line(kwargs["row_number"])
        mapped = None
        if self.refusal is None and instance.pk is None:
            assert self.lookups is not None  # noqa: S101 - set by before_import
            # A ValidationError here (ResQ has no "Other" enquiry type) refuses the file.
            mapped = import_legacy.map_legacy_row(row, self.lookups)
            self.refusal = mapped.refusals or None
        if self.refusal is not None:
            reasons = [
                message if column == NON_FIELD_ERRORS else f"{column}: {message}"
                for column, messages in self.refusal.items()
                for message in messages
            ]
            self.left_out.append((line, reasons, tuple(row.values())))
            return
        if mapped is None:
            return  # brought across by an earlier import: skip_row leaves it
        self.current = (instance, mapped)
        for name, value in mapped.values.items():
            setattr(instance, name, value)
        instance.added_by_id = self.user_id
        self.kept += [(line, *kept) for kept in mapped.kept]
        if mapped.cut:
            self.cut[instance.source_ref] = mapped.cut
        if mapped.unknown_enquiry is not None:
            self.unknown_enquiries[mapped.unknown_enquiry] += 1
        if mapped.padded_number:
            self.padded_numbers.append(
                f"{str(row.get('studentNumber')).strip()} → {instance.student_number}"
            )
        self.closed_stale += mapped.closed_stale

    def skip_row(
        self, instance: Visit, original: Any, row: Any, import_validation_errors: Any = None
    ) -> bool:
        # Left out, or already brought across; a row ResQ is not ready for is refused.
        return not import_validation_errors and (
            self.refusal is not None or instance.pk is not None
        )

    def after_import_row(self, row: Any, row_result: RowResult, **kwargs: Any) -> None:
        # Visits record their import in their own history and admin logs the file in
        # one line: thousands of kept instances would only take memory.
        row_result.instance = None
        if not row_result.is_new() or self.previewed >= PREVIEW_ROWS:
            return
        self.previewed += 1
        visit, mapped = self.current
        row_result.diff = [
            str(row.get("id") or "").strip(),
            visit.student_name,
            visit.student_number,
            visit.unit_code,
            visit.team.name,
            visit.enquiry_type.name,
            visit.get_status_display(),
            visit.get_outcome_display(),
            local_time(visit.arrived_at),
            local_time(visit.started_at),
            local_time(visit.ended_at),
            " ".join(mapped.notes),
        ]

    def bulk_create(
        self,
        using_transactions: bool,
        dry_run: bool,
        raise_errors: bool,
        batch_size: int | None = None,
        result: Any = None,
    ) -> None:
        visits, self.create_instances = self.create_instances, []
        if not visits:
            return
        try:
            # Its own savepoint: a refusal (another import of the same file committing
            # first, say) must leave the transaction usable for the message.
            with transaction.atomic():
                Visit.objects.bulk_create(visits, batch_size=batch_size)
                if not dry_run:
                    # The visits go in on the dry run too, so that the database's
                    # constraints check the preview; their events can hold nothing
                    # it could refuse.
                    VisitEvent.objects.bulk_create(
                        [
                            VisitEvent(
                                visit=visit,
                                action=VisitEvent.Action.IMPORTED,
                                from_status="",
                                to_status=visit.status,
                                by_id=self.user_id,
                                detail={
                                    "source_ref": visit.source_ref,
                                    "file": self.file_name,
                                    **self.cut.get(visit.source_ref, {}),
                                },
                            )
                            for visit in visits
                        ],
                        batch_size=batch_size,
                    )
        except DatabaseError as error:
            self.handle_import_error(
                result,
                ImportFileError(
                    f"The database refused the visits ({error}), so nothing was imported. "
                    "If someone else was importing the same file at the same time, wait "
                    "for them to finish, then try again: the visits they brought across "
                    "are left alone."
                ),
                raise_errors,
            )

    def add_notes(self, result: ImportResult) -> None:
        result.kept, result.left_out = self.kept, self.left_out
        notes = result.notes
        if already := result.totals[RowResult.IMPORT_TYPE_SKIP] - len(self.left_out):
            notes.append(f"Brought across by an earlier import, left as ResQ has them: {already}.")
        if self.left_out:
            lines = _lines([line for line, _, _ in self.left_out])
            notes.append(f"Rows that cannot be a visit, left out: {len(self.left_out)} ({lines}).")
        if self.kept:
            lines = _lines(sorted({line for line, *_ in self.kept}))
            notes.append(
                "Names, student numbers and unit codes the desk would refuse today, kept as "
                f"written: {len(self.kept)} ({lines})."
            )
        if self.unknown_enquiries:
            result.unknown_enquiries = [
                (text or "(empty)", count) for text, count in self.unknown_enquiries.most_common()
            ]
            listed = ", ".join(f"“{text}” ({n})" for text, n in result.unknown_enquiries[:10])
            more = len(result.unknown_enquiries) - 10
            notes.append(
                f"Not a known enquiry type, so filed under “{import_legacy.OTHER}”: {listed}"
                + (f" and {more} more." if more > 0 else ".")
            )
        if self.padded_numbers:
            notes.append(
                "Student numbers whose leading zeros a spreadsheet had dropped, restored: "
                f"{len(self.padded_numbers)} (e.g. {', '.join(self.padded_numbers[:3])})."
            )
        if self.closed_stale:
            notes.append(
                "Visits still “In Queue” or “In Session” in the old system, closed as out of "
                "time at the last time it recorded for them (nobody from 2021 is waiting "
                f"today): {self.closed_stale}."
            )


# --- teams and enquiry types ---------------------------------------------------------------


class TeamResource(ResQResource):
    """Teams keyed on their slug. Staff available is exported for reading: it is
    counted on the desk, whose history the utilisation reports read."""

    name = Field("name", "name", TextWidget())
    slug = Field("slug", "slug", TextWidget())
    available_label = Field("available_label", "available_label", TextWidget())
    display_order = Field("display_order", "display_order", WholeNumberWidget(), default=0)
    is_active = Field("is_active", "is_active", YesNoWidget(), default=True)
    available_staff = Field(
        "available_staff", "available_staff", WholeNumberWidget(), readonly=True
    )

    required_columns = ("name", "slug", "available_label", "display_order", "is_active")
    optional_columns = ("available_staff",)
    key_columns = ("slug", "name")

    class Meta:
        model = Team
        name = "Teams (CSV)"
        fields = (
            "name",
            "slug",
            "available_label",
            "display_order",
            "is_active",
            "available_staff",
        )
        import_id_fields = ("slug",)
        clean_model_instances = True
        skip_unchanged = True

    def import_instance(self, instance: Team, row: dict[str, Any], **kwargs: Any) -> None:
        was_active = instance.is_active if instance.pk else None
        errors: dict[str, Any] = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        staff = str(row.get("available_staff") or "").strip()
        if staff and staff != str(instance.available_staff):
            errors.setdefault("available_staff", []).append(
                ("Staff available cannot be negative. " if staff.startswith("-") else "")
                + f"It is counted on the desk, which keeps the history the reports read, so an "
                f"import leaves it as it is ({instance.available_staff} now): keep the exported "
                "value, leave it empty or remove the column."
            )
        if was_active and instance.is_active is False and "is_active" not in errors:
            problem = instance.deactivation_problem()
            if problem:
                errors["is_active"] = [problem]
        if errors:
            raise ValidationError(errors)


class EnquiryTypeResource(ResQResource):
    """Enquiry types keyed on their name (the old system's visits match them by it)."""

    name = Field("name", "name", TextWidget())
    display_order = Field("display_order", "display_order", WholeNumberWidget(), default=0)
    is_active = Field("is_active", "is_active", YesNoWidget(), default=True)

    required_columns = ("name", "display_order", "is_active")
    key_columns = ("name",)

    class Meta:
        model = EnquiryType
        name = "Enquiry types (CSV)"
        fields = ("name", "display_order", "is_active")
        import_id_fields = ("name",)
        clean_model_instances = True
        skip_unchanged = True

    def before_import(self, dataset: Any, **kwargs: Any) -> None:
        super().before_import(dataset, **kwargs)
        self.existing = {
            match_key(name): name for name in EnquiryType.objects.values_list("name", flat=True)
        }

    def import_instance(self, instance: EnquiryType, row: dict[str, Any], **kwargs: Any) -> None:
        super().import_instance(instance, row, **kwargs)
        if instance.pk is None:
            twin = self.existing.get(match_key(instance.name or ""))
            if twin is not None:
                raise ValidationError(
                    {
                        "name": f"“{instance.name}” differs from the existing “{twin}” only in "
                        "case, spaces or punctuation; the old system's enquiries could not tell "
                        f"them apart. Use “{twin}”."
                    }
                )
