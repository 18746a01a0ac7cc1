"""The demo data command: realistic, consistent history and a live board for today."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from queueing.models import Board, StaffingChange, Team, Visit, VisitEvent
from queueing.validators import UNIT_CODE_RE, is_plausible_name

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def debug_on(settings):
    # As `make run` has it: demo data is for development.
    settings.DEBUG = True


def demo_data(*args: str) -> str:
    out = StringIO()
    call_command("demo_data", *args, stdout=out)
    return out.getvalue()


def history() -> list[Visit]:
    return list(Visit.objects.filter(arrived_at__lt=today_starts()).order_by("arrived_at", "pk"))


def today_starts():
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def snapshot() -> list[tuple]:
    return list(
        Visit.objects.order_by("arrived_at", "pk").values_list(
            "student_name",
            "student_number",
            "unit_code",
            "team__slug",
            "enquiry_type__name",
            "status",
            "outcome",
            "arrived_at",
            "started_at",
            "ended_at",
        )
    )


def test_it_makes_visits_only_on_weekdays_during_the_drop_in():
    demo_data("--weeks", "3", "--today", "0")
    visits = history()
    assert len(visits) > 50
    for visit in visits:
        arrived = timezone.localtime(visit.arrived_at)
        assert arrived.weekday() < 5
        assert 10 <= arrived.hour < 12
        if visit.started_at:
            assert timezone.localtime(visit.started_at).hour < 12
    days = {timezone.localtime(visit.arrived_at).date() for visit in visits}
    yesterday = timezone.localdate() - timedelta(days=1)
    assert max(days) <= yesterday
    assert min(days) > yesterday - timedelta(weeks=3)


def test_it_keeps_statuses_outcomes_and_timestamps_consistent():
    demo_data("--weeks", "4", "--today", "0")
    outcomes = defaultdict(int)
    for visit in history():
        outcomes[visit.outcome] += 1
        assert visit.ended_at >= visit.arrived_at
        if visit.status == Visit.Status.FINISHED:
            assert visit.outcome == Visit.Outcome.FINISHED
            assert visit.ended_at >= visit.started_at >= visit.arrived_at
            wait = visit.started_at - visit.arrived_at
            session = visit.ended_at - visit.started_at
            assert wait <= timedelta(minutes=40)
            assert timedelta(minutes=5) <= session <= timedelta(minutes=30)
            assert visit.started_by_id and visit.ended_by_id
        else:
            assert visit.status == Visit.Status.REMOVED
            assert visit.outcome in Visit.REMOVAL_OUTCOMES
            assert visit.started_at is None
    total = sum(outcomes.values())
    removed = outcomes["cancelled"] + outcomes["no_show"]
    assert 0.02 < removed / total < 0.16
    assert 0 < outcomes["out_of_time"] / total < 0.12


def test_it_makes_arrivals_and_waits_peak_around_eleven():
    demo_data("--weeks", "4", "--today", "0", "--no-events")
    arrivals = defaultdict(int)
    waits = defaultdict(list)
    for visit in history():
        arrived = timezone.localtime(visit.arrived_at)
        half_hour = (arrived.hour - 10) * 2 + arrived.minute // 30
        arrivals[half_hour] += 1
        if visit.started_at:
            waits[half_hour].append((visit.started_at - visit.arrived_at).total_seconds())
    assert arrivals[1] + arrivals[2] > 1.6 * (arrivals[0] + arrivals[3])

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    assert mean(waits[2]) > 2 * mean(waits[0])


def test_it_makes_names_numbers_and_unit_codes_the_desk_would_accept():
    demo_data("--weeks", "4", "--today", "0")
    visits = history()
    for visit in visits:
        assert is_plausible_name(visit.student_name), visit.student_name
        assert len(visit.student_number) == 8
        assert visit.student_number.isdigit()
        assert visit.unit_code == "" or UNIT_CODE_RE.fullmatch(visit.unit_code)
    names_by_number = defaultdict(set)
    for visit in visits:
        names_by_number[visit.student_number].add(visit.student_name)
    # Returning students: several visits under one number, always with the same name.
    assert len(names_by_number) < len(visits)
    assert all(len(names) == 1 for names in names_by_number.values())
    teams = {visit.team.slug for visit in visits}
    assert teams == {"studysmarter", "librarian"}


def test_it_writes_the_audit_trail_each_visit_would_have():
    demo_data("--weeks", "1", "--today", "0")
    for visit in Visit.objects.prefetch_related("events"):
        trail = [(event.action, event.at) for event in visit.events.all()]
        match visit.outcome:
            case Visit.Outcome.FINISHED:
                expected = [
                    ("added", visit.arrived_at),
                    ("started", visit.started_at),
                    ("finished", visit.ended_at),
                ]
            case Visit.Outcome.OUT_OF_TIME:
                expected = [("added", visit.arrived_at), ("queue_closed", visit.ended_at)]
            case _:
                expected = [("added", visit.arrived_at), ("removed", visit.ended_at)]
        assert trail == expected


def test_it_skips_the_audit_trail_when_asked():
    demo_data("--weeks", "1", "--today", "0", "--no-events")
    assert Visit.objects.exists()
    assert not VisitEvent.objects.exists()


def test_it_never_has_more_sessions_running_than_staff_on_duty():
    demo_data("--weeks", "2", "--today", "0")
    changes = defaultdict(list)
    for change in StaffingChange.objects.order_by("at", "pk"):
        changes[change.team_id].append(change)
    sessions = list(Visit.objects.filter(status=Visit.Status.FINISHED))
    assert sessions
    for visit in sessions:
        on_duty = [c for c in changes[visit.team_id] if c.at <= visit.started_at][-1].available
        running = sum(
            1
            for other in sessions
            if other.team_id == visit.team_id
            and other.started_at <= visit.started_at < other.ended_at
        )
        assert running <= on_duty
        # Nobody was sent home while a session was still running.
        off = next(
            c for c in changes[visit.team_id] if c.at > visit.started_at and c.available == 0
        )
        assert off.at >= visit.ended_at


def test_it_sets_staffing_at_opening_and_back_to_none_after_close():
    demo_data("--weeks", "1", "--today", "0")
    days = {timezone.localtime(visit.arrived_at).date() for visit in history()}
    for team in Team.objects.filter(is_active=True):
        changes = list(team.staffing_changes.order_by("at", "pk"))
        by_day = defaultdict(list)
        for change in changes:
            by_day[timezone.localtime(change.at).date()].append(change)
        assert set(by_day) >= days
        for day_changes in by_day.values():
            opening, closing = day_changes[0], day_changes[-1]
            assert timezone.localtime(opening.at).hour == 9
            assert opening.available == opening.delta > 0
            assert closing.available == 0
            assert timezone.localtime(closing.at).hour >= 12
            assert sum(change.delta for change in day_changes) == 0


def test_it_leaves_the_requested_students_waiting_today():
    version = Board.current_version()
    demo_data("--weeks", "1", "--today", "5")
    now = timezone.now()
    waiting = list(Visit.objects.filter(status=Visit.Status.WAITING))
    assert len(waiting) == 5
    waits = sorted(now - visit.arrived_at for visit in waiting)
    assert waits[0] >= timedelta(minutes=1)
    assert waits[-1] <= timedelta(minutes=30)
    # Timers change colour at 10 and 20 minutes: the board shows each band.
    assert {min(wait // timedelta(minutes=10), 2) for wait in waits} == {0, 1, 2}
    assert {visit.team.slug for visit in waiting} == {"studysmarter", "librarian"}
    assert "Zoë Ng" in {visit.student_name for visit in waiting}
    assert Visit.objects.filter(status=Visit.Status.IN_SESSION).count() == 1
    assert VisitEvent.objects.filter(visit__in=waiting, action="added").count() == 5
    assert Team.objects.get(slug="studysmarter").available_staff == 2
    assert Team.objects.get(slug="librarian").available_staff == 1
    latest = StaffingChange.objects.filter(team__slug="studysmarter").latest()
    assert latest.available == 2
    assert latest.at > now - timedelta(hours=1)
    assert Board.current_version() > version


def test_it_brings_back_a_known_student_today():
    demo_data("--weeks", "1", "--today", "4")
    today = Visit.objects.filter(status=Visit.Status.WAITING)
    numbers_seen_before = set(
        Visit.objects.filter(ended_at__isnull=False).values_list("student_number", flat=True)
    )
    assert any(visit.student_number in numbers_seen_before for visit in today)


def test_it_makes_nothing_when_asked_to_only_fill_an_empty_database():
    demo_data("--weeks", "1")
    before = (Visit.objects.count(), VisitEvent.objects.count(), StaffingChange.objects.count())
    output = demo_data("--weeks", "1", "--if-empty")
    after = (Visit.objects.count(), VisitEvent.objects.count(), StaffingChange.objects.count())
    assert after == before
    assert "no demo data made" in output
    assert "Log in as demo / demo" in output


def test_it_fills_an_empty_database_when_asked_to_only_fill_an_empty_one():
    output = demo_data("--weeks", "1", "--if-empty")
    assert Visit.objects.exists()
    assert "Made" in output


def test_it_makes_demo_users_who_can_log_in_with_their_roles(client):
    output = demo_data("--weeks", "0", "--today", "0")
    demo = get_user_model().objects.get(username="demo")
    leader = get_user_model().objects.get(username="leader")
    assert set(demo.groups.values_list("name", flat=True)) == {
        "Student leader",
        "Coordinator",
        "Manager",
    }
    assert demo.is_staff
    assert demo.first_name == "Demo"
    assert list(leader.groups.values_list("name", flat=True)) == ["Student leader"]
    assert not leader.is_staff
    assert leader.first_name == "Lee"
    assert client.login(username="demo", password="demo")
    assert client.login(username="leader", password="leader")
    assert "Log in as demo / demo (every role) or leader / leader (desk only)" in output


def test_it_keeps_the_demo_users_and_their_sessions_on_a_second_run():
    demo_data("--weeks", "0", "--today", "0")
    hash_before = get_user_model().objects.get(username="demo").password
    demo_data("--weeks", "0", "--today", "0", "--if-empty")
    assert get_user_model().objects.filter(username__in=["demo", "leader"]).count() == 2
    # A new hash would sign out every browser logged in as demo.
    assert get_user_model().objects.get(username="demo").password == hash_before


def test_it_repairs_a_changed_demo_user(client):
    demo_data("--weeks", "0", "--today", "0")
    leader = get_user_model().objects.get(username="leader")
    leader.set_password("something else")
    leader.is_active = False
    leader.save()
    leader.groups.clear()
    demo_data("--weeks", "0", "--today", "0")
    assert client.login(username="leader", password="leader")
    assert list(leader.groups.values_list("name", flat=True)) == ["Student leader"]


def test_it_makes_exactly_the_number_of_visits_asked_for():
    output = demo_data("--visits", "700", "--today", "0", "--no-events")
    assert Visit.objects.count() == 700
    assert "Made 700 visits" in output


def test_it_makes_more_visits_mid_semester_than_at_either_end():
    demo_data("--weeks", "12", "--today", "0", "--no-events")
    first = timezone.localtime(history()[0].arrived_at).date()
    per_week = defaultdict(int)
    for visit in history():
        per_week[(timezone.localtime(visit.arrived_at).date() - first).days // 7] += 1
    ends = per_week[0] + per_week[11]
    middle = per_week[5] + per_week[6]
    assert middle > ends * 1.4


def test_it_makes_the_same_data_from_the_same_seed():
    demo_data("--weeks", "2", "--today", "0", "--seed", "7")
    first = snapshot()
    Visit.objects.all().delete()
    StaffingChange.objects.all().delete()
    demo_data("--weeks", "2", "--today", "0", "--seed", "7")
    assert snapshot() == first
    Visit.objects.all().delete()
    demo_data("--weeks", "2", "--today", "0", "--seed", "8")
    assert snapshot() != first


def test_it_refuses_to_make_demo_logins_or_data_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off") as refused:
        demo_data("--weeks", "1", "--today", "1")
    assert "demo / demo" in str(refused.value)
    assert "--allow-public-demo-logins" in str(refused.value)
    assert not get_user_model().objects.filter(username__in=["demo", "leader"]).exists()
    assert not Visit.objects.exists()


def test_it_makes_demo_logins_with_debug_off_only_when_told_to(settings):
    settings.DEBUG = False
    output = demo_data("--weeks", "0", "--today", "0", "--allow-public-demo-logins")
    assert get_user_model().objects.filter(username="demo").exists()
    assert "Log in as demo / demo" in output


def test_it_refuses_negative_sizes():
    with pytest.raises(CommandError):
        demo_data("--weeks", "-1")


def test_it_packs_visits_into_recent_days_at_a_higher_density():
    output = demo_data("--visits", "3000", "--per-day", "600", "--today", "0", "--no-events")
    assert Visit.objects.count() == 3000
    assert "Made 3,000 visits" in output
    days = {timezone.localtime(visit.arrived_at).date() for visit in history()}
    # 3,000 visits at about 600 a day: a handful of drop-in days, all recent.
    assert 3 <= len(days) <= 9
    assert min(days) > timezone.localdate() - timedelta(weeks=3)


def test_it_staffs_a_busier_service_so_sessions_never_outnumber_staff():
    demo_data("--weeks", "1", "--per-day", "150", "--today", "0", "--no-events")
    visits = history()
    per_day = len(visits) / len({timezone.localtime(v.arrived_at).date() for v in visits})
    assert 75 < per_day < 300
    changes = defaultdict(list)
    for change in StaffingChange.objects.order_by("at", "pk"):
        changes[change.team_id].append(change)
    sessions = sorted(
        (v for v in visits if v.status == Visit.Status.FINISHED), key=lambda v: v.started_at
    )
    # Most students are still seen: the advisers grew with the queue.
    assert len(sessions) > 0.5 * len(visits)
    for visit in sessions:
        on_duty = [c for c in changes[visit.team_id] if c.at <= visit.started_at][-1].available
        running = sum(
            1
            for other in sessions
            if other.team_id == visit.team_id
            and other.started_at <= visit.started_at < other.ended_at
        )
        assert running <= on_duty


def test_it_draws_large_daily_counts_without_underflow():
    import random

    from queueing.management.commands.demo_data import poisson

    rng = random.Random(1)
    draws = [poisson(rng, 2000.0) for _ in range(200)]
    assert 1950 < sum(draws) / len(draws) < 2050
    assert min(draws) > 1800


def test_it_refuses_a_density_out_of_range():
    with pytest.raises(CommandError):
        demo_data("--weeks", "1", "--per-day", "0")
