"""Admin import and export of visits, teams and enquiry types (django-import-export).

Two layouts of visits can be imported: ResQ's own CSV (what the visit list exports;
re-importing it corrects the visits it names, and an unchanged file changes nothing)
and the old system's 2021 export as it is (`import_legacy`), which adds the visits it
has not brought across before. Teams and enquiry types import and export as plain
lists keyed on slug and name.

Every import runs twice through the same code: a dry run for the preview, inside a
transaction that is rolled back, and the real one when the manager confirms. Both are
one transaction for the whole file (IMPORT_EXPORT_USE_TRANSACTIONS): a row that fails
leaves nothing written. Files are read by `CSVUpload`, not by tablib, so that the
manager hears about a wrong file in words, with line numbers that match the file.
"""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from itertools import islice
from typing import Any

import tablib
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.translation import ngettext
from import_export import resources, widgets
from import_export.fields import Field
from import_export.formats import base_formats
from import_export.instance_loaders import BaseInstanceLoader
from import_export.resources import Diff
from import_export.results import Result, RowResult

from . import import_legacy
from .forms import UNIT_CODE_RE, clean_student_number, is_plausible_name
from .import_legacy import Lookups, match_key, restore_student_number
from .models import Board, EnquiryType, Team, Visit, VisitEvent

#: Rows shown in the preview; the counts above it cover the whole file.
PREVIEW_ROWS = 100
#: Rows with problems listed after a failed dry run; the count covers them all.
PROBLEM_ROWS = 200
#: Keys per query when reading the rows a file refers to (SQLite's historical limit
#: on query parameters is 999).
LOOKUP_BATCH = 900
#: Rows per insert or update: few queries, and well under PostgreSQL's 65,535
#: parameters per statement (a visit has 16 columns; an update uses two per field).
BULK_BATCH = 2000
UPDATE_BATCH = 500
LOCAL_FORMAT = "D j M Y, H:i"

OPEN_STATUSES = (Visit.Status.WAITING, Visit.Status.IN_SESSION)


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
#: Columns a header may have: ResQ's widest layout has 12. Checked before any row is
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
        #: Rows that are not well formed, by row number (1-based): a row error each.
        self.row_problems: dict[int, str] = {}
        #: Said on the preview page, e.g. which encoding the file was read with.
        self.notices: list[str] = []

    def line(self, row_number: int) -> int | None:
        if 0 < row_number <= len(self.line_numbers):
            return self.line_numbers[row_number - 1]
        return None


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
    the header has columns is a row error (an unquoted comma, usually), not a crash."""
    rows = UploadedRows()
    if "\n" not in text:
        text = text.replace("\r", "\n")  # old Mac line endings
    reader = csv.reader(_lines(text))
    header: list[str] | None = None
    end_of_last = 0
    # Most cells repeat (teams, statuses, enquiries): one string object for each.
    same: dict[str, str] = {}
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
            rows.append([same.setdefault(cell, cell) for cell in (record + [""] * width)[:width]])
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


def _lines(text: str) -> Iterator[str]:
    """The text's lines with their endings, as the csv module wants them; unlike
    StringIO, no second copy of the file at four bytes a character."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end == -1 else end + 1
        yield text[start:end]
        start = end


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

    def create_dataset(self, in_stream: bytes | str, **kwargs: Any) -> UploadedRows:
        if isinstance(in_stream, str):
            text, notice = in_stream, None
        else:
            text, notice = decode_upload(in_stream)
        rows = parse_csv(text)
        if notice:
            rows.notices.append(notice)
        return rows


# --- results and previews ----------------------------------------------------------------


class ImportResult(Result):
    """The library's result, plus the file's line numbers and what the manager should
    know before confirming (`notes`)."""

    #: Valid rows kept (for the preview); None keeps them all, as the admin's log of
    #: each imported row needs them.
    keep_valid_rows: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notes: list[str] = []
        self.unknown_enquiries: list[tuple[str, int]] = []
        self.source_headers: list[str] = []
        self.valid_rows_kept = 0
        self.valid_rows_dropped = 0

    def append_row_result(self, row_result: RowResult) -> None:
        if self.keep_valid_rows is not None and row_result.is_valid():
            if self.valid_rows_kept >= self.keep_valid_rows:
                # Counted in the totals; a hundred thousand of them would be most of
                # the memory a large import takes.
                self.valid_rows_dropped += 1
                return
            self.valid_rows_kept += 1
        super().append_row_result(row_result)

    def append_invalid_row(self, number: int, row: Any, validation_error: Any) -> None:
        super().append_invalid_row(number, row, validation_error)
        # What the file said, rather than the preview's columns.
        self.invalid_rows[-1].values = tuple(row.values())

    @property
    def preview_rows(self) -> list[RowResult]:
        valid = (row for row in self.rows if row.import_type in RowResult.valid_import_types)
        return list(islice(valid, PREVIEW_ROWS))

    @property
    def rows_not_shown(self) -> int:
        kept = sum(1 for row in self.rows if row.is_valid())
        return kept + self.valid_rows_dropped - len(self.preview_rows)

    @property
    def shown_invalid_rows(self) -> list[Any]:
        return self.invalid_rows[:PROBLEM_ROWS]

    @property
    def invalid_rows_not_shown(self) -> int:
        return max(len(self.invalid_rows) - PROBLEM_ROWS, 0)

    @property
    def unchanged(self) -> int:
        return self.totals[RowResult.IMPORT_TYPE_SKIP]


class PreviewResult(ImportResult):
    keep_valid_rows = PREVIEW_ROWS


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


# --- widgets -------------------------------------------------------------------------------


class LocalTimeWidget(widgets.Widget):
    """ISO 8601 in the service's time zone with its offset, to the microsecond, so that
    an exported time re-imports as the same instant; a time without an offset is taken
    as the service's local time."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> datetime | None:
        return parse_local_time(value)

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return timezone.localtime(value).isoformat() if value else ""


def parse_local_time(value: Any) -> datetime | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"“{text}” is not a time like 2021-10-19T10:05:07+08:00 (as exported)."
        ) from None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


#: What makes a spreadsheet read a cell as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(value: Any) -> Any:
    """A cell a spreadsheet would run as a formula, with the apostrophe that makes it
    text; `formula_unescaped` takes it off again on import."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def formula_unescaped(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


class TextWidget(widgets.CharWidget):
    """Text as typed, without the spaces around it or doubled inside it."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> str:
        return " ".join(formula_unescaped(str(value if value is not None else "")).split())


class NameWidget(widgets.Widget):
    """A team or enquiry type by its name."""

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return value.name if value is not None else ""


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


# --- what every import shares ------------------------------------------------------------


class KeyedLoader(BaseInstanceLoader):
    """Every existing row the file refers to, read up front in a few queries rather than
    one per row. The resource says how a row names its instance (`instance_key`)."""

    def __init__(self, resource: ResQResource, dataset: Any = None) -> None:
        super().__init__(resource, dataset)
        self.instances: dict[Any, Any] = {}
        if not dataset or not dataset.headers:
            return
        headers = dataset.headers
        keys = {
            resource.instance_key(dict(zip(headers, values, strict=True))) for values in dataset
        }
        keys.discard(None)
        wanted = sorted(keys, key=str)
        attribute = resource.instance_key_attribute
        queryset = resource.get_queryset()
        for start in range(0, len(wanted), LOOKUP_BATCH):
            batch = wanted[start : start + LOOKUP_BATCH]
            for instance in queryset.filter(**{f"{attribute}__in": batch}):
                self.instances[getattr(instance, attribute)] = instance

    def get_instance(self, row: dict[str, Any]) -> Any:
        key = self.resource.instance_key(row)
        return None if key is None else self.instances.get(key)


class ResQResource(resources.ModelResource):
    """Header check, repeated keys within a file, line numbers in every message, notes
    for the preview, and one board bump for the whole import."""

    #: Columns a file must have (any order, any case); others are refused by name.
    required_columns: tuple[str, ...] = ()
    #: Columns a file may have: exported for reading, not imported.
    optional_columns: tuple[str, ...] = ()
    #: Columns whose values may appear only once in a file.
    key_columns: tuple[str, ...] = ()
    #: Other layouts a file with the wrong columns may be meant for.
    alternatives: tuple[type[ResQResource], ...] = ()
    #: Whether the admin may keep each imported instance (for its change log).
    keep_instances = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset: Any = None
        self.user_id: int | None = None
        self.file_name = ""
        #: Per key column, the row number where each value was first seen.
        self.seen_keys: dict[str, dict[str, int]] = {column: {} for column in self.key_columns}
        self.written = False

    @classmethod
    def get_result_class(cls) -> type[ImportResult]:
        return ImportResult if cls.keep_instances else PreviewResult

    @classmethod
    def get_diff_class(cls) -> type[Diff]:
        return PlainDiff

    def get_user_visible_fields(self) -> list[Field]:
        return [field for field in self.get_import_fields() if not field.readonly]

    def export_field(self, field: Field, instance: Any, **kwargs: Any) -> Any:
        # Names come from people: one starting "=" must reach a spreadsheet as text.
        return formula_safe(super().export_field(field, instance, **kwargs))

    def line(self, row_number: int) -> int | None:
        if isinstance(self.dataset, UploadedRows):
            return self.dataset.line(row_number)
        return row_number + 1

    # -- before the rows --

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
        for other in self.alternatives:
            wanted = {name.casefold() for name in other.required_columns}
            if wanted <= {name.casefold() for name in headers}:
                return (
                    f"This file has the columns of “{other.get_display_name()}”, not of "
                    f"“{self.get_display_name()}”: choose that layout and upload it again."
                )
        parts = []
        if missing:
            parts.append(f"missing {_names(missing)}")
        if unexpected:
            parts.append(f"not expected {_names(unexpected)}")
        return (
            f"The columns do not match “{self.get_display_name()}”: {'; '.join(parts)}. "
            f"Its header line is: {','.join(self.required_columns)}"
        )

    # -- each row --

    def before_import_row(self, row: dict[str, Any], **kwargs: Any) -> None:
        number = kwargs["row_number"]
        if isinstance(self.dataset, UploadedRows) and number in self.dataset.row_problems:
            raise ValidationError(self.dataset.row_problems[number])
        for column in self.key_columns:
            value = str(row.get(column) or "").strip()
            if not value:
                continue
            first = self.seen_keys[column].setdefault(value.casefold(), number)
            if first != number:
                raise ValidationError(
                    {
                        column: f"“{value}” is already on line {self.line(first)}: each "
                        f"{column} may appear only once in a file."
                    }
                )

    def import_row(self, row: Any, instance_loader: Any, **kwargs: Any) -> RowResult:
        if not self.keep_instances:
            # The admin keeps every imported instance for its log; visits record their
            # import in their own history instead, and 100,000 kept instances would be
            # most of the memory a large import takes.
            kwargs.pop("retain_instance_in_row_result", None)
        return super().import_row(row, instance_loader, **kwargs)

    # -- after the rows --

    def after_import(self, dataset: Any, result: Any, **kwargs: Any) -> None:
        # No super(): ModelResource resets the table's id sequence there, which only
        # matters when a file sets ids, and none of ours do.
        if isinstance(result, ImportResult):
            result.source_headers = list(dataset.headers or [])
            if isinstance(dataset, UploadedRows):
                result.notes.extend(dataset.notices)
            self.add_notes(result)
        for problem in (*result.invalid_rows, *result.error_rows):
            problem.line = self.line(problem.number)
        totals = result.totals
        if (
            self.written
            or totals[RowResult.IMPORT_TYPE_NEW]
            or totals[RowResult.IMPORT_TYPE_UPDATE]
        ):
            # Team rows before the board, the order every writer keeps: PostgreSQL
            # checks the new rows' teams when this transaction commits, holding the
            # board by then, while a start on the desk holds its team and waits for the
            # board. Teams are few, and this is the import's last moment.
            list(Team.objects.select_for_update().order_by("pk").values_list("pk", flat=True))
            # Open desks show teams, enquiry types and visits: one bump for the file.
            Board.bump()

    def add_notes(self, result: ImportResult) -> None:
        """What the preview should point out about the whole file."""


def _names(names: list[str]) -> str:
    return ", ".join(f"“{name}”" for name in names)


# --- ResQ's own visits ------------------------------------------------------------------------


def _choice(choices: Any, text: str) -> str:
    key = match_key(text)
    for value, label in choices.choices:
        if key in (match_key(value), match_key(str(label))):
            return value
    allowed = ", ".join(value for value, _ in choices.choices)
    raise ValidationError(f"“{text}” is not one of: {allowed}.")


#: The columns of ResQ's own visit CSV that a manager may correct (admin's visit form
#: offers the same); who did what on the desk stays as recorded.
CORRECTABLE = (
    "student_name",
    "student_number",
    "unit_code",
    "team",
    "enquiry_type",
    "status",
    "outcome",
    "arrived_at",
    "started_at",
    "ended_at",
)


class VisitResource(ResQResource):
    """ResQ's visits as the visit list exports them. Re-importing the file corrects the
    visits it names, matched on ResQ's id; rows that did not change are left alone, so
    an unchanged file writes nothing. It adds no visits: they come from the desk, or
    from the old system's layout."""

    id = Field("id", "id", widgets.IntegerWidget())
    student_name = Field("student_name", "student_name")
    student_number = Field("student_number", "student_number")
    unit_code = Field("unit_code", "unit_code")
    team = Field("team", "team", NameWidget())
    enquiry_type = Field("enquiry_type", "enquiry_type", NameWidget())
    status = Field("status", "status")
    outcome = Field("outcome", "outcome")
    arrived_at = Field("arrived_at", "arrived_at", LocalTimeWidget())
    started_at = Field("started_at", "started_at", LocalTimeWidget())
    ended_at = Field("ended_at", "ended_at", LocalTimeWidget())
    source_ref = Field("source_ref", "source_ref", readonly=True)

    CORRECTABLE = CORRECTABLE
    required_columns = ("id", *CORRECTABLE)
    optional_columns = ("source_ref",)
    key_columns = ("id",)
    instance_key_attribute = "pk"
    keep_instances = False

    class Meta:
        model = Visit
        name = "ResQ visits (CSV, as exported)"
        fields = ("id", *CORRECTABLE, "source_ref")
        import_id_fields = ("id",)
        instance_loader_class = KeyedLoader
        use_bulk = True
        batch_size = BULK_BATCH
        skip_diff = True
        report_skipped = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lookups: Lookups | None = None
        self.changes: dict[int, dict[str, tuple[Any, Any]]] = {}
        self.current: Visit | None = None
        self.previewed = 0

    def get_queryset(self) -> QuerySet[Visit]:
        return Visit.objects.select_related("team", "enquiry_type")

    def filter_export(self, queryset: QuerySet[Visit], **kwargs: Any) -> QuerySet[Visit]:
        return queryset.select_related("team", "enquiry_type")

    def instance_key(self, row: dict[str, Any]) -> int | None:
        text = str(row.get("id") or "").strip()
        return int(text) if text.isascii() and text.isdigit() else None

    def get_diff_headers(self) -> list[str]:
        return ["Visit", "Student Name", "Arrived (local)", "Corrections"]

    def before_import(self, dataset: Any, **kwargs: Any) -> None:
        super().before_import(dataset, **kwargs)
        self.lookups = Lookups.load()

    def import_instance(self, instance: Visit, row: dict[str, Any], **kwargs: Any) -> None:
        self.current = instance
        if instance.pk is None:
            text = str(row.get("id") or "").strip()
            raise ValidationError(
                {
                    "id": f"There is no visit {text} in ResQ. This layout corrects visits "
                    "that exist (export them first); the old system's visits come in "
                    "with its own layout."
                    if text
                    else "Every row needs the id of the visit it corrects."
                }
            )
        incoming, errors = self._read(row)
        changes = {
            name: (getattr(instance, name), value)
            for name, value in incoming.items()
            if name not in errors and getattr(instance, name) != value
        }
        self._check_desk_rules(changes, errors)
        if errors:
            raise ValidationError(errors)
        if not changes:
            return
        if instance.status in OPEN_STATUSES or incoming["status"] in OPEN_STATUSES:
            raise ValidationError(
                f"Visit {instance.pk} ({instance.student_name}) is "
                f"{Visit.Status(instance.status).label.lower()} in ResQ and this row would "
                f"change {_names(list(changes))}. A visit that is, or would be, waiting or in "
                "a session is changed on the desk. If the file is older than the desk's "
                "record, export again."
            )
        for name, (_, value) in changes.items():
            setattr(instance, name, value)
        # Who started or ended a session belongs with its time: clearing one clears both.
        for time, actor in (("started_at", "started_by"), ("ended_at", "ended_by")):
            if time in changes and getattr(instance, time) is None:
                setattr(instance, actor, None)
        self._check_state(instance)
        self.changes[instance.pk] = changes

    def _read(self, row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
        assert self.lookups is not None  # noqa: S101 - set by before_import
        incoming: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        text = {
            name: formula_unescaped(str(row.get(name) or "").strip()) for name in self.CORRECTABLE
        }

        incoming["student_name"] = unicodedata.normalize(
            "NFC", " ".join(text["student_name"].split())
        )
        number, _ = restore_student_number(text["student_number"], self.lookups.number_pattern)
        incoming["student_number"] = number or re.sub(r"\s+", "", text["student_number"])
        incoming["unit_code"] = re.sub(r"\s+", "", text["unit_code"]).upper()

        team = self.lookups.teams.get(match_key(text["team"]))
        if team is None:
            errors["team"] = [f"“{text['team']}” is not a team ({self.lookups.team_names})."]
        incoming["team"] = team
        enquiry_type = self.lookups.enquiry_types.get(match_key(text["enquiry_type"]))
        if enquiry_type is None:
            errors["enquiry_type"] = [f"“{text['enquiry_type']}” is not an enquiry type in ResQ."]
        incoming["enquiry_type"] = enquiry_type

        for name, choices in (("status", Visit.Status), ("outcome", Visit.Outcome)):
            if name == "outcome" and not text[name]:
                incoming[name] = ""
                continue
            try:
                incoming[name] = _choice(choices, text[name])
            except ValidationError as error:
                errors[name] = error.messages
        for name in ("arrived_at", "started_at", "ended_at"):
            try:
                incoming[name] = parse_local_time(text[name])
            except ValueError as error:
                errors[name] = [str(error)]
        if incoming.get("arrived_at") is None and "arrived_at" not in errors:
            errors["arrived_at"] = ["Every visit has the time the student arrived."]
        return incoming, errors

    @staticmethod
    def _check_desk_rules(
        changes: dict[str, tuple[Any, Any]], errors: dict[str, list[str]]
    ) -> None:
        """The desk's checks, for the values this file changes (a record that predates a
        rule is not refused for a value nobody touched)."""
        if "student_name" in changes:
            name = changes["student_name"][1]
            if not is_plausible_name(name) or len(name) > 100:
                errors["student_name"] = [
                    f"“{name}”: Student Name can hold letters, spaces, hyphens and "
                    "apostrophes only."
                ]
        if "student_number" in changes:
            try:
                clean_student_number(changes["student_number"][1])
            except ValidationError as error:
                errors["student_number"] = [
                    f"“{changes['student_number'][1]}”: {error.messages[0]}"
                ]
        if "unit_code" in changes:
            code = changes["unit_code"][1]
            if code and not UNIT_CODE_RE.fullmatch(code):
                errors["unit_code"] = [f"“{code}” is not a Unit Code like CITS3200 (or empty)."]
        # Admin's visit form refuses the same: the desk would show a visit as ended at a
        # time still to come.
        new_values = {name: new for name, (_, new) in changes.items()}
        for name, message in Visit.future_time_problems(new_values).items():
            errors[name] = [message]

    @staticmethod
    def _check_state(visit: Visit) -> None:
        # Imported here: the admin module imports this one for its import buttons.
        from .admin import visit_state_problems

        problems = visit_state_problems(visit)
        arrived, started, ended = visit.arrived_at, visit.started_at, visit.ended_at
        if started and started < arrived:
            problems["started_at"] = "A session cannot start before the student arrived."
        if ended and ended < (started or arrived):
            problems["ended_at"] = "A visit cannot end before it started."
        if problems:
            status = Visit.Status(visit.status).label
            problems.setdefault(
                "status",
                f"A visit with the status “{status}” needs the outcome and times to match.",
            )
            raise ValidationError(problems)

    def skip_row(
        self, instance: Visit, original: Any, row: Any, import_validation_errors: Any = None
    ) -> bool:
        return not import_validation_errors and instance.pk not in self.changes

    def after_import_row(self, row: Any, row_result: RowResult, **kwargs: Any) -> None:
        visit = self.current
        if row_result.is_update() and visit is not None and self.previewed < PREVIEW_ROWS:
            self.previewed += 1
            corrections = "; ".join(
                f"{name}: {_shown(old) or '—'} → {_shown(new) or '—'}"
                for name, (old, new) in self.changes[visit.pk].items()
            )
            row_result.diff = [
                str(visit.pk),
                visit.student_name,
                local_time(visit.arrived_at),
                corrections,
            ]

    def bulk_update(
        self,
        using_transactions: bool,
        dry_run: bool,
        raise_errors: bool,
        batch_size: int | None = None,
        result: Any = None,
    ) -> None:
        visits, self.update_instances = list(self.update_instances), []
        if not visits:
            return
        events = [
            VisitEvent(
                visit=visit,
                action=VisitEvent.Action.CORRECTED,
                from_status=self.changes[visit.pk].get("status", (visit.status,))[0],
                to_status=visit.status,
                by_id=self.user_id,
                detail={
                    name: [_plain(old), _plain(new)]
                    for name, (old, new) in self.changes[visit.pk].items()
                },
            )
            for visit in visits
        ]
        fields = [*self.CORRECTABLE, "started_by", "ended_by"]
        try:
            # Its own savepoint: a failure must leave the import's transaction usable
            # so that the manager gets a message rather than an error page.
            with transaction.atomic():
                Visit.objects.bulk_update(visits, fields, batch_size=UPDATE_BATCH)
                VisitEvent.objects.bulk_create(events, batch_size=BULK_BATCH)
        except DatabaseError as error:
            self.handle_import_error(
                result,
                ImportFileError(
                    f"The database refused the corrections ({error}), so nothing was imported."
                ),
                raise_errors,
            )
        else:
            self.written = True


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return getattr(value, "pk", value)


def _shown(value: Any) -> str:
    if isinstance(value, datetime):
        return local_time(value)
    return "" if value is None else str(value)


# --- the old system's visits -----------------------------------------------------------------


class LegacyVisitResource(ResQResource):
    """The old system's CSV export, as it is (see `import_legacy`). A visit it brought
    across before (same old id) is left as ResQ has it now: importing the file again
    adds nothing, and does not undo corrections made in ResQ since."""

    source_ref = Field("source_ref", "id")
    student_name = Field("student_name", "studentName")
    student_number = Field("student_number", "studentNumber")
    unit_code = Field("unit_code", "unitCode")
    enquiry_type = Field("enquiry_type", "enquiry", NameWidget())
    team = Field("team", "queue", NameWidget())
    status = Field("status", "status")
    arrived_at = Field("arrived_at", "enterQueueTime", LocalTimeWidget())
    started_at = Field("started_at", "changeSessionTime", LocalTimeWidget())
    ended_at = Field("ended_at", "exitSessionTime", LocalTimeWidget())

    required_columns = import_legacy.COLUMNS
    key_columns = ("id",)
    instance_key_attribute = "source_ref"
    keep_instances = False

    class Meta:
        model = Visit
        name = "Old system (2021) CSV"
        fields = (
            "source_ref",
            "student_name",
            "student_number",
            "unit_code",
            "enquiry_type",
            "team",
            "status",
            "arrived_at",
            "started_at",
            "ended_at",
        )
        import_id_fields = ("source_ref",)
        instance_loader_class = KeyedLoader
        use_bulk = True
        batch_size = BULK_BATCH
        skip_diff = True
        report_skipped = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lookups: Lookups | None = None
        self.current: tuple[Visit, import_legacy.LegacyVisit | None] | None = None
        self.previewed = 0
        self.unknown_enquiries: Counter[str] = Counter()
        self.padded_numbers: list[str] = []
        self.dropped_unit_codes: Counter[str] = Counter()
        self.closed_stale = 0

    def get_queryset(self) -> QuerySet[Visit]:
        return Visit.objects.select_related("team")

    def instance_key(self, row: dict[str, Any]) -> str | None:
        return import_legacy.source_ref(str(row.get("id") or ""))

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

    def before_import(self, dataset: Any, **kwargs: Any) -> None:
        super().before_import(dataset, **kwargs)
        self.lookups = Lookups.load()

    def import_instance(self, instance: Visit, row: dict[str, Any], **kwargs: Any) -> None:
        if instance.pk is not None:
            self.current = (instance, None)
            return
        assert self.lookups is not None  # noqa: S101 - set by before_import
        mapped = import_legacy.map_legacy_row(row, self.lookups)
        for name, value in mapped.values.items():
            setattr(instance, name, value)
        instance.added_by_id = self.user_id
        self.current = (instance, mapped)
        if mapped.unknown_enquiry is not None:
            self.unknown_enquiries[mapped.unknown_enquiry] += 1
        if mapped.padded_number:
            self.padded_numbers.append(
                f"{str(row.get('studentNumber')).strip()} → {instance.student_number}"
            )
        if mapped.dropped_unit_code is not None:
            self.dropped_unit_codes[mapped.dropped_unit_code] += 1
        self.closed_stale += mapped.closed_stale

    def skip_row(
        self, instance: Visit, original: Any, row: Any, import_validation_errors: Any = None
    ) -> bool:
        return not import_validation_errors and instance.pk is not None

    def after_import_row(self, row: Any, row_result: RowResult, **kwargs: Any) -> None:
        if not row_result.is_new() or self.current is None or self.previewed >= PREVIEW_ROWS:
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
            " ".join(mapped.notes) if mapped else "",
        ]

    def bulk_create(
        self,
        using_transactions: bool,
        dry_run: bool,
        raise_errors: bool,
        batch_size: int | None = None,
        result: Any = None,
    ) -> None:
        visits, self.create_instances = list(self.create_instances), []
        if not visits:
            return
        try:
            # Its own savepoint: a failure (another import of the same file committing
            # first, say) must leave the transaction usable for the message.
            with transaction.atomic():
                Visit.objects.bulk_create(visits, batch_size=batch_size)
                if not dry_run:
                    # The visits go in on the dry run too, so that the database's
                    # constraints check the preview; their events can hold nothing
                    # it could refuse, and would cost a third of its time.
                    VisitEvent.objects.bulk_create(
                        [
                            VisitEvent(
                                visit=visit,
                                action=VisitEvent.Action.IMPORTED,
                                from_status="",
                                to_status=visit.status,
                                by_id=self.user_id,
                                detail={"source_ref": visit.source_ref, "file": self.file_name},
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
        else:
            self.written = True

    def add_notes(self, result: ImportResult) -> None:
        skipped = result.unchanged
        if skipped:
            result.notes.append(
                ngettext(
                    "%(count)d visit already brought across by an earlier import: "
                    "left as ResQ has it.",
                    "%(count)d visits already brought across by an earlier import: "
                    "left as ResQ has them.",
                    skipped,
                )
                % {"count": skipped}
            )
        if self.unknown_enquiries:
            result.unknown_enquiries = [
                (text or "(empty)", count) for text, count in self.unknown_enquiries.most_common()
            ]
            listed = ", ".join(f"“{text}” ({n})" for text, n in result.unknown_enquiries[:10])
            more = len(result.unknown_enquiries) - 10
            result.notes.append(
                f"Not a known enquiry type, so filed under “{import_legacy.OTHER}”: {listed}"
                + (f" and {more} more." if more > 0 else ".")
            )
        if self.padded_numbers:
            count = len(self.padded_numbers)
            examples = ", ".join(self.padded_numbers[:3])
            result.notes.append(
                ngettext(
                    "Leading zeros restored to %(count)d student number that a spreadsheet "
                    "had dropped (e.g. %(examples)s).",
                    "Leading zeros restored to %(count)d student numbers that a spreadsheet "
                    "had dropped (e.g. %(examples)s).",
                    count,
                )
                % {"count": count, "examples": examples}
            )
        if self.dropped_unit_codes:
            codes = self.dropped_unit_codes
            listed = ", ".join(f"“{code}” ({n})" for code, n in codes.most_common(10))
            count = sum(codes.values())
            result.notes.append(
                ngettext(
                    "%(count)d unit code not like CITS3200 left empty: %(listed)s.",
                    "%(count)d unit codes not like CITS3200 left empty: %(listed)s.",
                    count,
                )
                % {"count": count, "listed": listed}
            )
        if self.closed_stale:
            result.notes.append(
                ngettext(
                    "%(count)d visit still “In Queue” or “In Session” in the old system "
                    "closed as out of time, ended at the last time it recorded for it: "
                    "nobody from 2021 is waiting today.",
                    "%(count)d visits still “In Queue” or “In Session” in the old system "
                    "closed as out of time, ended at the last time it recorded for them: "
                    "nobody from 2021 is waiting today.",
                    self.closed_stale,
                )
                % {"count": self.closed_stale}
            )


VisitResource.alternatives = (LegacyVisitResource,)
LegacyVisitResource.alternatives = (VisitResource,)


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
        report_skipped = True

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
            busy = Visit.objects.active().filter(team_id=instance.pk).count()
            if busy:
                errors["is_active"] = [
                    ngettext(
                        "%(team)s has %(count)d student waiting or in a session. "
                        "Deactivate it once they have been seen or the queue is closed.",
                        "%(team)s has %(count)d students waiting or in a session. "
                        "Deactivate it once they have been seen or the queue is closed.",
                        busy,
                    )
                    % {"team": instance.name, "count": busy}
                ]
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
        report_skipped = True

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
