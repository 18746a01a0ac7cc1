from datetime import date

import pytest
from django.contrib.auth.models import Group

from reporting.models import Term, TermBreak

pytestmark = pytest.mark.django_db


@pytest.fixture
def semester():
    # Semester 2 2026 at UWA: teaching from Monday 27 July, study break 28 Sep – 2 Oct.
    term = Term.objects.create(
        name="Semester 2 2026", first_day=date(2026, 7, 27), last_day=date(2026, 11, 6)
    )
    TermBreak.objects.create(term=term, first_day=date(2026, 9, 28), last_day=date(2026, 10, 2))
    return term


def test_it_numbers_teaching_weeks_skipping_the_break(semester):
    assert semester.week_of(date(2026, 7, 27)) == 1
    assert semester.week_of(date(2026, 8, 28)) == 5
    assert semester.week_of(date(2026, 9, 25)) == 9
    assert semester.week_of(date(2026, 9, 30)) is None  # the study break
    assert semester.week_of(date(2026, 10, 5)) == 10
    assert semester.week_of(date(2026, 11, 20)) is None  # after the term
    assert semester.week_start(10) == date(2026, 10, 5)


def test_it_finds_the_term_of_a_day(semester):
    assert Term.for_date(date(2026, 8, 3)) == semester
    assert Term.for_date(date(2026, 12, 1)) is None


def test_it_gives_coordinators_and_managers_the_reports():
    for role in ("Coordinator", "Manager"):
        codenames = set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))
        assert "view_reports" in codenames
    leader = Group.objects.get(name="Student leader")
    assert not leader.permissions.filter(codename="view_reports").exists()
