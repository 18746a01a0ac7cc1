"""The desk benchmark's hands in one checkout's database: a leader, and a board of a
given size.

`desk_bench.py` imports `set_board` for the tree it runs in, and runs this file with
each checkout's own Python and code (the current tree, and with `--before` an older
one beside it), so that what it writes matches that checkout's models. Run so, it
reads one JSON command a line on stdin and answers each with one JSON line:

    {"op": "leader", "username": ..., "password": ...}  -> {"teams": [...], "enquiry_types": [...]}
    {"op": "board", "waiting": 20}                       -> {"version": 7, "waiting": 20}
    {"op": "waiting"}                                    -> {"waiting": 38}

It imports nothing from the benchmark: `bench` is the checkout's own package there.
"""

from __future__ import annotations

import json
import sys
import traceback
from datetime import timedelta
from pathlib import Path

FIRST_NAMES = ["Aisha", "Ben", "Chloe", "Dinh", "Ella", "Farid", "Grace", "Hiro", "Isla", "Jack"]
LAST_NAMES = ["Nguyen", "Smith", "Patel", "O'Brien", "Chen", "Walker", "Kaur", "Rossi", "Lee"]


#: Finished sessions a team a day, around this time of day, in the four weeks before:
#: what wait estimates draw from (a checkout that estimates does the work it would).
HISTORY_PER_DAY = 10
HISTORY_DAYS = 28


def set_board(waiting: int, *, user, staff: int = 2) -> int:
    """A board with `waiting` students waiting and nothing else, after four weeks of
    finished sessions (made once); returns its version."""
    from django.db import transaction
    from django.utils import timezone

    from queueing.models import Board, EnquiryType, Team, Visit

    with transaction.atomic():
        now = timezone.now()
        Visit.objects.filter(arrived_at__gte=now - timedelta(hours=12)).delete()
        Team.objects.update(available_staff=staff)
        teams = list(Team.objects.filter(is_active=True))
        kinds = list(EnquiryType.objects.filter(is_active=True))
        if not Visit.objects.filter(arrived_at__lt=now - timedelta(hours=12)).exists():
            make_history(teams, kinds, user=user, now=now)
        Visit.objects.bulk_create(
            Visit(
                student_name=f"{FIRST_NAMES[i % 10]} {LAST_NAMES[i % 9]}",
                student_number=f"{21000000 + i:08d}",
                unit_code=("CITS3200", "ECON1101", "", "LAWS1111")[i % 4],
                team=teams[i % len(teams)],
                enquiry_type=kinds[i % len(kinds)],
                arrived_at=now - timedelta(seconds=12 * (waiting - i)),
                added_by=user,
            )
            for i in range(waiting)
        )
        Board.bump()
    return Board.current_version()


def make_history(teams: list, kinds: list, *, user, now) -> None:
    """Each team's finished sessions of 10 to 40 minutes around this time of day, on
    each of the four weeks' days before today."""
    import random

    from queueing.models import Visit

    rng = random.Random(2021)
    visits = []
    for day in range(1, HISTORY_DAYS + 1):
        for team in teams:
            for i in range(HISTORY_PER_DAY):
                arrived = now - timedelta(days=day, minutes=rng.uniform(-90, 90))
                started = arrived + timedelta(minutes=rng.uniform(0, 15))
                visits.append(
                    Visit(
                        student_name=f"{FIRST_NAMES[i % 10]} {LAST_NAMES[day % 9]}",
                        student_number=f"{20000000 + len(visits):08d}",
                        team=team,
                        enquiry_type=kinds[i % len(kinds)],
                        arrived_at=arrived,
                        started_at=started,
                        ended_at=started + timedelta(minutes=rng.uniform(10, 40)),
                        status=Visit.Status.FINISHED,
                        outcome=Visit.Outcome.FINISHED,
                        added_by=user,
                    )
                )
    Visit.objects.bulk_create(visits, batch_size=1000)


def waiting_count() -> int:
    from queueing.models import Visit

    return Visit.objects.filter(status=Visit.Status.WAITING).count()


def leader(username: str, password: str | None = None):
    """A student leader (the same one again on a kept database)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user, _ = get_user_model().objects.get_or_create(
        username=username, defaults={"first_name": "Bench"}
    )
    if password:
        user.set_password(password)
        user.save()
    user.groups.set([Group.objects.get(name="Student leader")])
    return user


def answer(command: dict, state: dict) -> dict:
    from queueing.models import EnquiryType, Team

    if command["op"] == "leader":
        state["user"] = leader(command["username"], command["password"])
        return {
            "teams": list(Team.objects.filter(is_active=True).values_list("pk", flat=True)),
            "enquiry_types": list(
                EnquiryType.objects.filter(is_active=True).values_list("pk", flat=True)
            ),
        }
    if command["op"] == "board":
        version = set_board(command["waiting"], user=state["user"])
        return {"version": version, "waiting": waiting_count()}
    if command["op"] == "waiting":
        return {"waiting": waiting_count()}
    raise ValueError(f"unknown command {command['op']!r}")


def serve() -> None:
    """Answer commands until stdin closes, with the checkout in the working directory."""
    sys.path[0] = str(Path.cwd())  # the checkout's packages, not this directory's files
    import django

    django.setup()
    from django.db import connection

    state: dict = {}
    for line in sys.stdin:
        try:
            reply = answer(json.loads(line), state)
        except Exception:
            reply = {"error": traceback.format_exc()}
        finally:
            connection.close()  # nothing held open while the server is measured
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    serve()
