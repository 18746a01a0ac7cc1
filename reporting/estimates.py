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

import heapq
import random
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from queueing.models import StaffingChange, Team, Visit

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
) -> Estimate | None:
    """Minutes until the session of a student with `ahead` students in front starts,
    with `staff` advisers available, sessions in progress that have run `running`
    minutes each, and recent session lengths `lengths` (minutes) to draw from; `delays`
    are recent waits of students who found an adviser free (the minutes the desk takes
    to call someone), one drawn onto each run. None when there is nothing to go on: no
    adviser, or no session length seen."""
    if not lengths or max(staff, len(running)) <= 0:
        return None
    seen = sorted(lengths)
    advisers = max(staff, len(running))
    # A big desk's wait is a sum of many sessions and varies less: fewer runs do, which
    # keeps an estimate near 8,000 draws however many advisers and students ahead.
    runs = max(40, min(runs, DRAWS // (len(running) + ahead + 1)))
    waits = []
    for _ in range(runs):
        free = [0.0] * (advisers - len(running))
        for elapsed in running:
            longer = bisect_right(seen, elapsed)
            # A session already longer than any seen ends any moment now.
            free.append(
                seen[rng.randrange(longer, len(seen))] - elapsed if longer < len(seen) else 0.0
            )
        heapq.heapify(free)
        for _ in range(ahead):
            heapq.heapreplace(free, free[0] + seen[rng.randrange(len(seen))])
        waits.append(free[0] + (delays[rng.randrange(len(delays))] if delays else 0.0))
    waits.sort()
    return Estimate(
        low=waits[int(0.1 * (runs - 1))],
        median=waits[(runs - 1) // 2],
        high=waits[int(0.9 * (runs - 1))],
    )


# --- replaying history ---------------------------------------------------------------------


@dataclass(frozen=True)
class Replayed:
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
    visits = list(
        Visit.objects.filter(
            team=team,
            arrived_at__gte=start - timedelta(days=HISTORY_DAYS),
            arrived_at__lt=end,
        )
        .order_by("arrived_at", "pk")
        .values_list("arrived_at", "started_at", "ended_at", "status")
    )
    arrivals = [arrived for arrived, *_ in visits]
    finished = sorted(
        (ended, (ended - started).total_seconds() / 60, _local_hour(started))
        for _, started, ended, status in visits
        if status == Visit.Status.FINISHED and started is not None and ended is not None
    )
    ends = [ended for ended, *_ in finished]
    changes = list(
        StaffingChange.objects.filter(team=team, at__lt=end)
        .order_by("at", "pk")
        .values_list("at", "available")
    )
    change_times = [at for at, _ in changes]
    # (arrival, wait) of those who found an adviser free and nobody ahead, as met.
    called: list[tuple[datetime, float]] = []
    replayed = []
    for arrived, started, _, _ in visits:
        if arrived < start or started is None:
            continue
        # What the desk knew: the visits of the 12 hours before this arrival (a wait and
        # a session are over well within them).
        first = bisect_left(arrivals, arrived - timedelta(hours=12))
        last = bisect_left(arrivals, arrived)
        earlier = visits[first:last]
        ahead = sum(
            1 for _, s, e, _ in earlier if (s is None or s > arrived) and (e is None or e > arrived)
        )
        running = [
            (arrived - s).total_seconds() / 60
            for _, s, e, _ in earlier
            if s is not None and s <= arrived and (e is None or e > arrived)
        ]
        at_change = bisect_right(change_times, arrived)
        inferred = at_change == 0
        if inferred:
            # No staffing recorded yet: the most sessions at once in the hour before.
            hour_ago = arrived - timedelta(hours=1)
            staff = max(
                [len(running)]
                + [
                    sum(
                        1
                        for _, s, e, _ in earlier
                        if s is not None and s <= moment and (e is None or e > moment)
                    )
                    for _, moment, _, _ in earlier
                    if moment is not None and hour_ago <= moment <= arrived
                ]
            )
            staff = max(staff, 1)
        else:
            staff = changes[at_change - 1][1]
        # The most recent sessions of the 28 days (a busy desk's month holds thousands).
        latest = bisect_right(ends, arrived)
        window = finished[
            max(
                bisect_left(ends, arrived - timedelta(days=HISTORY_DAYS)), latest - MOST_LENGTHS
            ) : latest
        ]
        hour = _local_hour(arrived)
        near = [length for _, length, h in window if abs(h - hour) <= NEAR_HOURS]
        lengths = near if len(near) >= ENOUGH_LENGTHS else [length for _, length, _ in window]
        # Waits of those who found an adviser free, already over by this arrival.
        oldest = bisect_left(called, (arrived - timedelta(days=HISTORY_DAYS),))
        delays = [
            wait
            for moment, wait in called[max(oldest, len(called) - MOST_DELAYS) :]
            if moment + timedelta(minutes=wait) <= arrived
        ]
        estimate = estimate_wait(
            ahead=ahead, staff=staff, running=running, lengths=lengths, rng=rng, delays=delays
        )
        if ahead == 0 and len(running) < staff:
            called.append((arrived, (started - arrived).total_seconds() / 60))
        mean = statistics.fmean(length for _, length, _ in window) if window else None
        naive = None if mean is None or staff <= 0 else (ahead + 1) * mean / staff
        replayed.append(
            Replayed(
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
