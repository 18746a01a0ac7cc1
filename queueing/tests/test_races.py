"""Many desk screens clicking the same thing at the same instant: exactly one wins.

Every screen is a thread with its own database connection. A round first readies each
screen (it reads the visit as its board last showed it), then releases them all at once
through a barrier, then checks the database: the visit row agrees with itself, the
winning transition wrote exactly one event and moved the board version by exactly one,
and every loser was refused with a message naming who beat them.

PostgreSQL only: on SQLite `select_for_update()` is a no-op and the test database is
private to one connection, so threads could not share it.
"""

from __future__ import annotations

import queue
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from html import unescape
from html.parser import HTMLParser
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Max
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from queueing.models import (
    Board,
    StaffingChange,
    StaffingLimitReached,
    Team,
    TransitionError,
    Visit,
    VisitEvent,
)
from queueing.tests.factories import VisitFactory

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason=(
            "Needs PostgreSQL: on SQLite select_for_update() is a no-op and the in-memory "
            "test database is not shared between threads, so a race cannot be staged."
        ),
    ),
    # Threads see only committed data; serialized rollback puts the seeded teams,
    # enquiry types, roles and board row back after each test flushes the tables.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

SCREENS = 24
ROUNDS = 30
HTTP_ROUNDS = 30
BARRIER_SECONDS = 30
ROUND_SECONDS = 60

# Distinct first names, so a message names exactly one screen's user.
NAMES = [
    "Ava", "Ben", "Cai", "Dee", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lux",
    "Mia", "Ned", "Oli", "Pia", "Quin", "Ray", "Sol", "Tia", "Uma", "Vic", "Wes", "Xia",
]  # fmt: skip

WAITING = Visit.Status.WAITING
IN_SESSION = Visit.Status.IN_SESSION
FINISHED = Visit.Status.FINISHED
REMOVED = Visit.Status.REMOVED


# --- screens that act together ----------------------------------------------------------


@dataclass
class Result:
    value: Any = None
    error: Exception | None = None

    @property
    def won(self) -> bool:
        return self.error is None


class Screens:
    """Desk screens as long-lived threads, each with its own database connection.

    `race(ready, act)` runs `ready(index)` on every screen, waits until all are ready,
    then lets every screen run `act(index, ready_value)` at the same instant.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._inboxes: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(count)]
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, args=(index,), name=f"screen-{index}", daemon=True)
            for index in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _serve(self, index: int) -> None:
        try:
            while (job := self._inboxes[index].get()) is not None:
                ready, act, barrier = job
                try:
                    prepared = ready(index)
                except Exception as exc:
                    barrier.abort()  # nobody waits for a screen that cannot take part
                    self._results.put((index, Result(error=exc)))
                    continue
                try:
                    barrier.wait(timeout=BARRIER_SECONDS)
                    result = Result(value=act(index, prepared))
                except Exception as exc:
                    result = Result(error=exc)
                self._results.put((index, result))
        finally:
            connection.close()

    def race(self, ready: Callable[[int], Any], act: Callable[[int, Any], Any]) -> list[Result]:
        barrier = threading.Barrier(self.count)
        for inbox in self._inboxes:
            inbox.put((ready, act, barrier))
        results: list[Result] = [Result()] * self.count
        for _ in range(self.count):
            index, result = self._results.get(timeout=ROUND_SECONDS)
            results[index] = result
        return results

    def close(self) -> None:
        for inbox in self._inboxes:
            inbox.put(None)
        for thread in self._threads:
            thread.join(timeout=BARRIER_SECONDS)


@dataclass
class Tally:
    """What a scenario saw over all its rounds, printed for the record."""

    scenario: str
    rounds: int = 0
    attempts: int = 0
    winners: int = 0
    losers: int = 0
    kinds: Counter = field(default_factory=Counter)

    def add(self, results: list[Result], *, kind: str = "") -> None:
        self.count(won=sum(r.won for r in results), lost=sum(not r.won for r in results))
        if kind:
            self.kinds[kind] += 1

    def count(self, *, won: int, lost: int) -> None:
        self.rounds += 1
        self.attempts += won + lost
        self.winners += won
        self.losers += lost

    def report(self) -> None:
        kinds = f" ({', '.join(f'{k}: {n}' for k, n in sorted(self.kinds.items()))})"
        print(
            f"{self.scenario}: {self.rounds} rounds x {self.attempts // max(self.rounds, 1)} "
            f"screens = {self.attempts} attempts, {self.winners} won, {self.losers} refused"
            f"{kinds if self.kinds else ''}"
        )


@pytest.fixture
def screens():
    pool = Screens(SCREENS)
    yield pool
    pool.close()


@pytest.fixture
def desk_users():
    role = Group.objects.get(name="Student leader")
    users = [UserFactory(username=f"screen{i}", first_name=name) for i, name in enumerate(NAMES)]
    for user in users:
        user.groups.add(role)
    return users


@pytest.fixture
def team():
    return Team.objects.get(slug="studysmarter")


# --- a round's set-up and its checks ----------------------------------------------------


@dataclass
class Before:
    version: int
    last_event: int


def fresh_round(team: Team, *, staff: int) -> Before:
    """An empty desk with `staff` available; returns the marks to measure from."""
    Visit.objects.all().delete()
    Team.objects.filter(pk=team.pk).update(available_staff=staff)
    return mark()


def mark() -> Before:
    return Before(
        version=Board.current_version(),
        last_event=VisitEvent.objects.aggregate(last=Max("pk"))["last"] or 0,
    )


def new_events(before: Before) -> list[VisitEvent]:
    return list(VisitEvent.objects.filter(pk__gt=before.last_event))


def in_session_visit(team: Team, by, name: str) -> Visit:
    return VisitFactory(
        team=team, student_name=name, status=IN_SESSION, started_at=timezone.now(), started_by=by
    )


def the_one_winner(results: list[Result], loses_with: type[Exception]) -> int:
    """The index of the only screen that won; every other lost with exactly `loses_with`."""
    winners = [index for index, result in enumerate(results) if result.won]
    unexpected = [
        (index, repr(result.error))
        for index, result in enumerate(results)
        if not result.won and type(result.error) is not loses_with
    ]
    assert not unexpected, f"losers refused with the wrong error: {unexpected}"
    assert len(winners) == 1, f"{len(winners)} screens won: {winners}"
    return winners[0]


def loser_messages(results: list[Result]) -> set[str]:
    return {str(result.error) for result in results if not result.won}


def assert_consistent(visit: Visit) -> Visit:
    """The row, read afresh: its status, timestamps, outcome and actors agree."""
    visit.refresh_from_db()
    return assert_row_agrees(visit)


def assert_row_agrees(visit: Visit) -> Visit:
    started = (visit.started_at, visit.started_by_id)
    ended = (visit.ended_at, visit.ended_by_id)
    match visit.status:
        case Visit.Status.WAITING:
            assert started == (None, None) and ended == (None, None) and visit.outcome == ""
        case Visit.Status.IN_SESSION:
            assert None not in started and ended == (None, None) and visit.outcome == ""
        case Visit.Status.FINISHED:
            assert None not in started and None not in ended
            assert visit.outcome == Visit.Outcome.FINISHED
            assert visit.ended_at >= visit.started_at
        case Visit.Status.REMOVED:
            # Only a waiting student is removed, so a removed visit never started.
            assert started == (None, None) and None not in ended
            assert visit.outcome in Visit.REMOVAL_OUTCOMES
        case _:
            pytest.fail(f"unknown status {visit.status!r}")
    return visit


def assert_one_event(before: Before, visit: Visit, action: str, by, from_to: tuple[str, str]):
    events = new_events(before)
    assert [(e.visit_id, e.action, e.by_id, (e.from_status, e.to_status)) for e in events] == [
        (visit.pk, action, by.pk, from_to)
    ]
    assert Board.current_version() == before.version + 1


# --- what each screen does --------------------------------------------------------------


def read_visit(pk: int, status: str, index: int) -> Visit:
    """What the screen's board showed: a copy read before anyone clicked."""
    visit = Visit.objects.select_related("team").get(pk=pk)
    assert visit.status == status
    return visit


def read_own_visit(pks: list[int], index: int) -> Visit:
    return read_visit(pks[index], WAITING, index)


def start(users, index: int, visit: Visit) -> None:
    visit.start_session(by=users[index])


def finish(users, index: int, visit: Visit) -> None:
    visit.finish(by=users[index])


def remove(users, index: int, visit: Visit) -> None:
    visit.remove(by=users[index], outcome=removal_outcome(index))


def removes(index: int) -> bool:
    """In a mixed round, odd screens remove and even screens start."""
    return index % 2 == 1


def start_or_remove(users, round_no: int, index: int, visit: Visit) -> None:
    if removes(index):
        # A removal is one conditional write, a start first locks the team and counts
        # its sessions, so removers arriving together with starters win nearly every
        # round. In odd rounds the removers' clicks land a few milliseconds apart
        # instead, in the middle of the starters' transactions, so both sides win.
        if round_no % 2:
            time.sleep(random.uniform(0.005, 0.02))
        visit.remove(by=users[index], outcome=removal_outcome(index))
    else:
        visit.start_session(by=users[index])


def team_full(team: Team, staff: int) -> str:
    busy = (
        f"The only {team.name} staff member available is"
        if staff == 1
        else f"All {staff} {team.name} staff available are"
    )
    return f"{busy} in a session. Add a staff member to start another."


def removal_outcome(index: int) -> str:
    return [Visit.Outcome.CANCELLED, Visit.Outcome.NO_SHOW][index // 2 % 2]


# --- the same visit, many screens -------------------------------------------------------


def test_it_lets_exactly_one_screen_start_the_same_student(screens, desk_users, team):
    tally = Tally("start the same student")
    for round_no in range(ROUNDS):
        # One to three staff: when only one is free, the losers must still be told who
        # started the student, not that the team is full.
        before = fresh_round(team, staff=1 + round_no % 3)
        visit = VisitFactory(team=team, student_name=f"Student {round_no}")

        results = screens.race(partial(read_visit, visit.pk, WAITING), partial(start, desk_users))

        winner = desk_users[the_one_winner(results, loses_with=TransitionError)]
        assert loser_messages(results) == {
            f"Student {round_no} is already in a session, started by {winner.display_name}."
        }
        visit = assert_consistent(visit)
        assert (visit.status, visit.started_by_id) == (IN_SESSION, winner.pk)
        assert_one_event(before, visit, VisitEvent.Action.STARTED, winner, (WAITING, IN_SESSION))
        tally.add(results)
    tally.report()


def test_it_lets_exactly_one_screen_finish_the_same_session(screens, desk_users, team):
    tally = Tally("finish the same session")
    for round_no in range(ROUNDS):
        fresh_round(team, staff=1)
        visit = in_session_visit(team, desk_users[0], f"Student {round_no}")
        before = mark()

        results = screens.race(
            partial(read_visit, visit.pk, IN_SESSION), partial(finish, desk_users)
        )

        winner = desk_users[the_one_winner(results, loses_with=TransitionError)]
        assert loser_messages(results) == {
            f"Student {round_no}'s session was already finished by {winner.display_name}."
        }
        visit = assert_consistent(visit)
        assert (visit.status, visit.ended_by_id) == (FINISHED, winner.pk)
        assert visit.started_by_id == desk_users[0].pk
        assert_one_event(before, visit, VisitEvent.Action.FINISHED, winner, (IN_SESSION, FINISHED))
        tally.add(results)
    tally.report()


def test_it_lets_exactly_one_screen_remove_the_same_student(screens, desk_users, team):
    tally = Tally("remove the same student")
    for round_no in range(ROUNDS):
        before = fresh_round(team, staff=1)
        visit = VisitFactory(team=team, student_name=f"Student {round_no}")

        results = screens.race(partial(read_visit, visit.pk, WAITING), partial(remove, desk_users))

        index = the_one_winner(results, loses_with=TransitionError)
        winner = desk_users[index]
        assert loser_messages(results) == {
            f"Student {round_no} was already removed from the queue by {winner.display_name}."
        }
        visit = assert_consistent(visit)
        assert (visit.status, visit.ended_by_id) == (REMOVED, winner.pk)
        assert visit.outcome == removal_outcome(index), "the winner's reason is the one kept"
        assert_one_event(before, visit, VisitEvent.Action.REMOVED, winner, (WAITING, REMOVED))
        tally.add(results)
    tally.report()


def test_it_lets_exactly_one_screen_win_when_some_start_and_others_remove(
    screens, desk_users, team
):
    tally = Tally("start and remove the same student")
    for round_no in range(ROUNDS):
        before = fresh_round(team, staff=1)
        name = f"Student {round_no}"
        visit = VisitFactory(team=team, student_name=name)

        results = screens.race(
            partial(read_visit, visit.pk, WAITING),
            partial(start_or_remove, desk_users, round_no),
        )

        index = the_one_winner(results, loses_with=TransitionError)
        winner = desk_users[index]
        visit = assert_consistent(visit)
        if removes(index):
            kind = "remove won"
            assert (visit.status, visit.ended_by_id) == (REMOVED, winner.pk)
            assert visit.outcome == removal_outcome(index)
            expected = f"{name} was already removed from the queue by {winner.display_name}."
            event = (VisitEvent.Action.REMOVED, (WAITING, REMOVED))
        else:
            kind = "start won"
            assert (visit.status, visit.started_by_id) == (IN_SESSION, winner.pk)
            expected = f"{name} is already in a session, started by {winner.display_name}."
            event = (VisitEvent.Action.STARTED, (WAITING, IN_SESSION))
        # Starters and removers alike are told what actually happened.
        assert loser_messages(results) == {expected}
        assert_one_event(before, visit, event[0], winner, event[1])
        tally.add(results, kind=kind)
    tally.report()


# --- the last free staff member ---------------------------------------------------------


def test_it_gives_the_last_free_staff_member_to_exactly_one_student(screens, desk_users, team):
    tally = Tally("start different students for the last free staff member")
    for round_no in range(ROUNDS):
        staff = 1 + round_no % 4
        fresh_round(team, staff=staff)
        for n in range(staff - 1):
            in_session_visit(team, desk_users[0], f"Seen {round_no}.{n}")
        waiting = Visit.objects.bulk_create(
            VisitFactory.build(team=team, student_name=f"Student {round_no}.{i}")
            for i in range(SCREENS)
        )
        before = mark()

        results = screens.race(
            partial(read_own_visit, [visit.pk for visit in waiting]), partial(start, desk_users)
        )

        index = the_one_winner(results, loses_with=StaffingLimitReached)
        winner = desk_users[index]
        assert loser_messages(results) == {team_full(team, staff)}
        assert {r.error.team.pk for r in results if not r.won} == {team.pk}
        # Losers change nothing, so the count after the round is the most it ever was.
        team.refresh_from_db()
        assert team.available_staff == staff
        assert Visit.objects.filter(team=team, status=IN_SESSION).count() == staff
        rows = Visit.objects.in_bulk([visit.pk for visit in waiting])
        for i, visit in enumerate(waiting):
            visit = assert_row_agrees(rows[visit.pk])
            if i == index:
                assert (visit.status, visit.started_by_id) == (IN_SESSION, winner.pk)
            else:
                assert visit.status == WAITING
        assert_one_event(
            before, waiting[index], VisitEvent.Action.STARTED, winner, (WAITING, IN_SESSION)
        )
        tally.add(results)
    tally.report()


def start_or_send_home(users, team_pk: int, index: int, visit: Visit) -> None:
    """Even screens start their own student; odd screens take a staff member away."""
    if index % 2 == 0:
        visit.start_session(by=users[index])
    else:
        Team.objects.get(pk=team_pk).change_staffing(-1, by=users[index])


def test_it_lets_exactly_one_screen_start_or_take_away_the_last_free_staff_member(
    screens, desk_users, team
):
    tally = Tally("start students while others take the last free staff member away")
    for round_no in range(ROUNDS):
        staff = 2 + round_no % 3
        fresh_round(team, staff=staff)
        for n in range(staff - 1):
            in_session_visit(team, desk_users[0], f"Seen {round_no}.{n}")
        waiting = Visit.objects.bulk_create(
            VisitFactory.build(team=team, student_name=f"Student {round_no}.{i}")
            for i in range(SCREENS)
        )
        before = mark()
        last_change = StaffingChange.objects.aggregate(last=Max("pk"))["last"] or 0

        results = screens.race(
            partial(read_own_visit, [visit.pk for visit in waiting]),
            partial(start_or_send_home, desk_users, team.pk),
        )

        winners = [i for i, result in enumerate(results) if result.won]
        assert len(winners) == 1, f"{len(winners)} screens won: {winners}"
        index = winners[0]
        winner = desk_users[index]
        team.refresh_from_db()
        sessions = Visit.objects.filter(team=team, status=IN_SESSION).count()
        assert sessions <= team.available_staff
        starters = {str(r.error) for i, r in enumerate(results) if i % 2 == 0 and not r.won}
        leavers = {str(r.error) for i, r in enumerate(results) if i % 2 == 1 and not r.won}
        assert all(
            type(r.error) is (StaffingLimitReached if i % 2 == 0 else TransitionError)
            for i, r in enumerate(results)
            if not r.won
        ), [(i, repr(r.error)) for i, r in enumerate(results) if not r.won]
        changes = list(StaffingChange.objects.filter(pk__gt=last_change))
        if index % 2 == 0:
            kind = "start won"
            assert (team.available_staff, sessions) == (staff, staff)
            assert_one_event(
                before, waiting[index], VisitEvent.Action.STARTED, winner, (WAITING, IN_SESSION)
            )
            assert changes == []
        else:
            kind = "staff member left"
            assert (team.available_staff, sessions) == (staff - 1, staff - 1)
            assert new_events(before) == []
            assert Board.current_version() == before.version + 1
            assert [(c.available, c.delta, c.by_id) for c in changes] == [
                (staff - 1, -1, winner.pk)
            ]
        assert starters == {team_full(team, team.available_staff)}
        assert leavers == {
            f"{team.name} has {sessions} session{'s' if sessions != 1 else ''} running; "
            "finish one before taking a staff member away."
        }
        tally.add(results, kind=kind)
    tally.report()


# --- the same race through the desk's start button --------------------------------------

HTMX = {"HX-Request": "true", "HX-Current-URL": "http://testserver/desk/"}
VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"}


class _RegionText(HTMLParser):
    """The text inside every element with a given id (nested elements included)."""

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id = element_id
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID_ELEMENTS:
            return
        if self.depth or ("id", self.element_id) in attrs:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in VOID_ELEMENTS:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def region_text(html: str, element_id: str) -> str:
    parser = _RegionText(element_id)
    parser.feed(html)
    return re.sub(r"\s+", " ", unescape(" ".join(parser.parts))).strip()


@dataclass
class Click:
    """One screen's click on Start: the answer, and for a plain POST the page after it."""

    htmx: bool
    response: Any
    page: Any = None

    @property
    def shown(self) -> Any:
        return self.response if self.htmx else self.page


def ready_client(index: int) -> None:
    connection.ensure_connection()


def click_start(clients: list[Client], pk: int, index: int, _: None) -> Click:
    htmx = index % 2 == 0
    client = clients[index]
    response = client.post(reverse("queueing:start", args=[pk]), headers=HTMX if htmx else {})
    click = Click(htmx=htmx, response=response)
    if not htmx and response.status_code == 302:
        click.page = client.get(response["Location"])
    return click


def test_it_lets_exactly_one_desk_start_the_student_over_http(
    screens, desk_users, team, monkeypatch
):
    # The test client records every rendered template's context, and its receiver
    # hears renders from every thread, so 24 clients copy each other's contexts. The
    # checks read only the HTML, and skipping the copies saves a quarter of the run.
    monkeypatch.setattr("django.test.client.store_rendered_templates", lambda *a, **k: None)
    clients = []
    for user in desk_users:
        client = Client(raise_request_exception=False)
        client.force_login(user)
        clients.append(client)
    desk_url = reverse("queueing:desk")
    tally = Tally("start the same student over HTTP (half htmx, half plain POST)")
    statuses: Counter = Counter()
    for round_no in range(HTTP_ROUNDS):
        before = fresh_round(team, staff=1 + round_no % 3)
        name = f"Student {round_no}"
        visit = VisitFactory(team=team, student_name=name)

        results = screens.race(ready_client, partial(click_start, clients, visit.pk))

        errors = [(i, repr(r.error)) for i, r in enumerate(results) if not r.won]
        assert not errors, f"a screen's request raised: {errors}"
        clicks: list[Click] = [result.value for result in results]
        for i, click in enumerate(clicks):
            statuses[click.response.status_code] += 1
            assert click.response.status_code == (200 if click.htmx else 302), (
                i,
                click.response.status_code,
                getattr(click.response, "exc_info", None),
            )
            if not click.htmx:
                assert click.response["Location"] == desk_url
                assert click.page.status_code == 200

        visit = assert_consistent(visit)
        assert visit.status == IN_SESSION
        winner = visit.started_by
        assert_one_event(before, visit, VisitEvent.Action.STARTED, winner, (WAITING, IN_SESSION))
        won = f"Session started for {name}."
        lost = f"{name} is already in a session, started by {winner.display_name}."
        for i, click in enumerate(clicks):
            said = region_text(click.shown.text, "messages")
            if desk_users[i] == winner:
                assert said == won, (i, said)
            else:
                assert said == lost, (i, click.htmx, said)
            # Every screen, winner or loser, is shown the board as it now stands.
            assert click.shown["X-Board-Version"] == str(before.version + 1)
        tally.count(won=1, lost=len(clicks) - 1)
    tally.report()
    print(f"  response codes: {dict(statuses)}")


def test_it_never_deadlocks_an_add_and_a_start_in_the_same_team(desk_users, team):
    """The add commits while a start holds the team and waits for the board the add
    holds: PostgreSQL checks the new visit's team at that commit (see _lock_teams)."""
    fresh_round(team, staff=1)
    waiting = VisitFactory(team=team, student_name="Bo Chen")
    enquiry_type = waiting.enquiry_type
    add_holds_board, start_holds_team = threading.Event(), threading.Event()
    bump = Board.bump.__func__
    errors: list[Exception] = []

    def paused_bump(cls) -> None:
        if threading.current_thread().name == "start":
            start_holds_team.set()  # the start locked its team before its bump
        bump(cls)
        if threading.current_thread().name == "add":
            add_holds_board.set()
            start_holds_team.wait(timeout=BARRIER_SECONDS)

    def add() -> None:
        Visit.add(by=desk_users[0], student_name="Ana Li", student_number="21000001",
                  team=team, enquiry_type=enquiry_type)  # fmt: skip

    def start() -> None:
        add_holds_board.wait(timeout=BARRIER_SECONDS)
        Visit.objects.get(pk=waiting.pk).start_session(by=desk_users[1])

    def run(action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    with mock.patch.object(Board, "bump", classmethod(paused_bump)):
        threads = [threading.Thread(target=run, args=(f,), name=f.__name__) for f in (add, start)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=ROUND_SECONDS)

    assert errors == []
    assert Visit.objects.filter(student_name="Ana Li", status=WAITING).exists()
    assert Visit.objects.get(pk=waiting.pk).status == IN_SESSION
