"""Properties of the desk that must hold for any input and any order of clicks.

Hypothesis drives the real views through the test client. Each example runs inside a
savepoint that is rolled back afterwards, so examples start from the same database
while the pytest-django fixtures (users, the seeded teams) are made once per test.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

import pytest
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from hypothesis import event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from queueing.models import (
    MAX_STAFF,
    Board,
    EnquiryType,
    StaffingChange,
    Team,
    Visit,
    VisitEvent,
)
from queueing.tests.factories import EnquiryTypeFactory, TeamFactory
from queueing.validators import UNIT_CODE_RE, is_plausible_name

pytestmark = pytest.mark.django_db

ASCII_NUMBER = re.compile(r"[0-9]{8}")
ASCII_UNIT_CODE = re.compile(r"[A-Z]{2,6}[0-9]{3,5}[A-Z]?")
MISSING_PKS = [0, 999_999, 2**63]
REMOVAL_OUTCOMES = {"cancelled", "no_show", "out_of_time"}


@contextmanager
def rolled_back():
    """Run one example in a savepoint and throw its writes away."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def as_field(value) -> str | None:
    return None if value is None else str(value)


# --- strategies ---------------------------------------------------------------------

# Each field: what staff would type, or anything at all. A whole form of plausible
# values is drawn half the time, so the success path is exercised as much as refusal.
REAL_NAMES = ["Zoë Ng", "O'Brien", "José Álvarez-Peña", "Nguyễn Văn An", "김민준", "J. Smith"]
plausible_names = st.one_of(
    st.sampled_from(REAL_NAMES),
    # Letters and marks of any script with name punctuation; a letter first.
    st.text(
        alphabet=st.one_of(st.characters(categories=["L", "M"]), st.sampled_from(" '’.,()-")),
        min_size=1,
        max_size=100,
    ).filter(is_plausible_name),
)
plausible_numbers = st.one_of(
    st.from_regex(r"[0-9]{8}", fullmatch=True),
    st.from_regex(r" ?[0-9]{4} [0-9]{4} ?", fullmatch=True),
    st.text(alphabet=st.characters(categories=["Nd"]), min_size=8, max_size=8),
)
plausible_unit_codes = st.one_of(
    st.from_regex(r"[A-Za-z]{2,6} ?[0-9]{3,5}[A-Za-z]?", fullmatch=True), st.just("")
)
names = st.one_of(
    plausible_names,
    st.sampled_from(["<script>alert(1)</script>", "=1+1", "", "   ", "A" * 101]),
    st.text(max_size=110),
    st.integers(),
    st.none(),
)
numbers = st.one_of(
    plausible_numbers,
    st.sampled_from(["21234567", "1234", "abcdefgh", "1" * 21]),
    st.text(alphabet=st.characters(categories=["Nd", "Zs"]), min_size=7, max_size=10),
    st.text(max_size=25),
    st.integers(),
    st.none(),
)
unit_codes = st.one_of(plausible_unit_codes, st.text(max_size=16), st.none())
# Team and enquiry type: named rows, resolved to their ids inside the example, or junk.
team_choices = st.one_of(
    st.sampled_from(["studysmarter", "librarian", "inactive", "missing"]),
    st.integers(),
    st.text(max_size=6),
    st.none(),
)
enquiry_choices = st.one_of(
    st.sampled_from(["Essay", "Other", "inactive", "missing"]),
    st.integers(),
    st.text(max_size=6),
    st.none(),
)
confirmations = st.one_of(
    st.sampled_from(["on", "off", "", "0", "1", "false", "true"]),
    st.text(max_size=5),
    st.none(),
)
plausible_add_forms = st.fixed_dictionaries(
    {
        "student_name": plausible_names,
        "student_number": plausible_numbers,
        "unit_code": plausible_unit_codes,
        "team": st.sampled_from(["studysmarter", "librarian"]),
        "enquiry_type": st.sampled_from(["Essay", "Other"]),
        "confirm_duplicate": st.sampled_from([None, "on"]),
    }
)
add_forms = st.one_of(
    plausible_add_forms,
    st.fixed_dictionaries(
        {
            "student_name": names,
            "student_number": numbers,
            "unit_code": unit_codes,
            "team": team_choices,
            "enquiry_type": enquiry_choices,
            "confirm_duplicate": confirmations,
        }
    ),
)


@dataclass
class Rows:
    """Ids of the rows an example can name by a word."""

    teams: dict[str, int]
    enquiry_types: dict[str, int]

    def post_data(self, form: dict) -> dict:
        data = {}
        for field, value in form.items():
            if field == "team" and value in self.teams:
                value = self.teams[value]
            elif field == "enquiry_type" and value in self.enquiry_types:
                value = self.enquiry_types[value]
            if value is not None:
                data[field] = as_field(value)
        return data


@pytest.fixture
def rows(db) -> Rows:
    inactive_team = TeamFactory(name="Maths", slug="maths", is_active=False)
    inactive_type = EnquiryTypeFactory(name="Retired", is_active=False)
    return Rows(
        teams={
            "studysmarter": Team.objects.get(slug="studysmarter").pk,
            "librarian": Team.objects.get(slug="librarian").pk,
            "inactive": inactive_team.pk,
            "missing": 999_999,
        },
        enquiry_types={
            "Essay": EnquiryType.objects.get(name="Essay").pk,
            "Other": EnquiryType.objects.get(name="Other").pk,
            "inactive": inactive_type.pk,
            "missing": 999_999,
        },
    )


# --- invariants ---------------------------------------------------------------------


def assert_written_visit_is_clean(visit: Visit) -> None:
    number_rule = re.compile(settings.RESQ_STUDENT_NUMBER_PATTERN)
    assert number_rule.fullmatch(visit.student_number), visit.student_number
    assert ASCII_NUMBER.fullmatch(visit.student_number), visit.student_number
    if visit.unit_code:
        assert visit.unit_code == visit.unit_code.upper()
        assert UNIT_CODE_RE.fullmatch(visit.unit_code), visit.unit_code
        assert ASCII_UNIT_CODE.fullmatch(visit.unit_code), visit.unit_code
    name = visit.student_name
    assert name
    assert "<" not in name
    assert ">" not in name
    assert name == " ".join(name.split())
    assert len(name) <= 100
    assert visit.team.is_active
    assert visit.enquiry_type.is_active


def assert_consistent(visit: dict) -> None:
    """Timestamps and outcome agree with the status (the database checks this too)."""
    status, started, ended, outcome = (
        visit["status"],
        visit["started_at"],
        visit["ended_at"],
        visit["outcome"],
    )
    if status == "waiting":
        assert (started, ended, outcome) == (None, None, ""), visit
    elif status == "in_session":
        assert started is not None, visit
        assert (ended, outcome) == (None, ""), visit
    elif status == "finished":
        assert started is not None and ended is not None, visit
        assert outcome == "finished", visit
        assert ended >= started, visit
    elif status == "removed":
        assert ended is not None, visit
        assert outcome in REMOVAL_OUTCOMES, visit
    else:
        raise AssertionError(f"unknown status {visit}")
    if ended is not None:
        assert ended >= visit["arrived_at"], visit


def has_form_errors(html: str) -> bool:
    return 'class="errorlist' in html or 'id="add-form-errors"' in html


# --- (a) the add form, whatever is typed ----------------------------------------------


def _post_add(client: Client, data: dict, *, htmx: bool):
    if htmx:
        return client.post(reverse("queueing:add"), data, headers={"HX-Request": "true"})
    return client.post(reverse("queueing:add"), data, follow=True)


@given(form=add_forms)
def test_it_adds_exactly_one_clean_visit_or_nothing(leader, rows, form):
    data = rows.post_data(form)
    outcomes = {}

    for htmx in (False, True):
        with rolled_back():
            # Someone already waiting, so the duplicate warning is in play.
            Visit.add(
                by=leader,
                student_name="Zoë Ng",
                student_number="21234567",
                unit_code="",
                team=Team.objects.get(slug="studysmarter"),
                enquiry_type=EnquiryType.objects.get(name="Essay"),
            )
            visits = set(Visit.objects.values_list("pk", flat=True))
            events = VisitEvent.objects.count()
            version = Board.current_version()

            response = _post_add(client_for(leader), data, htmx=htmx)

            assert response.status_code == 200
            html = response.content.decode()
            new = Visit.objects.exclude(pk__in=visits).select_related("team", "enquiry_type")
            if new.exists():
                visit = new.get()
                assert_written_visit_is_clean(visit)
                assert visit.status == "waiting"
                assert visit.added_by == leader
                assert VisitEvent.objects.count() == events + 1
                assert list(visit.events.values_list("action", "by")) == [("added", leader.pk)]
                assert Board.current_version() > version
                added = (
                    f"{visit.student_name} added to the {visit.team.queue_label} as {visit.ticket}."
                )
                assert escape(added) in html
                if not htmx:
                    assert response.redirect_chain == [(reverse("queueing:desk"), 302)]
            else:
                assert VisitEvent.objects.count() == events
                assert Board.current_version() == version
                assert has_form_errors(html)
                assert 'id="add-form"' in html
                if htmx:
                    assert 'id="board"' not in html
            outcomes[htmx] = new.exists()
            event(f"{'htmx' if htmx else 'plain'}: {'added' if new.exists() else 'refused'}")

    # With JavaScript or without, the same input gets the same answer.
    assert outcomes[False] == outcomes[True]


# --- (b) any sequence of clicks, from two screens -------------------------------------

# Mostly what the buttons send, sometimes anything: most clicks should do something.
outcome_values = st.one_of(
    st.sampled_from(sorted(REMOVAL_OUTCOMES)),
    st.sampled_from(sorted(REMOVAL_OUTCOMES)),
    st.sampled_from(["finished", ""]),
    st.text(max_size=12),
)
delta_values = st.one_of(
    st.sampled_from(["1", "-1"]),
    st.sampled_from(["1", "-1"]),
    st.integers(-3, 3).map(str),
    st.text(max_size=4),
    st.none(),
)
#: The statuses a click can act on; a click on any other visit must be refused.
SUITABLE = {
    "start": {"waiting"},
    "start_add_staff": {"waiting"},
    "finish": {"in_session"},
    "undo_start": {"in_session"},
    "undo_end": {"finished", "removed"},
    "remove": {"waiting"},
    "edit": {"waiting", "in_session", "finished", "removed"},
    "time_passes": {"finished", "removed"},
}
users_ = st.integers(0, 1)
# A third of the clicks by htmx: it renders the board, where a plain POST redirects.
htmx_ = st.sampled_from([False, False, True])
choices = st.sampled_from(["suitable", "suitable", "any", "latest"])
indexes = st.integers(0, 50)
missing = st.sampled_from(MISSING_PKS)
team_slugs = st.sampled_from(["studysmarter", "librarian"] * 3 + ["maths", "no-such-team"])
VISIT_URLS = ["start", "finish", "undo_start", "undo_end", "remove", "edit"]


@dataclass
class World:
    """What the database looked like before a click."""

    visits: dict[int, dict]
    events: dict[int, list[tuple]]
    staffing: dict[int, int]
    staffing_changes: int
    version: int

    @classmethod
    def read(cls) -> World:
        events: dict[int, list[tuple]] = {}
        for row in VisitEvent.objects.order_by("pk").values_list(
            "visit_id", "action", "from_status", "to_status", "by_id"
        ):
            events.setdefault(row[0], []).append(row[1:])
        return cls(
            visits={v["id"]: v for v in Visit.objects.values()},
            events=events,
            staffing=dict(Team.objects.values_list("pk", "available_staff")),
            staffing_changes=StaffingChange.objects.count(),
            version=Board.current_version(),
        )

    def in_session(self, team_id: int) -> int:
        return sum(
            1
            for v in self.visits.values()
            if v["team_id"] == team_id and v["status"] == "in_session"
        )


TRANSITIONS = {
    ("waiting", "in_session"): "started",
    ("in_session", "waiting"): "start_undone",
    ("in_session", "finished"): "finished",
    ("finished", "in_session"): "finish_undone",
    ("waiting", "removed"): "removed",
    ("removed", "waiting"): "remove_undone",
}
DETAILS = ["student_name", "student_number", "unit_code", "team_id", "enquiry_type_id"]


def check_step(before: World, after: World, *, kind: str, user) -> None:
    """Everything that must hold after one click, whatever it was."""
    for visit in after.visits.values():
        assert_consistent(visit)

    assert set(before.visits) <= set(after.visits), "a visit disappeared"
    changed = False
    for pk, visit in after.visits.items():
        old = before.visits.get(pk)
        new_events = after.events.get(pk, [])[len(before.events.get(pk, [])) :]
        assert after.events.get(pk, [])[: len(before.events.get(pk, []))] == before.events.get(
            pk, []
        ), "the audit trail was rewritten"
        if old is None:
            assert kind == "add", f"a visit appeared on {kind}"
            assert new_events == [("added", "", "waiting", user.pk)]
            assert visit["status"] == "waiting"
            assert_written_visit_is_clean(Visit.objects.get(pk=pk))
            changed = True
            continue
        moved = (old["status"], visit["status"])
        corrected = [f for f in DETAILS if old[f] != visit[f]]
        if moved[0] != moved[1]:
            changed = True
            assert not corrected, "a transition changed the student's details"
            if kind == "close":
                assert moved == ("waiting", "removed")
                assert visit["outcome"] == "out_of_time"
                expected = ("queue_closed", "waiting", "removed", user.pk)
            else:
                assert moved in TRANSITIONS, moved
                expected = (TRANSITIONS[moved], *moved, user.pk)
            assert new_events == [expected], (moved, new_events)
            assert old["arrived_at"] == visit["arrived_at"], "the place in line moved"
        elif corrected:
            changed = True
            assert kind == "edit", f"details changed on {kind}"
            assert new_events in (
                [("corrected", visit["status"], visit["status"], user.pk)],
                [("transferred", visit["status"], visit["status"], user.pk)],
            ), new_events
            if "team_id" in corrected:
                assert visit["status"] == "waiting", "a session changed team"
            assert_written_visit_is_clean(Visit.objects.get(pk=pk))
        else:
            assert visit == old or kind == "time_passes", (old, visit)
            assert new_events == [], f"{kind} wrote {new_events} for an unchanged visit"

    staffing_moves = {
        team: after.staffing[team] - before.staffing[team]
        for team in after.staffing
        if after.staffing[team] != before.staffing[team]
    }
    assert all(move in (-1, 1) for move in staffing_moves.values()), staffing_moves
    assert after.staffing_changes - before.staffing_changes == len(staffing_moves)
    for team, move in staffing_moves.items():
        changed = True
        latest = StaffingChange.objects.filter(team_id=team).order_by("-pk").first()
        assert (latest.delta, latest.available, latest.by_id) == (
            move,
            after.staffing[team],
            user.pk,
        )

    for team, available in after.staffing.items():
        assert 0 <= available <= MAX_STAFF
        running = after.in_session(team)
        assert running <= available, f"team {team}: {running} sessions, {available} staff"

    if kind != "time_passes":
        if changed:
            assert after.version > before.version, "a change did not move the board version"
        else:
            assert after.version == before.version, f"{kind} moved the version, changing nothing"


def assert_did_what_was_asked(kind: str, pk: int, data: dict, before: World, after: World):
    """The clicked visit moved if, and only if, the desk's rules allow that move now.

    Refusing a move the rules allow is as much a bug as allowing one they refuse: the
    student stays stuck on the board.
    """
    visit = before.visits.get(pk)
    if visit is None:
        return
    status, team = visit["status"], visit["team_id"]
    free = before.in_session(team) < before.staffing[team]
    match kind:
        case "start":
            allowed = status == "waiting" and free
        case "start_add_staff":
            allowed = status == "waiting" and before.staffing[team] < MAX_STAFF
        case "finish" | "undo_start":
            allowed = status == "in_session"
        case "remove":
            allowed = status == "waiting" and data.get("outcome") in REMOVAL_OUTCOMES
        case "undo_end" if status in ("finished", "removed"):
            age = (timezone.now() - visit["ended_at"]).total_seconds()
            window = settings.RESQ_UNDO_WINDOW_SECONDS
            if abs(age - window) < 5:
                return  # too close to the deadline to call
            # Back in session takes a staff member again, as a start does.
            allowed = age < window and (status == "removed" or free)
        case "undo_end":
            allowed = False
        case _:
            return
    moved = after.visits[pk]["status"] != status
    assert moved == allowed, f"{kind} on a {status} visit: moved {moved}, should have {allowed}"


class DeskMachine(RuleBasedStateMachine):
    """Two screens clicking anything, in any order, on any visit, real or not.

    Each rule is one click; `click` checks everything that must hold after it. The
    whole run is one savepoint, rolled back at the end.
    """

    # Set by the test, from its fixtures.
    users: ClassVar[list]
    rows: ClassVar[Rows]

    def __init__(self) -> None:
        super().__init__()
        self._savepoint = transaction.atomic()
        self._savepoint.__enter__()
        self.clients = [client_for(user) for user in self.users]

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._savepoint.__exit__(None, None, None)

    @initialize(
        staff=st.tuples(st.integers(0, 3), st.integers(0, 3)),
        teams=st.lists(st.sampled_from(["studysmarter", "librarian"]), min_size=1, max_size=5),
    )
    def open_the_desk(self, staff, teams) -> None:
        for slug, count in zip(("studysmarter", "librarian"), staff, strict=True):
            Team.objects.filter(slug=slug).update(available_staff=count)
        for index, slug in enumerate(teams):
            Visit.add(
                by=self.users[0],
                student_name=f"Student {chr(65 + index)}",
                student_number=f"2100000{index}",
                unit_code="",
                team_id=self.rows.teams[slug],
                enquiry_type_id=self.rows.enquiry_types["Essay"],
            )

    # --- one click, and what must hold after it

    def click(self, kind: str, who: int, url: str, data: dict, htmx: bool, pk: int = 0):
        before = World.read()
        headers = {"HX-Request": "true"} if htmx else {}
        # A view that raises fails here (the test client re-raises): never a 500.
        response = self.clients[who].post(url, data, headers=headers)
        after = World.read()
        assert response.status_code in (200, 302, 404), response.status_code
        if response.status_code == 404:
            assert after.visits == before.visits
            assert after.version == before.version
        check_step(before, after, kind=kind, user=self.users[who])
        assert_did_what_was_asked(kind, pk, data, before, after)
        return response, before, after

    def pick(self, kind: str, choice: str, index: int) -> int:
        """A visit the click suits, any visit, or the one that ended last."""
        world = World.read()
        suitable = sorted(
            pk for pk, v in world.visits.items() if v["status"] in SUITABLE.get(kind, ())
        )
        if choice == "latest" and any(world.visits[pk]["ended_at"] for pk in suitable):
            return max(
                (pk for pk in suitable if world.visits[pk]["ended_at"]),
                key=lambda pk: world.visits[pk]["ended_at"],
            )
        pool = suitable if choice != "any" and suitable else sorted(world.visits)
        return pool[index % len(pool)] if pool else MISSING_PKS[0]

    # --- the clicks

    @rule(name=st.sampled_from(VISIT_URLS), who=users_, htmx=htmx_, pk=missing)
    def click_on_a_visit_that_never_was(self, name, who, htmx, pk) -> None:
        url = reverse(f"queueing:{name}", kwargs={"pk": pk})
        response, _, _ = self.click(name, who, url, {"outcome": "cancelled"}, htmx)
        assert response.status_code == 404

    @rule(who=users_, htmx=htmx_, choice=choices, index=indexes)
    def start(self, who, htmx, choice, index) -> None:
        pk = self.pick("start", choice, index)
        self.click("start", who, reverse("queueing:start", kwargs={"pk": pk}), {}, htmx, pk)

    @rule(who=users_, htmx=htmx_, choice=choices, index=indexes)
    def add_staff_and_start(self, who, htmx, choice, index) -> None:
        pk = self.pick("start_add_staff", choice, index)
        url = reverse("queueing:start", kwargs={"pk": pk})
        self.click("start_add_staff", who, url, {"add_staff": "1"}, htmx, pk)

    @rule(who=users_, htmx=htmx_, choice=choices, index=indexes)
    def finish(self, who, htmx, choice, index) -> None:
        pk = self.pick("finish", choice, index)
        self.click("finish", who, reverse("queueing:finish", kwargs={"pk": pk}), {}, htmx, pk)

    @rule(who=users_, htmx=htmx_, index=indexes)
    def serve_the_next_student(self, who, htmx, index) -> None:
        """The desk's habit: finish a session, then start the next in that team's queue."""
        pk = self.pick("finish", "suitable", index)
        self.click("finish", who, reverse("queueing:finish", kwargs={"pk": pk}), {}, htmx, pk)
        team = Visit.objects.filter(pk=pk).values_list("team_id", flat=True).first()
        waiting = Visit.objects.filter(team_id=team, status="waiting").order_by("arrived_at")
        if team is not None and waiting.exists():
            following = waiting.first().pk
            url = reverse("queueing:start", kwargs={"pk": following})
            self.click("start", 1 - who, url, {}, htmx, following)

    @rule(who=users_, htmx=htmx_, choice=choices, index=indexes)
    def undo_start(self, who, htmx, choice, index) -> None:
        pk = self.pick("undo_start", choice, index)
        url = reverse("queueing:undo_start", kwargs={"pk": pk})
        self.click("undo_start", who, url, {}, htmx, pk)

    @rule(who=users_, htmx=htmx_, choice=choices, index=indexes)
    def undo_end(self, who, htmx, choice, index) -> None:
        pk = self.pick("undo_end", choice, index)
        url = reverse("queueing:undo_end", kwargs={"pk": pk})
        self.click("undo_end", who, url, {}, htmx, pk)

    @rule(who=users_, htmx=htmx_, choice=choices, index=indexes, outcome=outcome_values)
    def remove(self, who, htmx, choice, index, outcome) -> None:
        pk = self.pick("remove", choice, index)
        url = reverse("queueing:remove", kwargs={"pk": pk})
        self.click("remove", who, url, {"outcome": outcome}, htmx, pk)

    @rule(who=users_, htmx=htmx_, choice=choices, index=indexes, form=add_forms)
    def edit(self, who, htmx, choice, index, form) -> None:
        pk = self.pick("edit", choice, index)
        url = reverse("queueing:edit", kwargs={"pk": pk})
        self.click("edit", who, url, self.rows.post_data(form), htmx)

    @rule(who=users_, htmx=htmx_, form=add_forms)
    def add(self, who, htmx, form) -> None:
        self.click("add", who, reverse("queueing:add"), self.rows.post_data(form), htmx)

    @rule(who=users_, htmx=htmx_, slug=team_slugs, delta=delta_values)
    def staffing(self, who, htmx, slug, delta) -> None:
        url = reverse("queueing:staffing", kwargs={"slug": slug})
        data = {} if delta is None else {"delta": delta}
        _, before, after = self.click("staffing", who, url, data, htmx)
        team = self.rows.teams.get(slug)
        if team is None or delta not in ("1", "-1"):
            assert after.staffing == before.staffing
            return
        wanted = before.staffing[team] + int(delta)
        allowed = before.in_session(team) <= wanted <= MAX_STAFF
        assert after.staffing[team] == (wanted if allowed else before.staffing[team])

    @rule(who=users_, htmx=htmx_)
    def close(self, who, htmx) -> None:
        _, before, after = self.click("close", who, reverse("queueing:close"), {}, htmx)
        assert all(v["status"] != "waiting" for v in after.visits.values())
        for pk, visit in before.visits.items():
            if visit["status"] == "waiting":
                assert after.visits[pk]["outcome"] == "out_of_time"

    @rule(choice=choices, index=indexes)
    def time_passes(self, choice, index) -> None:
        """The whole visit happened a little more than an undo window ago."""
        pk = self.pick("time_passes", choice, index)
        window = timedelta(seconds=settings.RESQ_UNDO_WINDOW_SECONDS + 1)
        before = World.read()
        Visit.objects.filter(pk=pk).update(
            arrived_at=F("arrived_at") - window,
            started_at=F("started_at") - window,
            ended_at=F("ended_at") - window,
        )
        check_step(before, World.read(), kind="time_passes", user=None)


def test_it_stays_consistent_whatever_is_clicked(leader, other_leader, rows):
    machine = type("Desk", (DeskMachine,), {"users": [leader, other_leader], "rows": rows})
    run_state_machine_as_test(
        machine,
        settings=hypothesis_settings(stateful_step_count=20),
    )


# --- undoing a finish when the team is full: the machine reaches it only rarely -------


def test_it_checks_staffing_when_a_finish_is_undone(leader_client, leader, other_leader):
    team = Team.objects.get(slug="studysmarter")
    Team.objects.filter(pk=team.pk).update(available_staff=1)
    first = Visit.add(
        by=leader,
        student_name="Zoë Ng",
        student_number="21234567",
        unit_code="",
        team=team,
        enquiry_type=EnquiryType.objects.get(name="Essay"),
    )
    second = Visit.add(
        by=leader,
        student_name="Sam Lee",
        student_number="21234568",
        unit_code="",
        team=team,
        enquiry_type=EnquiryType.objects.get(name="Essay"),
    )
    first.start_session(by=leader)
    first.finish(by=leader)
    second.start_session(by=other_leader)

    response = leader_client.post(
        reverse("queueing:undo_end", kwargs={"pk": first.pk}), headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert Visit.objects.filter(team=team, status="in_session").count() == 1
    first.refresh_from_db()
    assert first.status == "finished"
