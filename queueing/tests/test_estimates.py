"""Wait estimates: the simulation against waits worked by hand, and the replay of
history that checks them."""

import io
import random
import re
from datetime import date, datetime, time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from queueing.estimates import Estimate, estimate_wait
from queueing.resources import LegacyVisitResource, parse_csv
from queueing.tests.factories import finished_visit


def estimate(**state) -> Estimate | None:
    return estimate_wait(rng=random.Random(1), **state)


def test_it_starts_a_student_at_once_when_an_adviser_is_free():
    assert estimate(ahead=0, staff=2, running=[5.0], lengths=[20.0]) == Estimate(0, 0, 0)


def test_it_waits_for_the_sessions_in_progress_and_the_students_ahead():
    # Two advisers in sessions of 30 minutes that have run 10: both free at 20; the
    # two students ahead start then and finish at 50, when this student starts.
    assert estimate(ahead=0, staff=2, running=[10.0, 10.0], lengths=[30.0]) == Estimate(20, 20, 20)
    assert estimate(ahead=2, staff=2, running=[10.0, 10.0], lengths=[30.0]) == Estimate(50, 50, 50)
    # A session already longer than any seen ends any moment now.
    assert estimate(ahead=0, staff=1, running=[45.0], lengths=[30.0]) == Estimate(0, 0, 0)
    # The desk's own minutes to call a student come on top.
    assert estimate(ahead=0, staff=1, running=[], lengths=[30.0], delays=[2.0]) == Estimate(2, 2, 2)


def test_it_gives_a_range_as_wide_as_the_sessions_vary():
    found = estimate(ahead=3, staff=1, running=[], lengths=[10.0, 20.0, 30.0, 40.0, 50.0])
    # Three sessions ahead, each 10-50 minutes: somewhere between 30 and 150.
    assert 30 <= found.low < found.median < found.high <= 150


def test_it_allows_for_an_adviser_never_seen_in_a_session_where_staff_is_inferred():
    # One session seen, 10 of 30 minutes gone: 20 to wait, or none if as likely as not
    # another adviser was free all along.
    assert estimate(ahead=0, staff=1, running=[10.0], lengths=[30.0]) == Estimate(20, 20, 20)
    found = estimate(ahead=0, staff=1, running=[10.0], lengths=[30.0], unseen=0.5)
    assert (found.low, found.high) == (0, 20)


def test_it_gives_no_estimate_with_nothing_to_go_on():
    assert estimate(ahead=0, staff=0, running=[], lengths=[20.0]) is None
    assert estimate(ahead=0, staff=2, running=[], lengths=[]) is None


def _visit(day: date, at: time, *, waited: int, minutes: int) -> None:
    finished_visit(timezone.make_aware(datetime.combine(day, at)), waited=waited, minutes=minutes)


@pytest.mark.django_db
def test_it_replays_history_as_each_arrival_saw_it():
    # A week before: four 20-minute sessions, the lengths to draw from.
    for at in (time(10), time(10, 30), time(11), time(11, 30)):
        _visit(date(2026, 8, 3), at, waited=0, minutes=20)
    # Then Ana at 10:00 finds the adviser free; Ben at 10:05 waits for the rest of her
    # session: 15 minutes, as the replay estimates (the naive estimate says 20, then
    # (0 + 1) × 20 for Ana: off by 20 and 5).
    _visit(date(2026, 8, 10), time(10), waited=0, minutes=20)
    _visit(date(2026, 8, 10), time(10, 5), waited=15, minutes=20)
    out = io.StringIO()

    call_command("replay_estimates", "--from", "2026-08-10", "--to", "2026-08-10", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("2 of 2 estimates inferred the staff on duty")
    assert lines[-1] == (
        "2 waits; median absolute error 0.0 min; within range 100 %; "
        "naive median absolute error 12.5 min"
    )


@pytest.mark.django_db
def test_it_says_when_there_is_nothing_to_replay():
    with pytest.raises(CommandError, match="No seen student"):
        call_command("replay_estimates", "--from", "2026-08-10", "--to", "2026-08-16")
    with pytest.raises(CommandError, match="No team is called 'Nobody'"):
        call_command("replay_estimates", "--from", "2026-08-10", "--to", "2026-08-16",
                     "--team", "Nobody")  # fmt: skip


@pytest.mark.django_db
def test_it_replays_imported_old_system_history_inferring_the_staff(manager):
    sample = Path(__file__).with_name("data") / "old_system_sample.csv"
    result = LegacyVisitResource().import_data(
        parse_csv(sample.read_text(encoding="utf-8")), dry_run=False, user=manager
    )
    assert not result.has_errors()
    out = io.StringIO()

    call_command("replay_estimates", "--from", "2021-10-18", "--to", "2021-10-19", stdout=out)

    first, last = out.getvalue().splitlines()
    waits = int(last.split()[0])
    assert first.startswith(f"{waits} of {waits} estimates inferred the staff on duty")
    assert re.fullmatch(
        r"\d+ waits; median absolute error \d+\.\d min; within range \d+ %; "
        r"naive median absolute error \d+\.\d min",
        last,
    )
