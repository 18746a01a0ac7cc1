"""The old system's visits, as its CSV export wrote them, mapped to ResQ's.

The old system (a 2021 web app) exported one row per visit:

    id,studentName,studentNumber,unitCode,enquiry,queue,status,
    enterQueueTime,changeSessionTime,exitSessionTime

with naive UTC times ("2021-10-19 02:05:07.123456"), four statuses, its two teams
by name, the enquiry as free text, and student numbers that went through a
spreadsheet as integers somewhere along the way (so 01234567 arrived as 1234567).

`map_legacy_row()` turns one such row into the values of a ResQ visit. Its history is
kept as it was: a name, student number or unit code the desk would refuse today is
kept as written and pointed out. Only a row that cannot be a visit (see
`LegacyVisit.refusals`) is left out. Nothing here touches the database: the team and
enquiry type look-ups are read once per import (`Lookups.load()`). docs/import.md has
the mapping table this implements.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from .models import EnquiryType, Team, Visit
from .validators import (
    normalise_student_name,
    normalise_student_number,
    normalise_unit_code,
    validate_student_name,
    validate_student_number,
    validate_unit_code,
)

COLUMNS = (
    "id",
    "studentName",
    "studentNumber",
    "unitCode",
    "enquiry",
    "queue",
    "status",
    "enterQueueTime",
    "changeSessionTime",
    "exitSessionTime",
)
#: A visit's source_ref is this prefix and the old system's id.
SOURCE_PREFIX = "legacy:"
OTHER = "Other"
TIME_EXAMPLE = "2021-10-19 02:05:07"
#: The old time columns, by the visit's times they become.
TIME_COLUMNS = {
    "arrived_at": "enterQueueTime",
    "started_at": "changeSessionTime",
    "ended_at": "exitSessionTime",
}

#: The original's spellings of the seeded enquiry types, after the name they stand for.
#: Names that already match ignoring case, spaces and punctuation ("thesis / paper",
#: "END NOTE" is not one: it is two words) need no entry.
SPELLINGS = """
    Essay: essays
    Grammar: grammer
    Lab Report: labreport; lab reports
    Assignment: assignments
    Literature Research: lit research; literature review
    Research Proposal: proposal; research proposals
    Thesis/Paper: thesis; paper; thesis or paper; thesis and paper
    Oral Presentation: presentation; oral presentations
    Referencing: references; reference; citations; citing
    Finding Sources: finding source; sources; finding resources
    EndNote: end note
"""
#: Each old spelling, by its `match_key()`, → the enquiry type's name.
ENQUIRY_ALIASES = {
    spelling: name
    for line in SPELLINGS.strip().splitlines()
    for name, spellings in [line.strip().split(": ")]
    for spelling in spellings.split("; ")
}

#: What staff typed in the unit code box when there was none.
NO_UNIT_CODE = {"", "na", "n/a", "none", "nil", "null", "-", "--", "no", "nounit"}

# Old status → (status, outcome) by the times it has; see `_state()`.
IN_QUEUE, IN_SESSION, COMPLETED, ENDED = "in queue", "in session", "completed", "ended"
STATUSES = {IN_QUEUE: "In Queue", IN_SESSION: "In Session", COMPLETED: "Completed", ENDED: "Ended"}


@lru_cache(maxsize=4096)  # teams, statuses and enquiries repeat on every row
def match_key(text: str) -> str:
    """How names are compared: case, accents' composed form, spaces and punctuation
    do not count ("Thesis / paper" is "Thesis/Paper")."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.findall(r"[^\W_]+", folded))


def max_length(name: str) -> int:
    return Visit._meta.get_field(name).max_length


@dataclass
class Lookups:
    """Teams and enquiry types by `match_key()` of their names (and team slugs), and
    the service's student number format: read once for the whole file (two queries),
    whatever its length."""

    teams: dict[str, Team]
    enquiry_types: dict[str, EnquiryType]
    number_pattern: re.Pattern[str]

    @classmethod
    def load(cls) -> Lookups:
        teams: dict[str, Team] = {}
        for team in Team.objects.all():
            teams.setdefault(match_key(team.name), team)
            teams.setdefault(match_key(team.slug), team)
        types = {match_key(t.name): t for t in EnquiryType.objects.all()}
        return cls(
            teams=teams,
            enquiry_types=types,
            number_pattern=re.compile(settings.RESQ_STUDENT_NUMBER_PATTERN, flags=re.ASCII),
        )

    @property
    def team_names(self) -> str:
        return ", ".join(sorted({team.name for team in self.teams.values()}))

    def enquiry_type(self, text: str) -> tuple[EnquiryType | None, bool]:
        """The enquiry type for the old free text, and whether it was recognised;
        an unrecognised one is "Other" (None if ResQ has no "Other")."""
        key = match_key(text)
        found = self.enquiry_types.get(key)
        if found is None and key in ENQUIRY_ALIASES:
            found = self.enquiry_types.get(match_key(ENQUIRY_ALIASES[key]))
        if found is not None:
            return found, True
        return self.enquiry_types.get(match_key(OTHER)), False


@dataclass
class LegacyVisit:
    """One old row as ResQ will store it, and what the preview should point out."""

    values: dict[str, Any] = field(default_factory=dict)
    #: Why the row cannot be a visit, by old column; empty if it is one.
    refusals: dict[str, list[str]] = field(default_factory=dict)
    #: (old column, value as written, what the desk would say of it), for each value
    #: kept although the desk would refuse it today.
    kept: list[tuple[str, str, str]] = field(default_factory=list)
    #: Values longer than their column, whole, by field: stored cut to fit, and kept
    #: whole in the visit's "imported" event.
    cut: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: The old enquiry text when it was not recognised ("" if it was blank).
    unknown_enquiry: str | None = None
    padded_number: bool = False
    closed_stale: bool = False

    def refuse(self, column: str, message: str) -> None:
        self.refusals.setdefault(column, []).append(message)

    def keep(self, column: str, name: str, written: str, validate: Callable[[str], None]) -> None:
        """Store a value as written, and note it if the desk's rule (`validate`, from
        queueing.validators) would refuse it. A value longer than its column is cut
        to fit."""
        try:
            validate(written)
        except ValidationError as error:
            why = " ".join(error.messages)
        else:
            why = ""
        limit = max_length(name)
        if len(written) > limit:
            self.cut[name] = written
            why = (f"{why} " if why else "") + (
                f"Longer than ResQ keeps: stored as its first {limit} characters (the "
                "visit's history keeps it whole)."
            )
            self.values[name] = written[:limit]
        else:
            self.values[name] = written
        if why:
            self.kept.append((column, written, why))


def source_ref(old_id: str) -> str | None:
    """The source_ref of an old id, or None if the id is unusable."""
    old_id = (old_id or "").strip()
    limit = max_length("source_ref") - len(SOURCE_PREFIX)
    if not old_id or len(old_id) > limit or any(char.isspace() for char in old_id):
        return None
    return SOURCE_PREFIX + old_id


def parse_utc(value: str) -> datetime | None:
    """An old time: naive means UTC (the old system stored UTC without saying so)."""
    value = (value or "").strip()
    if not value:
        return None
    moment = datetime.fromisoformat(value)  # ValueError for the caller to word
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def restore_student_number(value: str, pattern: re.Pattern[str]) -> tuple[str | None, bool]:
    """The student number, with the leading zeros a spreadsheet dropped put back when
    that (and only that) makes it fit the service's pattern; None if it cannot fit."""
    number = normalise_student_number(value)
    limit = max_length("student_number")
    if number and len(number) <= limit and pattern.fullmatch(number):
        return number, False
    if number.isascii() and number.isdigit():
        for width in range(len(number) + 1, limit + 1):
            padded = number.zfill(width)
            if pattern.fullmatch(padded):
                return padded, True
    return None, False


def map_legacy_row(row: Mapping[str, str], lookups: Lookups) -> LegacyVisit:
    """The ResQ visit for one old row, or (in `refusals`) why it cannot be one.

    Raises ValidationError only when ResQ is not ready for the row: an enquiry it does
    not know, and no "Other" enquiry type to file it under.
    """
    mapped = LegacyVisit()
    values = mapped.values

    values["source_ref"] = source_ref(row.get("id", ""))
    if values["source_ref"] is None:
        mapped.refuse(
            "id",
            "Every row needs the old system's id (no spaces): a second import "
            "recognises the visits it already brought across by it.",
        )

    name = normalise_student_name(row.get("studentName") or "")
    mapped.keep("studentName", "student_name", name, validate_student_name)

    written = (row.get("studentNumber") or "").strip()
    number, padded = restore_student_number(written, lookups.number_pattern)
    if padded:
        mapped.padded_number = True
        mapped.notes.append(f"Student number {written} → {number} (leading zeros restored).")
    mapped.keep("studentNumber", "student_number", number or written, validate_student_number)

    written = (row.get("unitCode") or "").strip()
    unit = normalise_unit_code(written)
    if unit.casefold() in NO_UNIT_CODE:
        unit = ""
    try:
        validate_unit_code(unit)
    except ValidationError:
        unit = written
    mapped.keep("unitCode", "unit_code", unit, validate_unit_code)

    values["team"] = lookups.teams.get(match_key(row.get("queue") or ""))
    if values["team"] is None:
        mapped.refuse(
            "queue",
            f"“{(row.get('queue') or '').strip()}” is not a team in ResQ "
            f"({lookups.team_names}). Add the team in admin, then import the file again: "
            "the visits already brought across are left alone.",
        )

    raw_status = (row.get("status") or "").strip()
    status = match_key(raw_status)
    if status not in STATUSES:
        mapped.refuse(
            "status",
            f"“{raw_status}” is not one of the old statuses: {', '.join(STATUSES.values())}.",
        )
    times = _times(row, mapped)
    if times is not None and status in STATUSES:
        _state(status, times, mapped)
    if mapped.refusals:
        return mapped

    enquiry = (row.get("enquiry") or "").strip()
    values["enquiry_type"], known = lookups.enquiry_type(enquiry)
    if values["enquiry_type"] is None:
        raise ValidationError(
            {
                "enquiry": f"“{enquiry}” is not an enquiry type ResQ knows, and there is no "
                f"“{OTHER}” enquiry type to put it under. Add it in admin."
            }
        )
    if not known:
        mapped.unknown_enquiry = enquiry
        shown = f"“{enquiry}”" if enquiry else "An empty enquiry"
        mapped.notes.append(f"{shown} is not a known enquiry type: filed under {OTHER}.")
    return mapped


def _times(row: Mapping[str, str], mapped: LegacyVisit) -> dict[str, datetime | None] | None:
    """The three times, or None (with the refusals) if one does not parse or there is
    no arrival."""
    times: dict[str, datetime | None] = {}
    for name, column in TIME_COLUMNS.items():
        raw = (row.get(column) or "").strip()
        try:
            times[name] = parse_utc(raw)
        except ValueError:
            mapped.refuse(column, f"“{raw}” is not a time like {TIME_EXAMPLE} (UTC).")
            return None
    if times["arrived_at"] is None:
        mapped.refuse("enterQueueTime", "Every visit needs the time the student joined the queue.")
        return None
    return times


def _state(status: str, times: dict[str, datetime | None], mapped: LegacyVisit) -> None:
    """Status, outcome and times, so that the visit_state_consistent constraint holds;
    a row whose times cannot be a closed visit's is refused.

    Completed: a finished session. Ended: finished if a session had started, else the
    student left before being seen. In Queue and In Session rows are visits the old
    system never closed; from 2021 they are not anyone waiting today, so they are
    closed as out of time, ended at the last time recorded for them (the arrival, for
    a session whose start was not recorded).
    """
    arrived, started, ended = times["arrived_at"], times["started_at"], times["ended_at"]
    label = STATUSES[status]
    article = "An" if label.startswith("E") else "A"
    if status == COMPLETED and started is None:
        mapped.refuse("changeSessionTime", f"A “{label}” visit needs the time its session started.")
    if status in (COMPLETED, ENDED) and ended is None:
        mapped.refuse("exitSessionTime", f"{article} “{label}” visit needs the time it ended.")
    if status == IN_QUEUE:
        # Still waiting by the old record: any session time is a leftover, not a start.
        started = None
    values = mapped.values
    values.update(arrived_at=arrived, started_at=started, ended_at=ended)
    # The model's rule: no time still to come (the desk would show a visit ended in the
    # future as just finished), no negative wait or session.
    for name, messages in Visit.time_problems(values).items():
        for message in messages:
            mapped.refuse(TIME_COLUMNS[name], message)

    if status == COMPLETED or (status == ENDED and started is not None):
        values.update(status=Visit.Status.FINISHED, outcome=Visit.Outcome.FINISHED)
    elif status == ENDED:
        values.update(status=Visit.Status.REMOVED, outcome=Visit.Outcome.CANCELLED)
    else:
        values.update(
            status=Visit.Status.REMOVED,
            outcome=Visit.Outcome.OUT_OF_TIME,
            ended_at=ended or started or arrived,
        )
        mapped.closed_stale = True
        mapped.notes.append(
            f"Still “{label}” in the old system: closed as out of time "
            "(the old system never recorded its end)."
        )
