from datetime import date

import pytest

from reporting.models import Term, TermBreak


@pytest.fixture
def terms():
    """Two semesters of 2026, the second with a study break."""
    first = Term.objects.create(
        name="Semester 1 2026", first_day=date(2026, 2, 23), last_day=date(2026, 6, 5)
    )
    second = Term.objects.create(
        name="Semester 2 2026", first_day=date(2026, 7, 27), last_day=date(2026, 11, 6)
    )
    TermBreak.objects.create(term=second, first_day=date(2026, 9, 28), last_day=date(2026, 10, 2))
    return first, second
