"""What a visit's student details may hold: a name, a student number, a unit code.

Each rule is written once, here, as a Django validator on the Visit field it guards,
so every form that writes a visit (the desk's and admin's) applies it through the
model. Each field is tidied as typed (`normalise_*`) before its rule judges it; an
import can call the same functions to list the values that break a rule.
"""

from __future__ import annotations

import re
import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError

# Punctuation real names use (O'Brien, Anne-Marie, J. Smith); with letters and marks of
# any script, that is all a name may hold. Markup and formula starters (<, =, +, @) are
# refused here, and everything is escaped on output besides.
NAME_PUNCTUATION = frozenset(" '’.,()-")
# ASCII digits only: other scripts' digits would be stored as typed and then missed by
# duplicate checks, look-ups and reports.
UNIT_CODE_RE = re.compile(r"^[A-Z]{2,6}[0-9]{3,5}[A-Z]?$")


def normalise_student_name(value: str) -> str:
    """Spaces squeezed, and one form for one name: "Zoë" typed as e + combining
    diaeresis is stored composed, so duplicate checks and look-ups find it."""
    return unicodedata.normalize("NFC", " ".join((value or "").split()))


def normalise_student_number(value: str) -> str:
    """Without the spaces people type to group the digits ("2123 4567")."""
    return re.sub(r"\s+", "", value or "")


def normalise_unit_code(value: str) -> str:
    """Without spaces, in capitals: "cits 3200" is CITS3200."""
    return re.sub(r"\s+", "", value or "").upper()


def is_plausible_name(name: str) -> bool:
    """A letter first, then letters, combining marks (Devanagari vowel signs, a
    decomposed "ë") or name punctuation."""
    if not name or not unicodedata.category(name[0]).startswith("L"):
        return False
    return all(unicodedata.category(char)[0] in "LM" or char in NAME_PUNCTUATION for char in name)


def validate_student_name(value: str) -> None:
    if not is_plausible_name(value):
        raise ValidationError(
            "Student Name can hold letters, spaces, hyphens and apostrophes only.",
            code="student_name",
        )


def validate_student_number(value: str) -> None:
    """The service's pattern (RESQ_STUDENT_NUMBER_PATTERN), read when checking so that
    a changed setting applies at once; ASCII digits only, as printed on the card."""
    if not re.fullmatch(settings.RESQ_STUDENT_NUMBER_PATTERN, value, flags=re.ASCII):
        raise ValidationError(
            f"Enter the Student Number as {settings.RESQ_STUDENT_NUMBER_HELP}.",
            code="student_number",
        )


def validate_unit_code(value: str) -> None:
    """Optional: empty is no unit code."""
    if value and not UNIT_CODE_RE.fullmatch(value):
        raise ValidationError(
            "Enter a Unit Code like CITS3200, or leave it empty.", code="unit_code"
        )


def clean_student_number(value: str) -> str:
    """A typed student number, normalised, or ValidationError: for forms that look a
    number up rather than write a visit."""
    number = normalise_student_number(value)
    validate_student_number(number)
    return number
