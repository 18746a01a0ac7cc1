"""Realistic history for the demo and for benchmarks: visits, their events, staffing.

Each drop-in day is simulated rather than sprinkled with random rows: students arrive
(most around 11:00, most in mid-semester), wait in their team's queue in arrival order,
and are seen only when one of the team's available staff is free. So waits grow at
peak, sessions never outnumber the staff on duty, and the staffing history explains
every session: the reports' utilisation comes out meaningful, not above 100%.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from itertools import accumulate
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import reset_queries, transaction
from django.urls import reverse
from django.utils import timezone

from queueing.estimates import replay
from queueing.models import (
    Board,
    Display,
    EnquiryType,
    StaffingChange,
    Team,
    Visit,
    VisitEvent,
    WaitEstimate,
    new_secret,
)

if TYPE_CHECKING:
    from accounts.models import User

DEFAULT_SEED = 2021
#: The room's display demo_data makes, so the students' side can be tried at once.
DEMO_DISPLAY = "Entrance TV (demo)"
BATCH_SIZE = 5000

OPENS = clock(10, 0)
SESSION_MINUTES = 120.0
MAX_WAIT_MINUTES = 40.0
SEMESTER_WEEKS = 13

#: Expected arrivals on a mid-semester Tuesday; ends of semester get about 40% of it.
PEAK_DAY_VISITS = 20.0
WEEKDAY_FACTOR = (0.95, 1.1, 1.1, 1.0, 0.8)
#: Demand through a semester averages this fraction of its peak (see semester_factor).
MEAN_SEMESTER_FACTOR = 0.4 + 0.6 * 2 / math.pi
#: Average arrivals per drop-in day at the usual density (about 15.5).
DEFAULT_PER_DAY = PEAK_DAY_VISITS * MEAN_SEMESTER_FACTOR * sum(WEEKDAY_FACTOR) / 5
#: Above this daily mean, Poisson counts are drawn from the normal approximation.
POISSON_EXACT_UP_TO = 50.0

#: Chance that a visit's student has been before (same name and number).
RETURNING_CHANCE = 0.3
CANCELLED_CHANCE = 0.04
NO_SHOW_CHANCE = 0.03
NO_UNIT_CHANCE = 0.12

TEAM_SHARE = {"studysmarter": 70, "librarian": 30}
OTHER_TEAM_SHARE = 10
TEAM_STAFF = {"studysmarter": 2, "librarian": 1}
#: Team that calls in one more adviser on busy days, as the service does at peak.
PEAK_HELP_TEAM = "studysmarter"

#: The demo logins, public on purpose: the command prints them for anyone to use.
#: (username, password, first name, staff status, roles)
DEMO_USERS = (
    ("demo", "demo", "Demo", True, ("Student leader", "Coordinator", "Manager")),
    ("leader", "leader", "Lee", False, ("Student leader",)),
)

FIRST_NAMES = (
    "Zoë", "José", "Liam", "Olivia", "Noah", "Charlotte", "Jack", "Amelia", "Wei", "Mei",
    "Jun", "Xin", "Hao", "Priya", "Arjun", "Ananya", "Rahul", "Siti", "Nurul", "Ahmad",
    "Aisyah", "Minh", "Linh", "Thảo", "Hiroshi", "Yuki", "Ji-woo", "Seo-yeon", "Fatima",
    "Omar", "Layla", "Mohammed", "Chiamaka", "Kwame", "Amara", "Aroha", "Tane", "Jarrah",
    "Kirra", "Søren", "Ingrid", "Matteo", "Giulia", "Chloé", "François", "Björn", "Ayşe",
    "Lucía", "Sebastián", "Dmitri", "Anastasia", "Ethan", "Grace", "Isla", "Mia", "Lucas",
    "Declan", "Siobhán", "Niamh", "Deepika", "Tariq", "Nomvula", "Kai", "Renée", "Mary-Jane",
)  # fmt: skip
LAST_NAMES = (
    "Ng", "Álvarez", "O'Brien", "Smith", "Nguyen", "Chen", "Wang", "Li", "Zhang", "Tan",
    "Lim", "Wong", "Patel", "Sharma", "Singh", "Kumar", "Raghunathan", "Abdullah", "Rahman",
    "Hassan", "Tran", "Pham", "Kim", "Park", "Lee", "Tanaka", "Nakamura", "Okafor", "Mensah",
    "Adeyemi", "Williams", "Brown", "Jones", "Taylor", "Wilson", "Murphy", "Kelly", "D'Souza",
    "McAllister", "Rossi", "Bianchi", "Müller", "Schröder", "Fernández", "García", "Kowalski",
    "Nowak", "Ivanova", "Papadopoulos", "Yılmaz", "Haddad", "Khoury", "Ngata", "Bennell",
    "Walker", "Jensen", "da Silva", "van der Berg", "Smith-Jones",
)  # fmt: skip

#: Today's board always shows these first: names that have broken lesser systems.
SHOWCASE_NAMES = (
    "Zoë Ng", "José Álvarez", "Liam O'Brien", "Aroha Ngata", "Priya Raghunathan",
    "Ji-woo Park", "Siobhán Kelly", "Thảo Nguyen",
)  # fmt: skip

#: Unit codes with how often each comes up: first-year service units dominate.
UNIT_CODES = {
    "CITS1401": 10, "PSYC1101": 9, "ANHB1101": 8, "ECON1101": 7, "BIOL1130": 7,
    "LAWS1111": 6, "ACCT1101": 6, "SCIE1106": 5, "MATH1011": 5, "CITS3200": 4,
    "PSYC1102": 4, "ECON1102": 3, "ENVT2250": 3, "ANHB1102": 3, "EDUC4700": 3,
    "ARTF1050": 3, "CITS2200": 2, "MGMT1135": 2, "FINA1221": 2, "STAT1400": 2,
    "LAWS1112": 2, "ENGL1901": 2, "HIST1001": 1, "PHAR2210": 1, "GENG1000": 1,
    "ENVT1104": 1, "BIOL1131": 1,
}  # fmt: skip

#: Enquiry types per team: advisers see essays and assignments, librarians sources.
ENQUIRY_WEIGHTS = {
    "studysmarter": {
        "Essay": 20, "Assignment": 18, "Referencing": 10, "Grammar": 8, "Lab Report": 7,
        "Oral Presentation": 5, "Research Proposal": 4, "Thesis/Paper": 4, "Other": 4,
        "IELTS": 3, "Literature Research": 3, "Finding Sources": 2, "EndNote": 1,
    },
    "librarian": {
        "Referencing": 20, "Finding Sources": 18, "Literature Research": 14, "EndNote": 10,
        "Assignment": 8, "Essay": 6, "Thesis/Paper": 5, "Research Proposal": 4, "Other": 4,
        "Lab Report": 2, "Grammar": 1, "Oral Presentation": 1, "IELTS": 1,
    },
}  # fmt: skip
DEFAULT_ENQUIRY_WEIGHT = 2


@dataclass(frozen=True)
class Student:
    name: str
    number: str
    unit_code: str


class DayPlan(NamedTuple):
    day: date
    visits: int
    #: Demand relative to the semester's peak, from about 0.4 to 1.
    busy: float


@dataclass
class TeamPlan:
    team: Team
    share: int
    staff: int
    enquiry_types: list[EnquiryType]
    enquiry_cum_weights: list[int]


#: The history's last weeks get the wait estimates the desk would have shown.
ESTIMATE_WEEKS = 4


@dataclass
class Made:
    visits: int = 0
    events: int = 0
    staffing_changes: int = 0
    days: int = 0
    first_day: date | None = None
    last_day: date | None = None
    today: int = 0
    estimates: int = 0


@dataclass
class Writer:
    """Collects rows and writes them in large batches: no query per row."""

    events: bool
    made: Made
    visits: list[Visit] = field(default_factory=list)
    staffing: list[StaffingChange] = field(default_factory=list)

    def add_visits(self, visits: list[Visit]) -> None:
        self.visits.extend(visits)
        if len(self.visits) >= BATCH_SIZE:
            self.flush_visits()

    def add_staffing(self, changes: list[StaffingChange]) -> None:
        self.staffing.extend(changes)
        if len(self.staffing) >= BATCH_SIZE:
            self.flush_staffing()

    def flush_visits(self) -> None:
        if not self.visits:
            return
        Visit.objects.bulk_create(self.visits, batch_size=BATCH_SIZE)
        self.made.visits += len(self.visits)
        if self.events:
            events = [event for visit in self.visits for event in events_for(visit)]
            VisitEvent.objects.bulk_create(events, batch_size=BATCH_SIZE)
            self.made.events += len(events)
        self.visits = []
        self.forget_queries()

    def flush_staffing(self) -> None:
        if not self.staffing:
            return
        StaffingChange.objects.bulk_create(self.staffing, batch_size=BATCH_SIZE)
        self.made.staffing_changes += len(self.staffing)
        self.staffing = []
        self.forget_queries()

    def flush(self) -> None:
        self.flush_visits()
        self.flush_staffing()

    @staticmethod
    def forget_queries() -> None:
        # With DEBUG on, Django keeps the SQL of recent queries; thousands of rows of
        # it per batch would hold hundreds of megabytes by the end of a large run.
        reset_queries()


def events_for(visit: Visit) -> list[VisitEvent]:
    """The audit trail the desk would have written for this visit's life."""
    added = VisitEvent(
        visit_id=visit.pk,
        action=VisitEvent.Action.ADDED,
        from_status="",
        to_status=Visit.Status.WAITING,
        at=visit.arrived_at,
        by_id=visit.added_by_id,
    )
    if visit.status == Visit.Status.WAITING:
        return [added]
    events = [added]
    if visit.started_at is not None:
        events.append(
            VisitEvent(
                visit_id=visit.pk,
                action=VisitEvent.Action.STARTED,
                from_status=Visit.Status.WAITING,
                to_status=Visit.Status.IN_SESSION,
                at=visit.started_at,
                by_id=visit.started_by_id,
            )
        )
    if visit.status == Visit.Status.FINISHED:
        events.append(
            VisitEvent(
                visit_id=visit.pk,
                action=VisitEvent.Action.FINISHED,
                from_status=Visit.Status.IN_SESSION,
                to_status=Visit.Status.FINISHED,
                at=visit.ended_at,
                by_id=visit.ended_by_id,
            )
        )
    elif visit.status == Visit.Status.REMOVED:
        closed = visit.outcome == Visit.Outcome.OUT_OF_TIME
        events.append(
            VisitEvent(
                visit_id=visit.pk,
                # Out of time is what closing the queue records, one event per student.
                action=VisitEvent.Action.QUEUE_CLOSED if closed else VisitEvent.Action.REMOVED,
                from_status=Visit.Status.WAITING,
                to_status=Visit.Status.REMOVED,
                at=visit.ended_at,
                by_id=visit.ended_by_id,
            )
        )
    return events


def semester_factor(day_index: int, total_days: int) -> float:
    """Demand through a semester: about 40% of the peak in its first and last weeks."""
    total_weeks = max(total_days / 7, 1.0)
    semesters = max(1, round(total_weeks / SEMESTER_WEEKS))
    position = (day_index + 0.5) / (total_days / semesters)
    return 0.4 + 0.6 * math.sin(math.pi * (position % 1.0))


def poisson(rng: random.Random, mean: float) -> int:
    if mean > POISSON_EXACT_UP_TO:
        # Knuth's method underflows for large means (e^-mean is 0.0 beyond about 745)
        # and takes `mean` steps; at this size the normal approximation is close.
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    # Knuth's method: exact, and quick for the usual daily means.
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class DemoHistory:
    """Simulates drop-in days and turns them into rows."""

    def __init__(
        self,
        rng: random.Random,
        teams: list[TeamPlan],
        *,
        tz: ZoneInfo,
        leader_id: int,
        staff_id: int,
        per_day: float | None = None,
    ) -> None:
        self.rng = rng
        self.teams = teams
        #: Arrivals relative to the usual density (--per-day); staffing scales with it,
        #: so a busier service also has more advisers and its figures stay plausible.
        self.scale = 1.0 if per_day is None else per_day / DEFAULT_PER_DAY
        self.peak_day_visits = PEAK_DAY_VISITS * self.scale
        self.team_cum_shares = list(accumulate(plan.share for plan in teams))
        self.tz = tz
        self.leader_id = leader_id
        self.staff_id = staff_id
        self.unit_codes = list(UNIT_CODES)
        self.unit_cum_weights = list(accumulate(UNIT_CODES.values()))
        # Returning students come from those seen recently, as in a real semester.
        self.recent: deque[Student] = deque(maxlen=400)
        self.numbers_used: set[str] = set()

    # --- the calendar ----------------------------------------------------------------

    def plan_weeks(self, weeks: int, *, last_day: date) -> list[DayPlan]:
        """Visits per weekday over `weeks` weeks ending on `last_day`."""
        first_day = last_day - timedelta(days=7 * weeks - 1)
        total_days = 7 * weeks
        plan = []
        for offset in range(total_days):
            day = first_day + timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            busy = semester_factor(offset, total_days)
            mean = self.peak_day_visits * busy * WEEKDAY_FACTOR[day.weekday()]
            plan.append(DayPlan(day, poisson(self.rng, mean), busy))
        return plan

    def plan_visits(self, visits: int, *, last_day: date) -> list[DayPlan]:
        """About as many weeks as `visits` needs at the usual density, trimmed from the
        oldest end so that exactly `visits` visits are made."""
        if visits <= 0:
            return []
        per_week = self.peak_day_visits * sum(WEEKDAY_FACTOR) * MEAN_SEMESTER_FACTOR
        weeks = max(1, math.ceil(visits / per_week))
        while True:
            plan = self.plan_weeks(weeks, last_day=last_day)
            surplus = sum(day.visits for day in plan) - visits
            if surplus >= 0:
                break
            weeks += max(1, weeks // 50)
        start = 0
        while surplus >= plan[start].visits:
            surplus -= plan[start].visits
            start += 1
        first = plan[start]
        return [first._replace(visits=first.visits - surplus), *plan[start + 1 :]]

    # --- one day ---------------------------------------------------------------------

    def day(self, plan: DayPlan) -> tuple[list[Visit], list[StaffingChange]]:
        rng = self.rng
        opens = datetime.combine(plan.day, OPENS, tzinfo=self.tz).astimezone(UTC)

        def at(minutes: float) -> datetime:
            # Whole seconds, floored: monotonic, so the order of events survives.
            return opens + timedelta(seconds=int(minutes * 60))

        arrivals: list[list[float]] = [[] for _ in self.teams]
        for _ in range(plan.visits):
            team_index = rng.choices(range(len(self.teams)), cum_weights=self.team_cum_shares)[0]
            arrivals[team_index].append(self.arrival_minute())
        # Close the queue once for every team, a minute or two after twelve.
        closes = SESSION_MINUTES + rng.uniform(0.2, 2.5)

        visits: list[Visit] = []
        staffing: list[StaffingChange] = []
        for team, minutes in zip(self.teams, arrivals, strict=True):
            minutes.sort()
            staff = self.staff_of(team)
            joins = None
            if team.team.slug == PEAK_HELP_TEAM and plan.busy > 0.85 and rng.random() < 0.5:
                joins = rng.uniform(35, 55)
            rows, last_end = self.serve(minutes, staff=staff, joins=joins, closes=closes)
            for arrived, started, ended, outcome in rows:
                started_at = None if started is None else at(started)
                visits.append(self.visit(team, at(arrived), started_at, at(ended), outcome))
            staffing.append(self.staffing(team.team, at(-rng.uniform(1, 8)), staff, staff))
            if joins is not None:
                staffing.append(self.staffing(team.team, at(joins), staff + 1, 1))
                staff += 1
            # Staff stay on until the last session ends, even past twelve.
            off = max(last_end, closes) + rng.uniform(0.5, 3)
            staffing.append(self.staffing(team.team, at(off), 0, -staff))
        visits.sort(key=lambda visit: visit.arrived_at)
        return visits, staffing

    def staff_of(self, team: TeamPlan) -> int:
        if self.scale == 1.0:
            return team.staff
        return max(1, round(team.staff * self.scale))

    def arrival_minute(self) -> float:
        rng = self.rng
        if rng.random() < 0.15:
            # A few arrive whenever; most come around the middle of the session.
            return rng.uniform(0, SESSION_MINUTES - 0.01)
        return min(rng.triangular(0, SESSION_MINUTES, SESSION_MINUTES / 2), SESSION_MINUTES - 0.01)

    def serve(
        self, arrivals: Sequence[float], *, staff: int, joins: float | None, closes: float
    ) -> tuple[list[tuple[float, float | None, float, str]], float]:
        """One team's queue for a day, first come first served, in minutes from opening.

        Returns (arrived, started, ended, outcome) per student and when the last
        session ended.
        """
        rng = self.rng
        free_at = [0.0] * staff
        if joins is not None:
            free_at.append(joins)
        heapq.heapify(free_at)
        rows: list[tuple[float, float | None, float, str]] = []
        last_end = 0.0
        for index, arrived in enumerate(arrivals):
            if free_at:
                # Staff take a moment to call the next student.
                start = max(arrived + rng.uniform(0, 1), free_at[0] + rng.uniform(0.2, 1.5))
            else:
                start = math.inf
            wait = start - arrived
            fate = rng.random()
            if start >= SESSION_MINUTES:
                rows.append((arrived, None, closes, Visit.Outcome.OUT_OF_TIME))
            elif fate < CANCELLED_CHANCE or wait > MAX_WAIT_MINUTES:
                # Left before being seen: some at once, most after a while in the queue.
                patience = min(wait, MAX_WAIT_MINUTES) * rng.uniform(0.4, 0.95)
                rows.append((arrived, None, arrived + max(1.0, patience), Visit.Outcome.CANCELLED))
            elif fate < CANCELLED_CHANCE + NO_SHOW_CHANCE:
                # Called and not there: the adviser waits a couple of minutes, then moves on.
                ended = start + rng.uniform(1, 3)
                heapq.heapreplace(free_at, ended)
                last_end = max(last_end, ended)
                rows.append((arrived, None, ended, Visit.Outcome.NO_SHOW))
            else:
                queued = bisect_right(arrivals, start, lo=index + 1) - index - 1
                # A long queue shortens sessions: advisers keep it moving at peak.
                length = rng.triangular(5, 30, 12) if queued < 3 else rng.triangular(5, 20, 9)
                ended = start + length
                heapq.heapreplace(free_at, ended)
                last_end = max(last_end, ended)
                rows.append((arrived, start, ended, Visit.Outcome.FINISHED))
        return rows, last_end

    def visit(
        self,
        plan: TeamPlan,
        arrived: datetime,
        started: datetime | None,
        ended: datetime,
        outcome: str,
    ) -> Visit:
        student = self.student()
        finished = outcome == Visit.Outcome.FINISHED
        return Visit(
            student_name=student.name,
            student_number=student.number,
            unit_code=student.unit_code,
            team_id=plan.team.pk,
            enquiry_type_id=self.rng.choices(
                plan.enquiry_types, cum_weights=plan.enquiry_cum_weights
            )[0].pk,
            status=Visit.Status.FINISHED if finished else Visit.Status.REMOVED,
            outcome=outcome,
            arrived_at=arrived,
            started_at=started,
            ended_at=ended,
            added_by_id=self.leader_id,
            started_by_id=None if started is None else self.staff_id,
            # Staff finish sessions; reception removes those who leave the queue.
            ended_by_id=self.staff_id if finished else self.leader_id,
        )

    def staffing(self, team: Team, at: datetime, available: int, delta: int) -> StaffingChange:
        return StaffingChange(
            team=team, available=available, delta=delta, at=at, by_id=self.staff_id
        )

    # --- students --------------------------------------------------------------------

    def student(self) -> Student:
        rng = self.rng
        if self.recent and rng.random() < RETURNING_CHANCE:
            known = self.recent[int(rng.random() * len(self.recent))]
            if rng.random() < 0.6:
                return known
            return Student(known.name, known.number, self.unit_code())
        student = Student(self.name(), self.new_number(), self.unit_code())
        self.recent.append(student)
        return student

    def name(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    def new_number(self) -> str:
        while True:
            number = str(self.rng.randint(10_000_000, 24_999_999))
            if number not in self.numbers_used:
                self.numbers_used.add(number)
                return number

    def unit_code(self) -> str:
        if self.rng.random() < NO_UNIT_CHANCE:
            return ""
        return self.rng.choices(self.unit_codes, cum_weights=self.unit_cum_weights)[0]


class Command(BaseCommand):
    help = (
        "Make realistic drop-in history (weekdays 10:00-12:00, both teams, staffing) and "
        "a few students waiting today; ensure the demo logins exist. Adds to what is "
        "already there unless --if-empty is given. Development only: refuses with DEBUG off."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        size = parser.add_mutually_exclusive_group()
        size.add_argument(
            "--weeks", type=int, default=12, help="Weeks of history ending yesterday (12)."
        )
        size.add_argument(
            "--visits",
            type=int,
            help="Make this many visits of history instead, over as many weeks as it takes.",
        )
        parser.add_argument(
            "--per-day",
            type=float,
            help=(
                "Average arrivals per drop-in day (default: the usual density, about "
                f"{DEFAULT_PER_DAY:.1f}); staffing scales with it. With --visits, a large "
                "value packs the history into recent weeks."
            ),
        )
        parser.add_argument(
            "--today",
            type=int,
            default=4,
            help="Students left waiting on today's board, plus one in a session (4; 0: none).",
        )
        parser.add_argument(
            "--no-events",
            action="store_true",
            help="Skip the visits' audit trail (much faster for benchmark-sized history).",
        )
        parser.add_argument(
            "--if-empty", action="store_true", help="Make nothing if any visit exists."
        )
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED, help="Random seed, for repeatable data."
        )
        parser.add_argument(
            "--allow-public-demo-logins",
            action="store_true",
            help=(
                "Run with DEBUG off too, creating demo / demo (every role, admin included) and "
                "leader / leader: for benchmarks on a throwaway database, never a real one."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["allow_public_demo_logins"]:
            # Its logins' passwords are printed for anyone to read: on a real service
            # they would be a manager's account with a known password.
            raise CommandError(
                "DEBUG is off, so this looks like a real service: demo_data makes made-up "
                "visits and the logins demo / demo (every role, admin included) and leader "
                "/ leader, whose passwords are public. Nothing was made. Run it in "
                "development (DEBUG on), or on a throwaway database with "
                "--allow-public-demo-logins."
            )
        started = time.perf_counter()
        weeks: int = options["weeks"]
        visits: int | None = options["visits"]
        today_waiting: int = options["today"]
        per_day: float | None = options.get("per_day")
        if weeks < 0 or (visits is not None and visits < 0) or today_waiting < 0:
            raise CommandError("--weeks, --visits and --today cannot be negative.")
        if per_day is not None and not 0.1 <= per_day <= 100_000:
            raise CommandError("--per-day must be between 0.1 and 100000.")

        demo, leader = self.ensure_users()
        if options["if_empty"] and Visit.objects.exists():
            self.stdout.write("Visits already exist: no demo data made.")
            self.print_login()
            return

        # Separate streams, so the size of the history does not change today's board.
        history_rng = random.Random(options["seed"])  # noqa: S311 (demo data, not secrets)
        today_rng = random.Random(options["seed"] + 1)  # noqa: S311
        tz = timezone.get_default_timezone()
        made = Made()
        with transaction.atomic():
            teams = self.team_plans()
            history = DemoHistory(
                history_rng,
                teams,
                tz=tz,
                leader_id=leader.pk,
                staff_id=demo.pk,
                per_day=per_day,
            )
            yesterday = timezone.localdate() - timedelta(days=1)
            if visits is not None:
                plan = history.plan_visits(visits, last_day=yesterday)
            else:
                plan = history.plan_weeks(weeks, last_day=yesterday)
            self.write_history(history, plan, events=not options["no_events"], made=made)
            if plan and not options["no_events"]:
                made.estimates = self.write_estimates(plan[-1].day)
            if today_waiting:
                made.today = self.make_today(
                    today_rng, teams, waiting=today_waiting, demo=demo, leader=leader
                )
            Board.objects.get_or_create(pk=1)
            Board.bump()

        elapsed = time.perf_counter() - started
        self.report(made, elapsed)
        self.print_login()

    # --- users -----------------------------------------------------------------------

    def ensure_users(self) -> tuple[User, User]:
        demo, leader = (self.ensure_user(*login) for login in DEMO_USERS)
        return demo, leader

    def ensure_user(
        self, username: str, password: str, first_name: str, is_staff: bool, roles: Sequence[str]
    ) -> User:
        groups = list(Group.objects.filter(name__in=roles))
        missing = set(roles) - {group.name for group in groups}
        if missing:
            raise CommandError(f"Role(s) {', '.join(sorted(missing))} missing: run migrate first.")
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.first_name = first_name
        user.is_staff = is_staff
        user.is_active = True
        # Only re-hash when the password is wrong: a new hash would sign out every
        # browser logged in as this user each time the server starts.
        if not user.check_password(password):
            user.set_password(password)
        user.save()
        user.groups.set(groups)
        return user

    def print_login(self) -> None:
        self.stdout.write("Log in as demo / demo (every role) or leader / leader (desk only)")
        screen, _ = Display.objects.get_or_create(name=DEMO_DISPLAY)
        self.stdout.write(
            f"The room's display (no login): {reverse('students:display', args=[screen.token])} "
            "on this server; its check-in QR code opens the students' form"
        )
        # Admin requires two-factor authentication; the demo user has none until its
        # first visit there, so logging in and the desk need nothing but the password.
        self.stdout.write(
            "Admin asks demo to set up an authenticator app (two-factor) on the first visit; "
            "to start over: python manage.py remove_two_factor demo"
        )

    # --- history ---------------------------------------------------------------------

    def team_plans(self) -> list[TeamPlan]:
        teams = list(Team.objects.filter(is_active=True).order_by("display_order", "pk"))
        if not teams:
            raise CommandError("There are no active teams: run migrate first.")
        enquiry_types = list(EnquiryType.objects.filter(is_active=True).order_by("pk"))
        if not enquiry_types:
            raise CommandError("There are no active enquiry types: run migrate first.")
        plans = []
        for team in teams:
            weights = ENQUIRY_WEIGHTS.get(team.slug, {})
            plans.append(
                TeamPlan(
                    team=team,
                    share=TEAM_SHARE.get(team.slug, OTHER_TEAM_SHARE),
                    staff=TEAM_STAFF.get(team.slug, 1),
                    enquiry_types=enquiry_types,
                    enquiry_cum_weights=list(
                        accumulate(
                            weights.get(kind.name, DEFAULT_ENQUIRY_WEIGHT) for kind in enquiry_types
                        )
                    ),
                )
            )
        return plans

    def write_history(
        self, history: DemoHistory, plan: list[DayPlan], *, events: bool, made: Made
    ) -> None:
        writer = Writer(events=events, made=made)
        if plan:
            made.first_day, made.last_day, made.days = plan[0].day, plan[-1].day, len(plan)
        for day in plan:
            visits, staffing = history.day(day)
            writer.add_visits(visits)
            writer.add_staffing(staffing)
        writer.flush()

    def write_estimates(self, last_day: date) -> int:
        """The wait estimates the desk would have shown its last four weeks' students as
        they joined (replayed from the history before each), so that Data Analytics has
        estimates to check against the waits. A student estimated by an earlier run
        keeps theirs."""
        end = timezone.make_aware(datetime.combine(last_day + timedelta(days=1), clock()))
        start = end - timedelta(weeks=ESTIMATE_WEEKS)
        known = set(
            WaitEstimate.objects.filter(first=True, made_at__gte=start).values_list(
                "visit_id", flat=True
            )
        )
        made = [
            WaitEstimate(
                visit_id=wait.visit_id,
                made_at=wait.arrived_at,
                board_version=0,
                first=True,
                ahead=wait.ahead,
                staff=wait.staff,
                in_session=0,
                low_minutes=wait.estimate.low,
                median_minutes=wait.estimate.median,
                high_minutes=wait.estimate.high,
            )
            for team in Team.objects.all()
            for wait in replay(team, start, end)
            if wait.estimate is not None and wait.visit_id not in known
        ]
        WaitEstimate.objects.bulk_create(made, batch_size=1000)
        return len(made)

    # --- today -----------------------------------------------------------------------

    def make_today(
        self, rng: random.Random, teams: list[TeamPlan], *, waiting: int, demo: User, leader: User
    ) -> int:
        """Students waiting now for 3 to 26 minutes, so their timers show each colour,
        one in a session, and the day's staffing set before the first of them came."""
        now = timezone.now()
        by_slug = {plan.team.slug: plan for plan in teams}
        main = by_slug.get("studysmarter", teams[0])
        second = by_slug.get("librarian", teams[-1])

        staff_from = now - timedelta(minutes=40)
        for plan in teams:
            team = plan.team
            # Never fewer staff than sessions running, counting the one about to be made.
            running = team.visits.filter(status=Visit.Status.IN_SESSION).count()
            available = max(plan.staff, running + (1 if plan is main else 0))
            Team.objects.filter(pk=team.pk).update(available_staff=available)
            StaffingChange.objects.create(
                team=team,
                available=available,
                delta=available - team.available_staff,
                at=staff_from,
                by=demo,
            )

        # A student seen before comes back today, so the desk can offer the known name.
        regular = (
            Visit.objects.filter(ended_at__isnull=False)
            .order_by("-arrived_at")
            .values_list("student_name", "student_number")
            .first()
        )
        history = DemoHistory(
            rng, teams, tz=timezone.get_default_timezone(), leader_id=leader.pk, staff_id=demo.pk
        )
        today: list[Visit] = []
        in_session = Visit(
            student_name="Mohammed Hassan",
            student_number=history.new_number(),
            unit_code="CITS1401",
            team=main.team,
            enquiry_type=self.pick_enquiry(rng, main),
            status=Visit.Status.IN_SESSION,
            arrived_at=now - timedelta(minutes=31, seconds=rng.randint(0, 59)),
            started_at=now - timedelta(minutes=7, seconds=rng.randint(0, 59)),
            added_by=leader,
            started_by=demo,
        )
        today.append(in_session)
        for index in range(waiting):
            # Oldest first, spread from about 26 minutes down to about 3 minutes ago.
            fraction = (waiting - 1 - index) / (waiting - 1) if waiting > 1 else 0.5
            ago = timedelta(minutes=3 + 23 * fraction, seconds=rng.randint(0, 40))
            plan = second if index % 3 == 1 else main
            if index == 3 and regular:
                name, number = regular
            else:
                name = SHOWCASE_NAMES[index] if index < len(SHOWCASE_NAMES) else history.name()
                number = history.new_number()
            today.append(
                Visit(
                    student_name=name,
                    student_number=number,
                    unit_code=history.unit_code(),
                    team=plan.team,
                    enquiry_type=self.pick_enquiry(rng, plan),
                    arrived_at=now - ago,
                    added_by=leader,
                )
            )
        self.give_tickets(today, now=now)
        Visit.objects.bulk_create(today)
        VisitEvent.objects.bulk_create(event for visit in today for event in events_for(visit))
        return len(today)

    @staticmethod
    def give_tickets(visits: list[Visit], *, now: datetime) -> None:
        """Today's ticket codes in order of arrival, after any given today already, and
        each student's own page, as the desk gives them (Visit.add)."""
        last: dict[str, int] = {}
        for visit in sorted(visits, key=lambda visit: visit.arrived_at):
            prefix = visit.team.ticket_prefix
            if prefix not in last:
                first = Visit(team=visit.team, arrived_at=now).next_ticket()
                last[prefix] = int(first.rsplit("-", 1)[1]) - 1
            last[prefix] += 1
            visit.ticket = f"{prefix}-{last[prefix]:03d}"
            visit.student_key = new_secret()

    @staticmethod
    def pick_enquiry(rng: random.Random, plan: TeamPlan) -> EnquiryType:
        return rng.choices(plan.enquiry_types, cum_weights=plan.enquiry_cum_weights)[0]

    # --- output ----------------------------------------------------------------------

    def report(self, made: Made, elapsed: float) -> None:
        if made.first_day and made.last_day:
            self.stdout.write(
                f"Made {made.visits:,} visits on {made.days:,} drop-in days "
                f"({made.first_day:%d %b %Y} to {made.last_day:%d %b %Y}), "
                f"{made.events:,} visit events and {made.staffing_changes:,} staffing changes"
                f" (and {made.estimates:,} wait estimates as the desk would have shown them)."
            )
        else:
            self.stdout.write("Made no history.")
        if made.today:
            self.stdout.write(
                f"Today's board: {made.today - 1} waiting and 1 in a session; staffing set."
            )
        self.stdout.write(self.style.SUCCESS(f"Done in {elapsed:.1f} s."))
