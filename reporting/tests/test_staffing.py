"""Erlang C against values worked by hand and published, and the advice it gives."""

import csv
import io
from datetime import date, datetime, time

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from queueing.models import StaffingChange, Team
from queueing.tests.factories import finished_visit
from reporting.staffing import advisers_needed, erlang_c, forecast_week, share_within


def test_it_gives_the_textbook_probability_of_waiting():
    # M/M/2 at half load waits with 2ρ²/(1 + ρ) = 1/3; 2 erlangs on 3 advisers: 4/9
    # (Erlang B is 4/19 there, and C = 3B / (3 − 2(1 − B))).
    assert erlang_c(1, 2) == pytest.approx(1 / 3)
    assert erlang_c(2, 3) == pytest.approx(4 / 9)
    # 120 customers an hour, 3 minutes each, 10 assistants: "from the Erlang C curve,
    # the probability of waiting is about 0.10" (a queueing course's exercise).
    assert erlang_c(6, 10) == pytest.approx(0.10, abs=0.005)


def test_it_says_everyone_waits_when_the_advisers_cannot_keep_up():
    assert erlang_c(3, 3) == 1.0
    assert share_within(12, 20, 4, 15) == 0.0
    assert advisers_needed(120, 20, most=20) is None


def test_it_advises_the_fewest_advisers_that_meet_the_target():
    # 6 students an hour, 20-minute sessions (2 erlangs), 80 % within 15 minutes, by
    # hand: 3 advisers start 1 − 4/9·e^(−0.75) = 79.0 %, 4 start 96.1 %.
    assert share_within(6, 20, 3, 15) == pytest.approx(0.790, abs=0.001)
    assert share_within(6, 20, 4, 15) == pytest.approx(0.961, abs=0.001)
    assert advisers_needed(6, 20) == 4
    # 30 an hour, 5 minutes each, 90 % not kept waiting at all: 5 advisers leave
    # 13.0 % waiting, 6 leave 4.7 %.
    assert advisers_needed(30, 5, share=0.9, within_minutes=0) == 6


def test_it_needs_nobody_for_an_hour_nobody_comes():
    assert advisers_needed(0, 20) == 0
    assert share_within(0, 20, 0, 15) == 1.0


def test_it_needs_one_adviser_for_sessions_that_took_no_time():
    # Sessions finished as soon as they started (a desk clicking through) last 0 minutes.
    assert share_within(5, 0, 1, 15) == 1.0
    assert advisers_needed(5, 0) == 1


def _seen(day: date, hour: int, minutes: int, team: Team | None = None) -> None:
    """A finished visit that arrived on `day` at `hour`:05 local and had a session of
    `minutes`."""
    finished_visit(
        timezone.make_aware(datetime.combine(day, time(hour, 5))),
        waited=10,
        minutes=minutes,
        team=team or Team.objects.get(slug="studysmarter"),
    )


@pytest.mark.django_db
def test_it_forecasts_an_hour_from_the_same_week_before_and_this_terms_recent_weeks(terms):
    team = Team.objects.get(slug="studysmarter")
    # Semester 2's week 3 starts on 10 August; Semester 1's week 3 on 9 March, and
    # Semester 2's weeks 1 and 2 on 27 July and 3 August.
    for minutes in (20, 30, 20, 30):
        _seen(date(2026, 3, 9), 10, minutes)
    for minutes in (20, 30):
        _seen(date(2026, 7, 27), 10, minutes)
    for minutes in (20, 30, 20, 30):
        _seen(date(2026, 8, 3), 10, minutes)
    _seen(date(2026, 8, 4), 14, 40)
    # Not read: another team, and the week forecast itself.
    _seen(date(2026, 8, 3), 10, 90, team=Team.objects.get(slug="librarian"))
    _seen(date(2026, 8, 10), 10, 90)

    forecast = forecast_week(team, date(2026, 8, 12))

    assert forecast.monday == date(2026, 8, 10)
    assert forecast.same_week == [date(2026, 3, 9)]
    # 20 July, the third week before, saw nobody at all (closed, or no history): left out.
    assert forecast.recent == [date(2026, 7, 27), date(2026, 8, 3)]
    monday, tuesday = forecast.hours
    # Monday 10:00: 4 in the same week last term; 2 and then 4 in the weeks before,
    # counted 2 and 3 times (the later the more): (2·2 + 4·3) / 5 = 3.2.
    assert (monday.weekday, monday.hour) == (1, 10)
    assert monday.arrivals == pytest.approx((4 + 3.2) / 2)
    assert monday.session_minutes == pytest.approx(25)
    # 3.6 students of 25 minutes (1.5 erlangs): 2 advisers start 52.4 % within 15
    # minutes, 3 start 90.4 %.
    assert monday.advisers() == 3
    # Tuesday 14:00: none in the same week last term, 1·3 / 5 in the weeks before; one
    # session is too few for its own length, so all 11 sessions' mean.
    assert (tuesday.weekday, tuesday.hour) == (2, 14)
    assert tuesday.arrivals == pytest.approx((0 + 3 / 5) / 2)
    assert tuesday.session_minutes == pytest.approx((5 * 20 + 5 * 30 + 40) / 11)


@pytest.fixture
def busy_mondays(terms):
    """Mondays at 10:00 in Semester 1's week 3 and Semester 2's weeks 1 and 2: 3.6
    students of 25 minutes forecast for Monday 10:00 of Semester 2's week 3."""
    for day, sessions in [
        (date(2026, 3, 9), (20, 30, 20, 30)),
        (date(2026, 7, 27), (20, 30)),
        (date(2026, 8, 3), (20, 30, 20, 30)),
    ]:
        for minutes in sessions:
            _seen(day, 10, minutes)


@pytest.fixture
def early_august(monkeypatch):
    """Today is Wednesday 5 August 2026: the week of 10 August is still to come."""
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: date(2026, 8, 5))


@pytest.mark.django_db
def test_it_shows_the_advisers_each_hour_needs(client, coordinator, busy_mondays, early_august):
    client.force_login(coordinator)

    page = client.get(reverse("reporting:staffing"), {"week": "2026-08-12"})

    assert page.status_code == 200
    text = page.text
    assert "Mon 10 Aug – Sun 16 Aug 2026" in text
    assert "80 % of students start within 15 minutes" in text
    studysmarter = text[
        text.index('id="advice-studysmarter"') : text.index('id="advice-librarian"')
    ]
    monday_ten = studysmarter[studysmarter.index("10:00") :]
    assert "<strong>3</strong>" in monday_ten[: monday_ten.index("</td>")]
    assert "3.6 students · 25 min" in monday_ten
    assert "week of 9 Mar 2026" in studysmarter
    # A stricter target needs more: 95 % within 5 minutes.
    strict = client.get(
        reverse("reporting:staffing"), {"week": "2026-08-12", "share": "95", "within": "5"}
    ).text
    monday_ten = strict[strict.index("10:00") :]
    assert "<strong>3</strong>" not in monday_ten[: monday_ten.index("</td>")]


@pytest.mark.django_db
def test_it_corrects_what_it_cannot_use_and_says_so(client, coordinator):
    client.force_login(coordinator)

    page = client.get(reverse("reporting:staffing"), {"week": "soon", "share": "5", "within": "x"})

    assert page.status_code == 200
    assert "“soon” is not a date like 2026-08-03; showing next week." in page.text
    assert "The share of students must be between 50 and 99; it is 80." in page.text
    assert "“x” is not a whole number; the number of minutes is 15." in page.text
    assert "80 % of students start within 15 minutes" in page.text


@pytest.mark.django_db
def test_it_downloads_the_advice_as_a_roster(client, coordinator, busy_mondays, early_august):
    client.force_login(coordinator)

    response = client.get(reverse("reporting:staffing_csv"), {"week": "2026-08-10"})

    assert response["Content-Disposition"] == 'attachment; filename="resq-staffing-2026-08-10.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:6] == ["Team", "Date", "Day", "Hour", "Advisers needed", "Students expected"]
    assert rows[1][:7] == ["STUDYSmarter", "2026-08-10", "Mon", "10:00", "3", "3.6", "25.0"]
    # Monday to Friday for each hour with a forecast: one hour, five days, one team (the
    # librarians had no visits to forecast from).
    assert len(rows) == 1 + 5 * 1


@pytest.mark.django_db
def test_it_shows_a_past_week_beside_the_staff_on_duty(client, coordinator, leader, terms):
    team = Team.objects.get(slug="studysmarter")
    # 10:00 on Monday to Thursday, 3-6 August 2026: 4 students of 20 and 30 minutes.
    # 4 an hour of 25 minutes (1.67 erlangs), by hand: 2 advisers start 38 % within 15
    # minutes, 3 start 86.5 %: 3 needed.
    for day in range(3, 7):
        for minutes in (20, 30, 20, 30):
            _seen(date(2026, 8, day), 10, minutes)
    # On duty: 3 on Monday, 1 on Tuesday, 1 then 5 from 10:30 on Wednesday (3 on
    # average), 5 on Thursday.
    for day, at, available, delta in [(3, time(8), 3, 3), (4, time(8), 1, -2),
                                      (5, time(10, 30), 5, 4)]:  # fmt: skip
        StaffingChange.objects.create(
            team=team,
            at=timezone.make_aware(datetime.combine(date(2026, 8, day), at)),
            available=available,
            delta=delta,
            by=leader,
        )
    client.force_login(coordinator)

    page = client.get(reverse("reporting:staffing"), {"week": "2026-08-03"}).text

    advisers = page[page.index('id="advice-studysmarter"') : page.index('id="advice-librarian"')]
    monday, tuesday, wednesday, thursday = advisers.split("<td")[1:5]
    assert "<strong>3</strong>" in monday and "4 students · 25 min" in monday
    assert "on duty 3 · ✓ as needed" in monday
    assert "on duty 1 · ▼ 2 short" in tuesday
    assert "on duty 3 · ✓ as needed" in wednesday
    assert "on duty 5 · ▲ 2 more than needed" in thursday
    assert "1 hour short" in advisers
    roster = client.get(reverse("reporting:staffing_csv"), {"week": "2026-08-03"})
    rows = list(csv.reader(io.StringIO(roster.content.decode())))
    assert rows[0][7:9] == ["Staff on duty", "Against the target"]
    assert rows[2][:9] == ["STUDYSmarter", "2026-08-04", "Tue", "10:00", "3", "4", "25.0", "1.0",
                           "▼ 2 short"]  # fmt: skip


@pytest.mark.django_db
def test_it_infers_the_staff_on_duty_where_none_was_recorded(client, coordinator, terms):
    # Imported history: no staffing, three sessions all starting at 10:15.
    for minutes in (20, 30, 90):
        _seen(date(2026, 8, 3), 10, minutes)
    client.force_login(coordinator)

    page = client.get(reverse("reporting:staffing"), {"week": "2026-08-03"}).text

    advisers = page[page.index('id="advice-studysmarter"') : page.index('id="advice-librarian"')]
    assert "the most sessions that ran at once" in advisers
    assert "on duty 3" in advisers.split("<td")[1]


@pytest.mark.django_db
def test_it_backtests_the_forecast_against_last_weeks_hour(terms):
    # Monday 10:00 from 20 July to 10 August 2026: 2, 4, 2, then 4 in Semester 2's
    # week 3. Semester 1's week 3 has no visits at all (no history), so the forecast for
    # 10 August is (2·1 + 4·2 + 2·3) / 6, off by 1.33; the naive one, 3 August's 2, by 2.
    for day, count in [(date(2026, 7, 20), 2), (date(2026, 7, 27), 4), (date(2026, 8, 3), 2),
                       (date(2026, 8, 10), 4)]:  # fmt: skip
        for _ in range(count):
            _seen(day, 10, 20)
    out = io.StringIO()

    call_command("backtest_staffing", "--from", "2026-08-10", "--to", "2026-08-16", stdout=out)

    assert out.getvalue().splitlines()[-1] == (
        "1 hours; forecast mean absolute error 1.33 students an hour; "
        "naive (same hour last week) 2.00"
    )


@pytest.mark.django_db
def test_it_says_when_there_is_nothing_to_backtest(terms):
    with pytest.raises(CommandError, match="No past teaching week in that range"):
        call_command("backtest_staffing", "--from", "2030-01-01")
