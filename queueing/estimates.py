"""How long until a waiting student's session starts: an estimate as a range, and a
replay of history that checks it against what then happened.

The estimate simulates the team's queue from what the desk knows at the moment: the
staff available, the sessions in progress and how long each has run, the people ahead,
and the team's recent session lengths at that time of day. Each run draws the rest of
every session in progress (a length longer than it has run so far) and a length for
each student ahead, hands students to whichever adviser frees up first, and notes
when the student's own session would start; the range is the 10th to the 90th
percentile of the runs, meant to hold about 80 % of actual waits.

A simulation rather than a queueing formula: the sessions in progress have already run
some minutes, and a short queue's wait depends on exactly those; Erlang C (the
Staffing page) describes a steady state, not the next few minutes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.core.cache import caches
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from queueing.cache import cache_call
from queueing.models import StaffingChange, Team, Visit, WaitEstimate

logger = logging.getLogger(__name__)

RUNS = 200
DRAWS = 8000
#: Session lengths drawn from: the team's sessions that ended in these days before.
HISTORY_DAYS = 28
#: Within this many hours of the time of day, where there are enough of them.
NEAR_HOURS = 1
ENOUGH_LENGTHS = 20
#: At most this many of the latest sessions and desk delays are drawn from.
MOST_LENGTHS = 500
MOST_DELAYS = 200
#: Where the staff on duty is inferred from sessions at once (history with no staffing
#: recorded), an adviser who was free all along is never seen: as likely as not, one
#: more was on duty. (On the old-system sample: none 69.6 % within range, 0.3 80.2 %,
#: 0.5 79.2 % with the median error down from 1.4 to 1.1 min, 0.7 73.8 %.)
UNSEEN = 0.5


@dataclass(frozen=True)
class Estimate:
    low: float  # minutes: the 10th percentile of the runs
    median: float
    high: float  # the 90th percentile

    def holds(self, minutes: float) -> bool:
        return self.low <= minutes <= self.high


def estimate_wait(
    *,
    ahead: int,
    staff: int,
    running: Sequence[float],
    lengths: Sequence[float],
    rng: random.Random,
    delays: Sequence[float] = (),
    runs: int = RUNS,
    unseen: float = 0.0,
) -> Estimate | None:
    """Minutes until the session of a student with `ahead` students in front starts,
    with `staff` advisers available, sessions in progress that have run `running`
    minutes each, and recent session lengths `lengths` (minutes) to draw from; `delays`
    are recent waits of students who found an adviser free (the minutes the desk takes
    to call someone), one drawn onto each run. None when there is nothing to go on: no
    adviser, or no session length seen."""
    line = estimate_line(
        waiting=ahead, staff=staff, running=running, lengths=lengths, rng=rng,
        delays=delays, runs=runs, unseen=unseen,
    )  # fmt: skip
    return None if line is None else line[ahead]


def estimate_line(
    *,
    waiting: int,
    staff: int,
    running: Sequence[float],
    lengths: Sequence[float],
    rng: random.Random,
    delays: Sequence[float] = (),
    runs: int = RUNS,
    unseen: float = 0.0,
) -> list[Estimate] | None:
    """The estimate of every place in a line of `waiting` students and of a newcomer
    behind them (`waiting + 1` estimates, the newcomer's last), from one simulation:
    each run hands the students in turn to whichever adviser frees up first. As
    `estimate_wait` otherwise; its estimate for `ahead` students in front is this
    line's at `ahead`.

    The runs go side by side (numpy): a step hands one place in line to the first
    adviser free in every run at once, so a line costs a few microseconds a place
    however many runs (the desk makes one each time a line changes)."""
    if not lengths or max(staff, len(running)) <= 0:
        return None
    seen = np.sort(np.asarray(lengths, dtype=float))
    advisers = max(staff, len(running))
    # A big desk's wait is a sum of many sessions and varies less: fewer runs do, which
    # keeps a line near 8,000 draws however many advisers and students ahead.
    runs = max(40, min(runs, DRAWS // (len(running) + waiting + 1)))
    generator = np.random.default_rng(rng.getrandbits(64))
    draw = generator.integers
    # Staff inferred from sessions at once cannot see an adviser who was free all along:
    # in this share of the runs one more is on duty.
    free = np.zeros((runs, advisers + (unseen > 0)))
    if unseen > 0:
        free[generator.random(runs) >= unseen, advisers] = np.inf
    for adviser, elapsed in enumerate(running, advisers - len(running)):
        longer = int(np.searchsorted(seen, elapsed, side="right"))
        # A session already longer than any seen ends any moment now.
        if longer < len(seen):
            free[:, adviser] = seen[draw(longer, len(seen), runs)] - elapsed
    starts = np.empty((waiting + 1, runs))
    sessions = seen[draw(0, len(seen), (waiting, runs))]
    every = np.arange(runs)
    for place in range(waiting):
        first = free.argmin(axis=1)
        starts[place] = free[every, first]
        free[every, first] += sessions[place]
    starts[waiting] = free.min(axis=1)
    if delays:
        starts += np.asarray(delays, dtype=float)[draw(0, len(delays), runs)]
    starts.sort(axis=1)
    low, median, high = int(0.1 * (runs - 1)), (runs - 1) // 2, int(0.9 * (runs - 1))
    return [
        Estimate(low=float(row[low]), median=float(row[median]), high=float(row[high]))
        for row in starts
    ]


# --- what the desk knew ------------------------------------------------------------------


class Known:
    """A team's visits and staffing changes, read once, and what the desk knew of them
    at any moment: the students waiting, the sessions in progress, the staff on duty,
    the session lengths and the desk delays to draw from. The replay asks it for every
    arrival in a range; the desk, for now."""

    def __init__(self, visits: list[tuple], changes: list[tuple]) -> None:
        # (arrived_at, started_at, ended_at, status, pk) by arrival; (at, available) by time.
        self.visits = visits
        self.arrivals = [arrived for arrived, *_ in visits]
        self.finished = sorted(
            (ended, (ended - started).total_seconds() / 60, _local_hour(started))
            for _, started, ended, status, _ in visits
            if status == Visit.Status.FINISHED and started is not None and ended is not None
        )
        self.ends = [ended for ended, *_ in self.finished]
        self.changes = changes
        self.change_times = [at for at, _ in changes]

    @classmethod
    def read(cls, team_id: int, start: datetime, end: datetime) -> Known:
        """The team's visits that arrived in [start - 28 days, end), and its staffing."""
        return cls.read_teams([team_id], start, end)[team_id]

    @classmethod
    def read_teams(cls, team_ids: Sequence[int], start: datetime, end: datetime) -> dict:
        """`read` for several teams at once, in two queries."""
        if not team_ids:
            return {}
        visits: dict[int, list[tuple]] = {team_id: [] for team_id in team_ids}
        for team_id, *visit in (
            Visit.objects.filter(
                team_id__in=team_ids,
                arrived_at__gte=start - timedelta(days=HISTORY_DAYS),
                arrived_at__lt=end,
            )
            .order_by("arrived_at", "pk")
            .values_list("team_id", "arrived_at", "started_at", "ended_at", "status", "pk")
        ):
            visits[team_id].append(tuple(visit))
        changes: dict[int, list[tuple]] = {team_id: [] for team_id in team_ids}
        for team_id, *change in (
            StaffingChange.objects.filter(team_id__in=team_ids, at__lt=end)
            .order_by("at", "pk")
            .values_list("team_id", "at", "available")
        ):
            changes[team_id].append(tuple(change))
        return {team_id: cls(visits[team_id], changes[team_id]) for team_id in team_ids}

    def state(self, moment: datetime) -> tuple[int, list[float], int, bool]:
        """At `moment`: the students waiting, the minutes each session in progress had
        run, the staff on duty and whether that was inferred (no staffing recorded
        yet: the most sessions at once in the hour before). The visits of the 12 hours
        before are all it reads: a wait and a session are over well within them."""
        first = bisect_left(self.arrivals, moment - timedelta(hours=12))
        earlier = self.visits[first : bisect_left(self.arrivals, moment)]
        ahead = sum(
            1 for _, s, e, *_ in earlier if (s is None or s > moment) and (e is None or e > moment)
        )
        running = [
            (moment - s).total_seconds() / 60
            for _, s, e, *_ in earlier
            if s is not None and s <= moment and (e is None or e > moment)
        ]
        at_change = bisect_right(self.change_times, moment)
        if at_change:
            return ahead, running, self.changes[at_change - 1][1], False
        hour_ago = moment - timedelta(hours=1)
        staff = max(
            [len(running)]
            + [
                sum(
                    1
                    for _, s, e, *_ in earlier
                    if s is not None and s <= at and (e is None or e > at)
                )
                for _, at, *_ in earlier
                if at is not None and hour_ago <= at <= moment
            ]
        )
        return ahead, running, max(staff, 1), True

    def window(self, moment: datetime) -> list[tuple[datetime, float, int]]:
        """(ended, minutes, local hour started) of the latest sessions that ended in the
        28 days before `moment` (a busy desk's month holds thousands)."""
        latest = bisect_right(self.ends, moment)
        oldest = bisect_left(self.ends, moment - timedelta(days=HISTORY_DAYS))
        return self.finished[max(oldest, latest - MOST_LENGTHS) : latest]

    def lengths(self, moment: datetime) -> list[float]:
        """Session lengths to draw from at `moment`: those of the window within an hour
        of its time of day, where there are enough of them."""
        window = self.window(moment)
        hour = _local_hour(moment)
        near = [length for _, length, h in window if abs(h - hour) <= NEAR_HOURS]
        return near if len(near) >= ENOUGH_LENGTHS else [length for _, length, _ in window]

    def delays(self, moment: datetime) -> list[float]:
        """The latest desk delays over by `moment`, within the 28 days before it."""
        oldest = moment - timedelta(days=HISTORY_DAYS)
        found: list[float] = []
        last = bisect_left(self.arrivals, moment)
        for arrived, started, *_ in reversed(self.visits[max(0, last - 4 * MOST_DELAYS) : last]):
            if arrived < oldest or len(found) >= MOST_DELAYS:
                break
            if started is None or started > moment:
                continue
            ahead, running, staff, _ = self.state(arrived)
            if _found_free(ahead, running, staff):
                found.append((started - arrived).total_seconds() / 60)
        return found[::-1]


def _found_free(ahead: int, running: list[float], staff: int) -> bool:
    """Whether a student found nobody ahead and an adviser free: their wait was a desk
    delay, the minutes the desk took to call them."""
    return ahead == 0 and len(running) < staff


# --- on the desk -----------------------------------------------------------------------

#: What an estimate draws from is read once an hour a team, and kept in the board cache.
HISTORY_CACHE_SECONDS = 60 * 60
#: A line is simulated this many places beyond its last student (see queue_estimates).
EXTRA_PLACES = 10
#: A line is simulated again after this long even if only students joined it since.
NEWCOMER_FRESH = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Shown:
    """An estimate as the desk shows it: when the session should start, between two
    times. The browser counts down to them, so the board need not change as the
    clock moves."""

    low_at: datetime
    high_at: datetime
    #: The times as the board carries them, for the browser (`estimate_markup`).
    attrs: str

    @classmethod
    def made(cls, at: datetime, low: float, high: float) -> Shown:
        low_at, high_at = at + timedelta(minutes=low), at + timedelta(minutes=high)
        attrs = f'data-from="{low_at.isoformat()}" data-until="{high_at.isoformat()}"'
        return cls(low_at, high_at, attrs)


@dataclass(frozen=True, slots=True)
class Line:
    """A team's line as simulated, kept in the process: what it was made from (the
    staff and the sessions in progress, the students in line), when, and the estimate
    of each place and EXTRA_PLACES beyond."""

    head: tuple
    waiting: tuple[int, ...]
    made_at: datetime
    estimates: list[Estimate]


_lines: dict[int, Line] = {}


#: Each stored estimate as shown, by its id, in this process: a board shows most of its
#: waiting students' estimates again at every version.
SHOWN_IN_PROCESS = 5000
_shown: dict[int, Shown] = {}


def _stored(row: tuple) -> Shown:
    shown = _shown.get(row.estimate__id)
    if shown is None:
        if len(_shown) >= SHOWN_IN_PROCESS:
            _shown.clear()
        shown = _shown[row.estimate__id] = Shown.made(
            row.estimate__made_at, row.estimate__low_minutes, row.estimate__high_minutes
        )
    return shown


def history(team_ids: Sequence[int], now: datetime) -> dict[int, tuple[list, list]]:
    """Each team's session lengths and desk delays to draw from at `now`: read once an
    hour a team (a month of visits), and kept in the board cache for the hour."""
    keys = {team_id: history_key(team_id, now) for team_id in team_ids}
    boards = caches["board"]
    found = cache_call(boards.get_many, list(keys.values())) or {}
    missing = [team_id for team_id, key in keys.items() if key not in found]
    read = {}
    for team_id, known in Known.read_teams(missing, now, now).items():
        found[keys[team_id]] = read[keys[team_id]] = (known.lengths(now), known.delays(now))
    drawn = {team_id: found[key] for team_id, key in keys.items()}
    if read:
        cache_call(boards.set_many, read, timeout=HISTORY_CACHE_SECONDS)
    return drawn


def history_key(team_id: int, now: datetime) -> str:
    return f"resq:estimate-history:{team_id}:{timezone.localtime(now):%Y%m%d%H}"


def queue_estimates(
    team: Team, waiting: Sequence, running_since: Sequence[datetime], *, now: datetime,
    version: int, drawn: Callable[[], tuple[list, list]],
) -> tuple[dict[int, Shown], Shown | None, list[WaitEstimate]]:  # fmt: skip
    """One team's estimates as a board version shows them: each waiting student's (by
    visit id), a newcomer's, and the estimates to store.

    `waiting` are the board's rows of the team's line, in order, each with its current
    estimate (`estimate__id`, `estimate__ahead`, ...); `running_since` when each of the
    team's sessions in progress started; `drawn()` the team's lengths and delays.

    A student keeps the estimate they have until their place in line or the team's
    staff changes. A simulation of the whole line gives the others' and a newcomer's,
    and EXTRA_PLACES more: while only students joining at the end change the line (and
    for at most NEWCOMER_FRESH), each takes the place the line already has for them,
    which is the newcomer's estimate the desk showed as they came in, counted down.
    """
    staff = team.available_staff
    head = (staff, tuple(sorted(running_since)))
    in_line = tuple(row.pk for row in waiting)
    shown: dict[int, Shown] = {}
    needs = []
    for place, row in enumerate(waiting):
        if row.estimate__id is None or (row.estimate__ahead, row.estimate__staff) != (place, staff):
            needs.append((place, row))
        else:
            shown[row.pk] = _stored(row)
    # Read once: another thread of the process may replace it meanwhile.
    line = _lines.get(team.pk)
    if not (
        line is not None
        and line.head == head
        and in_line[: len(line.waiting)] == line.waiting
        and len(in_line) < len(line.estimates)
        and now - line.made_at < NEWCOMER_FRESH
    ):
        lengths, delays = drawn()
        seed = hashlib.blake2b(repr((team.pk, head, in_line)).encode(), digest_size=8).digest()
        estimates = estimate_line(
            waiting=len(in_line) + EXTRA_PLACES,
            staff=staff,
            running=[(now - since).total_seconds() / 60 for since in running_since],
            lengths=lengths,
            delays=delays,
            rng=random.Random(seed),  # noqa: S311 (a simulation, not a secret)
        )
        line = _lines[team.pk] = Line(head, in_line, now, estimates or [])
    if len(in_line) >= len(line.estimates):  # nothing to go on: no estimate
        return shown, None, []
    # Minutes from now of what the line says from when it was made, as the board shows it.
    gone = (now - line.made_at).total_seconds() / 60
    made = []
    for place, row in needs:
        estimate = line.estimates[place]
        shown[row.pk] = Shown.made(line.made_at, estimate.low, estimate.high)
        made.append(
            WaitEstimate(
                visit_id=row.pk,
                made_at=now,
                board_version=version,
                first=row.estimate__id is None,
                ahead=place,
                staff=staff,
                in_session=len(running_since),
                low_minutes=max(0.0, estimate.low - gone),
                median_minutes=max(0.0, estimate.median - gone),
                high_minutes=max(0.0, estimate.high - gone),
            )
        )
    newcomer = line.estimates[len(in_line)]
    return shown, Shown.made(line.made_at, newcomer.low, newcomer.high), made


def save_estimates(made: list[WaitEstimate]) -> None:
    """Store the estimates a board shows, each as its visit's current one.

    A student joining is one insert. Students estimated again (a place or the staff
    changed) have their earlier estimates made not current in the same transaction, so
    no board ever reads them with none.

    The board is rendered by whichever screen asks first for a new version, so this
    never fails it: an estimate another process stored for the same visit first (the
    same version, or a visit's one current estimate), or a visit deleted meanwhile,
    refuses the whole batch and leaves the board as it is."""
    if not made:
        return
    again = [estimate.visit_id for estimate in made if not estimate.first]
    # Inside a transaction (a test's), a savepoint keeps a refused insert from ending it.
    within = (
        transaction.atomic() if again or connection.in_atomic_block else contextlib.nullcontext()
    )
    try:
        with within:
            if again:
                WaitEstimate.objects.filter(visit_id__in=again, current=True).update(current=False)
            WaitEstimate.objects.bulk_create(made)
    except DatabaseError as error:
        logger.info("Wait estimates not stored (another screen stored them first?): %s", error)


def forget_in_process() -> None:
    _lines.clear()
    _shown.clear()


# --- replaying history ---------------------------------------------------------------------


@dataclass(frozen=True)
class Replayed:
    visit_id: int
    arrived_at: datetime
    ahead: int
    staff: int
    inferred: bool  # staff on duty inferred from sessions at once (no staffing recorded)
    estimate: Estimate | None
    naive: float | None  # minutes: (ahead + 1) × the mean session of 4 weeks ÷ staff
    actual: float  # minutes


def replay(team: Team, start: datetime, end: datetime, *, seed: int = 2021) -> list[Replayed]:
    """Every student of `team` who arrived in [start, end) and was seen, estimated as
    the desk would have estimated them the moment they joined: from the visits,
    sessions and staffing known then and nothing later."""
    rng = random.Random(seed)  # noqa: S311 (a simulation, not a secret)
    known = Known.read(team.pk, start, end)
    # (arrival, wait) of those who found an adviser free and nobody ahead, as met.
    called: list[tuple[datetime, float]] = []
    replayed = []
    for arrived, started, _, _, pk in known.visits:
        if arrived < start or started is None:
            continue
        ahead, running, staff, inferred = known.state(arrived)
        # Waits of those who found an adviser free, already over by this arrival.
        oldest = bisect_left(called, (arrived - timedelta(days=HISTORY_DAYS),))
        delays = [
            wait
            for moment, wait in called[max(oldest, len(called) - MOST_DELAYS) :]
            if moment + timedelta(minutes=wait) <= arrived
        ]
        estimate = estimate_wait(
            ahead=ahead,
            staff=staff,
            running=running,
            lengths=known.lengths(arrived),
            rng=rng,
            delays=delays,
            unseen=UNSEEN if inferred else 0.0,
        )
        if _found_free(ahead, running, staff):
            called.append((arrived, (started - arrived).total_seconds() / 60))
        window = known.window(arrived)
        mean = statistics.fmean(length for _, length, _ in window) if window else None
        naive = None if mean is None or staff <= 0 else (ahead + 1) * mean / staff
        replayed.append(
            Replayed(
                visit_id=pk,
                arrived_at=arrived,
                ahead=ahead,
                staff=staff,
                inferred=inferred,
                estimate=estimate,
                naive=naive,
                actual=(started - arrived).total_seconds() / 60,
            )
        )
    return replayed


def _local_hour(moment: datetime) -> int:
    return timezone.localtime(moment).hour
