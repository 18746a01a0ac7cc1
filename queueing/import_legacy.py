"""The old system's visits, as its CSV export wrote them, mapped to ResQ's.

The old system (a 2021 web app) exported one row per visit:

    id,studentName,studentNumber,unitCode,enquiry,queue,status,
    enterQueueTime,changeSessionTime,exitSessionTime

with naive UTC times ("2021-10-19 02:05:07.123456"), four statuses, its two teams
by name, the enquiry as free text, and student numbers that went through a
spreadsheet as integers somewhere along the way (so 01234567 arrived as 1234567).

`map_legacy_row()` turns one such row into the values of a ResQ visit, or says in the
manager's words what is wrong with it, per column. Nothing here touches the database:
the team and enquiry type look-ups are read once per import (`Lookups.load()`).
docs/import.md has the mapping table this implements.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from .forms import UNIT_CODE_RE, is_plausible_name
from .models import EnquiryType, Team, Visit

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
NAME_MAX = Visit._meta.get_field("student_name").max_length
NUMBER_MAX = Visit._meta.get_field("student_number").max_length
OTHER = "Other"
TIME_EXAMPLE = "2021-10-19 02:05:07"

#: The original's spellings of the seeded enquiry types, by their `match_key()`.
#: Names that already match ignoring case, spaces and punctuation ("thesis / paper",
#: "END NOTE" is not one: it is two words) need no entry.
ENQUIRY_ALIASES = {
    "essays": "Essay",
    "grammer": "Grammar",
    "labreport": "Lab Report",
    "lab reports": "Lab Report",
    "assignments": "Assignment",
    "lit research": "Literature Research",
    "literature review": "Literature Research",
    "proposal": "Research Proposal",
    "research proposals": "Research Proposal",
    "thesis": "Thesis/Paper",
    "paper": "Thesis/Paper",
    "thesis or paper": "Thesis/Paper",
    "thesis and paper": "Thesis/Paper",
    "presentation": "Oral Presentation",
    "oral presentations": "Oral Presentation",
    "references": "Referencing",
    "reference": "Referencing",
    "citations": "Referencing",
    "citing": "Referencing",
    "finding source": "Finding Sources",
    "sources": "Finding Sources",
    "finding resources": "Finding Sources",
    "end note": "EndNote",
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


@dataclass
class Lookups:
    """Teams and enquiry types by `match_key()` of their names (and team slugs), and
    the service's student number format: read once for the whole file (two queries),
    whatever its length."""

    teams: dict[str, Team]
    enquiry_types: dict[str, EnquiryType]
    number_pattern: re.Pattern[str]
    number_help: str

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
            number_help=settings.RESQ_STUDENT_NUMBER_HELP,
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

    values: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    #: The old enquiry text when it was not recognised ("" if it was blank).
    unknown_enquiry: str | None = None
    padded_number: bool = False
    dropped_unit_code: str | None = None
    closed_stale: bool = False


def source_ref(old_id: str) -> str | None:
    """The source_ref of an old id, or None if the id is unusable."""
    old_id = (old_id or "").strip()
    if not old_id or len(old_id) > 50 or any(char.isspace() for char in old_id):
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
    number = "".join((value or "").split())
    if number and len(number) <= NUMBER_MAX and pattern.fullmatch(number):
        return number, False
    if number.isascii() and number.isdigit():
        for width in range(len(number) + 1, NUMBER_MAX + 1):
            padded = number.zfill(width)
            if pattern.fullmatch(padded):
                return padded, True
    return None, False


def map_legacy_row(row: Mapping[str, str], lookups: Lookups) -> LegacyVisit:
    """The ResQ visit for one old row; a ValidationError keyed by old column names
    lists everything wrong with it at once."""
    errors: dict[str, list[str]] = {}

    def fail(column: str, message: str) -> None:
        errors.setdefault(column, []).append(message)

    mapped = LegacyVisit(values={})
    values = mapped.values

    ref = source_ref(row.get("id", ""))
    if ref is None:
        fail(
            "id",
            "Every row needs the old system's id (no spaces): a second import "
            "recognises the visits it already brought across by it.",
        )
    values["source_ref"] = ref

    name = unicodedata.normalize("NFC", " ".join((row.get("studentName") or "").split()))
    if not name:
        fail("studentName", "The student's name is empty.")
    elif len(name) > NAME_MAX or not is_plausible_name(name):
        fail(
            "studentName",
            f"“{name}” is not a name ResQ accepts: letters, spaces, "
            "hyphens and apostrophes only, starting with a letter.",
        )
    values["student_name"] = name

    raw_number = (row.get("studentNumber") or "").strip()
    number, padded = restore_student_number(raw_number, lookups.number_pattern)
    if number is None:
        fail(
            "studentNumber",
            f"“{raw_number}” is not a student number "
            f"({lookups.number_help}), even with leading zeros put back.",
        )
    elif padded:
        mapped.padded_number = True
        mapped.notes.append(f"Student number {raw_number} → {number} (leading zeros restored).")
    values["student_number"] = number

    raw_unit = (row.get("unitCode") or "").strip()
    unit = re.sub(r"\s+", "", raw_unit).upper()
    if unit.casefold() in NO_UNIT_CODE:
        unit = ""
    elif not UNIT_CODE_RE.fullmatch(unit):
        mapped.dropped_unit_code = raw_unit
        mapped.notes.append(f"Unit code “{raw_unit}” is not like CITS3200: left empty.")
        unit = ""
    values["unit_code"] = unit

    team = lookups.teams.get(match_key(row.get("queue") or ""))
    if team is None:
        fail(
            "queue",
            f"“{(row.get('queue') or '').strip()}” is not a team in ResQ "
            f"({lookups.team_names}). Add the team in admin first, or correct the row.",
        )
    values["team"] = team

    enquiry = (row.get("enquiry") or "").strip()
    enquiry_type, known = lookups.enquiry_type(enquiry)
    if enquiry_type is None:
        fail(
            "enquiry",
            f"“{enquiry}” is not an enquiry type ResQ knows, and there is no "
            f"“{OTHER}” enquiry type to put it under.",
        )
    elif not known:
        mapped.unknown_enquiry = enquiry
        shown = f"“{enquiry}”" if enquiry else "An empty enquiry"
        mapped.notes.append(f"{shown} is not a known enquiry type: filed under {OTHER}.")
    values["enquiry_type"] = enquiry_type

    times = {}
    for column in ("enterQueueTime", "changeSessionTime", "exitSessionTime"):
        raw = (row.get(column) or "").strip()
        try:
            times[column] = parse_utc(raw)
        except ValueError:
            fail(column, f"“{raw}” is not a time like {TIME_EXAMPLE} (UTC).")
            times[column] = None
    if times["enterQueueTime"] is None and "enterQueueTime" not in errors:
        fail("enterQueueTime", "Every visit needs the time the student joined the queue.")

    raw_status = (row.get("status") or "").strip()
    status = match_key(raw_status)
    if status not in STATUSES:
        fail(
            "status",
            f"“{raw_status}” is not one of the old statuses: {', '.join(STATUSES.values())}.",
        )
    elif not errors.keys() & {"enterQueueTime", "changeSessionTime", "exitSessionTime"}:
        _state(status, times, mapped, fail)

    if errors:
        raise ValidationError(errors)
    return mapped


def _state(status: str, times: dict[str, datetime | None], mapped: LegacyVisit, fail) -> None:
    """Status, outcome and times, so that the visit_state_consistent constraint holds.

    Completed: a finished session. Ended: finished if a session had started, else the
    student left before being seen. In Queue and In Session rows are visits the old
    system never closed; from 2021 they are not anyone waiting today, so they are
    closed as out of time, ended at the last time recorded for them.
    """
    arrived, started, ended = (
        times["enterQueueTime"],
        times["changeSessionTime"],
        times["exitSessionTime"],
    )
    label = STATUSES[status]
    if status == COMPLETED and started is None:
        fail("changeSessionTime", f"A “{label}” visit needs the time its session started.")
    if status in (COMPLETED, ENDED) and ended is None:
        fail("exitSessionTime", f"A “{label}” visit needs the time it ended.")
    if status == IN_SESSION and started is None:
        fail("changeSessionTime", f"An “{label}” visit needs the time its session started.")
    if status == IN_QUEUE:
        # Still waiting by the old record: any session time is a leftover, not a start.
        started = None
    if started is not None and started < arrived:
        fail(
            "changeSessionTime",
            "The session starts before the student joined the queue "
            f"({_utc(started)} is before {_utc(arrived)}).",
        )
    if ended is not None and ended < (started or arrived):
        fail(
            "exitSessionTime",
            f"The visit ends ({_utc(ended)}) before it "
            f"{'started' if started else 'began'} ({_utc(started or arrived)}).",
        )

    values = mapped.values
    values.update(arrived_at=arrived, started_at=started, ended_at=ended)
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


def _utc(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else ""
