from datetime import date

import pytest
from django.http import QueryDict

from queueing.models import Team
from reporting.forms import MAX_RANGE_DAYS, ReportFilterForm
from reporting.models import Term, TermBreak

pytestmark = pytest.mark.django_db

TODAY = date(2026, 8, 5)  # a Wednesday


@pytest.fixture
def semester():
    term = Term.objects.create(
        name="Semester 2 2026", first_day=date(2026, 7, 27), last_day=date(2026, 11, 6)
    )
    TermBreak.objects.create(term=term, first_day=date(2026, 9, 28), last_day=date(2026, 10, 2))
    return term


def report(query: str = "", **kwargs):
    form = ReportFilterForm(
        QueryDict(query) if query else None,
        teams=list(Team.objects.all()),
        terms=list(Term.objects.prefetch_related("breaks")),
    )
    return form.report(today=TODAY)


def test_it_shows_the_week_of_today_by_default():
    r = report()
    assert (r.filter.start, r.filter.end, r.filter.team) == (
        date(2026, 8, 3),
        date(2026, 8, 9),
        None,
    )
    assert r.label == "Week of Mon 3 Aug 2026"
    assert r.messages == []


def test_it_shows_the_week_containing_a_day_with_previous_and_next():
    r = report("view=week&day=2026-08-13&team=librarian")
    assert (r.filter.start, r.filter.end) == (date(2026, 8, 10), date(2026, 8, 16))
    assert r.filter.team.slug == "librarian"
    assert r.previous_query == "view=week&day=2026-08-03&team=librarian"
    assert r.next_query == "view=week&day=2026-08-17&team=librarian"


def test_it_shows_a_date_range():
    r = report("view=range&start=2026-07-01&end=2026-08-31")
    assert (r.filter.start, r.filter.end) == (date(2026, 7, 1), date(2026, 8, 31))
    assert r.label == "Wed 1 Jul 2026 – Mon 31 Aug 2026"
    assert r.previous_query == ""


def test_it_swaps_a_reversed_range_and_says_so():
    r = report("view=range&start=2026-08-31&end=2026-07-01")
    assert (r.filter.start, r.filter.end) == (date(2026, 7, 1), date(2026, 8, 31))
    assert "wrong way round" in r.messages[0]


def test_it_clamps_a_fifty_year_range_and_says_so():
    r = report("view=range&start=2001-01-01&end=2051-01-01")
    assert r.filter.end == date(2051, 1, 1)
    assert len(r.filter.days) == MAX_RANGE_DAYS
    assert "limited to 3 years" in r.messages[0]


def test_it_shows_a_whole_term_or_one_teaching_week(semester):
    whole = report(f"view=term&term={semester.pk}")
    assert (whole.filter.start, whole.filter.end) == (semester.first_day, semester.last_day)
    assert whole.label == "Semester 2 2026"

    week = report(f"view=term&term={semester.pk}&term_week=10")  # after the study break
    assert (week.filter.start, week.filter.end) == (date(2026, 10, 5), date(2026, 10, 11))
    assert week.label == "Semester 2 2026, week 10"
    assert week.term == semester


def test_it_picks_the_current_term_when_none_is_chosen(semester):
    assert report("view=term").filter.start == semester.first_day


def test_it_accepts_a_team_id_as_well_as_a_slug():
    team = Team.objects.get(slug="studysmarter")
    assert report(f"team={team.pk}").filter.team == team


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("view=week&day=2026-13-45", "Ignored day “2026-13-45”"),
        ("view=range&start=yesterday&end=2026-08-01", "Ignored start date “yesterday”"),
        ("view=week&team=999", "Ignored team “999”"),
        ("view=week&team=%27%3B+DROP+TABLE+queueing_visit%3B--", "Ignored team"),
        ("view=%3Cscript%3Ealert(1)%3C/script%3E", "Ignored view"),
        ("view=term&term=12345", "Ignored term “12345”"),
        ("view=term&term=abc", "Ignored term “abc”"),
        ("view=week&day=99999-01-01", "Ignored day"),
    ],
)
def test_it_corrects_bad_values_with_a_message(semester, query, words):
    r = report(query)
    assert any(words in m for m in r.messages), r.messages
    assert r.filter.start <= r.filter.end


def test_it_explains_a_missing_teaching_week(semester):
    r = report(f"view=term&term={semester.pk}&term_week=20")
    assert (r.filter.start, r.filter.end) == (semester.first_day, semester.last_day)
    assert "no teaching week 20" in r.messages[0]


def test_it_falls_back_to_the_week_when_no_term_exists():
    r = report("view=term")
    assert r.label == "Week of Mon 3 Aug 2026"
    assert "No terms are set up" in r.messages[0]


def test_it_shortens_very_long_bad_values_in_messages():
    r = report("day=" + "x" * 500)
    assert len(r.messages[0]) < 150


def test_it_refuses_dates_that_would_overflow():
    r = report("view=range&start=0001-01-01&end=9999-12-31")
    assert any("between 2000 and 2099" in m for m in r.messages)
    assert r.filter.end == TODAY
