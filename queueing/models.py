"""The desk's domain: teams, enquiry types, visits and their audit trail, staffing.

Every state change is a model method that checks the move is allowed, stamps the time
and the actor, and records it (`Visit.record`: a VisitEvent and a board version bump),
in one transaction. The rules a visit's record must keep live on Visit too, each once,
for the desk's forms and admin's alike.
The write that changes state is conditional (`UPDATE … WHERE status = …`) so that two
screens clicking at once cannot both win; where a count must be checked (staffing) the
team row is locked first. On SQLite `select_for_update()` is a no-op, but the database
is configured with IMMEDIATE transactions, so a writing transaction holds the write
lock from its first statement and the check-then-write is still serial.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.dateformat import format as date_format
from django.utils.translation import ngettext

from queueing.expressions import HourOfWeek, LocalDay, SecondsBetween
from queueing.validators import (
    validate_student_name,
    validate_student_number,
    validate_unit_code,
)

if TYPE_CHECKING:
    from accounts.models import User

MAX_STAFF = 20


class TransitionError(Exception):
    """A move the current state does not allow; the message is shown to staff as is."""


class StaffingLimitReached(TransitionError):
    def __init__(self, message: str, *, team: Team) -> None:
        super().__init__(message)
        self.team = team


class Team(models.Model):
    name = models.CharField(max_length=60, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    available_label = models.CharField(
        max_length=80,
        blank=True,
        help_text='Label of the staffing counter, e.g. "Librarians Available".',
    )
    display_order = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(
        "active", default=True, help_text="Inactive teams have no queue on the desk."
    )
    available_staff = models.PositiveSmallIntegerField(
        default=0, help_text="Staff available now. Changed from the desk; history is kept."
    )
    ticket_letter = models.CharField(
        max_length=2,
        blank=True,
        validators=[RegexValidator(r"^[A-Z]{1,2}$", "One or two capital letters, e.g. S.")],
        help_text="Each visit's ticket code starts with it (S-014). "
        "Blank: the first letter of the team's name.",
    )

    class Meta:
        ordering = ["display_order", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def queue_label(self) -> str:
        return f"{self.name} Queue"

    @property
    def staffing_label(self) -> str:
        return self.available_label or f"{self.name} Available"

    @property
    def ticket_prefix(self) -> str:
        """What the team's ticket codes start with: its letter, else the first ASCII
        letter of its name (T when it has none)."""
        letters = [c for c in self.name.upper() if "A" <= c <= "Z"]
        return self.ticket_letter or (letters[0] if letters else "T")

    def deactivation_problem(self) -> str | None:
        """Why the team cannot be made inactive now, if it cannot: its students would
        disappear from the desk. Admin's form and the teams import both ask this."""
        count = Visit.objects.active().filter(team_id=self.pk).count() if self.pk else 0
        if not count:
            return None
        return ngettext(
            "%(team)s has %(count)d student waiting or in a session. "
            "Deactivate it once they have been seen or the queue is closed.",
            "%(team)s has %(count)d students waiting or in a session. "
            "Deactivate it once they have been seen or the queue is closed.",
            count,
        ) % {"team": self.name, "count": count}

    def change_staffing(self, delta: int, *, by: User) -> int:
        """Add or take away available staff; returns the new count.

        Refuses to go below the sessions running now (those staff are plainly here)
        or above MAX_STAFF, and records every change for the utilisation reports.
        """
        with transaction.atomic():
            team = Team.objects.select_for_update(no_key=True).get(pk=self.pk)
            new = team.available_staff + delta
            if new < 0:
                raise TransitionError(f"No {team.name} staff are left to take away.")
            in_session = team.visits.filter(status=Visit.Status.IN_SESSION).count()
            if new < in_session:
                raise TransitionError(
                    ngettext(
                        "%(team)s has %(count)d session running; "
                        "finish one before taking a staff member away.",
                        "%(team)s has %(count)d sessions running; "
                        "finish one before taking a staff member away.",
                        in_session,
                    )
                    % {"team": team.name, "count": in_session}
                )
            if new > MAX_STAFF:
                raise TransitionError(f"{team.name} cannot have more than {MAX_STAFF} staff.")
            Team.objects.filter(pk=team.pk).update(available_staff=new)
            StaffingChange.objects.create(team=team, available=new, delta=delta, by=by)
            Board.bump()
        self.available_staff = new
        return new


class EnquiryType(models.Model):
    name = models.CharField(max_length=60, unique=True)
    display_order = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField("active", default=True)

    class Meta:
        ordering = ["display_order", "name"]

    def __str__(self) -> str:
        return self.name


class StaffingChange(models.Model):
    """One change of a team's available staff: the history behind utilisation."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="staffing_changes")
    available = models.PositiveSmallIntegerField(help_text="Staff available after the change.")
    delta = models.SmallIntegerField()
    at = models.DateTimeField(default=timezone.now, db_index=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-at", "-pk"]
        get_latest_by = "at"
        # Utilisation reads each team's changes in a period and the one before it.
        indexes = [models.Index(fields=["team", "at"], name="staffing_team_at_idx")]

    def __str__(self) -> str:
        return f"{self.team}: {self.available} available"


class Board(models.Model):
    """A single row whose version moves with every change a desk screen would show.

    Screens poll with the version they last rendered; an unchanged version is answered
    with 204 and no rendering, which keeps hundreds of polling screens cheap.
    """

    version = models.BigIntegerField(default=0)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"Board version {self.version}"

    @classmethod
    def bump(cls) -> None:
        cls.objects.filter(pk=1).update(version=F("version") + 1)

    @classmethod
    def current_version(cls) -> int:
        version = cls.objects.filter(pk=1).values_list("version", flat=True).first()
        if version is None:
            # The seed migration creates the row; a database flushed by tests may not
            # have it, and the first poll recreates it rather than failing.
            cls.objects.get_or_create(pk=1)
            return 0
        return version


class VisitQuerySet(models.QuerySet):
    def on_board(self, *, now=None) -> VisitQuerySet:
        """Everything a desk screen shows, in one query: the waiting, the in-session,
        and the visits ended recently enough to be undone."""
        now = now or timezone.now()
        recent = now - timedelta(seconds=settings.RESQ_UNDO_WINDOW_SECONDS)
        return (
            self.filter(
                Q(status__in=[Visit.Status.WAITING, Visit.Status.IN_SESSION])
                | Q(ended_at__gte=recent)
            )
            .select_related("team", "enquiry_type", "started_by", "ended_by")
            .order_by("arrived_at", "pk")
        )

    def waiting(self) -> VisitQuerySet:
        return self.filter(status=Visit.Status.WAITING)

    def active(self) -> VisitQuerySet:
        return self.filter(status__in=[Visit.Status.WAITING, Visit.Status.IN_SESSION])


class Visit(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        IN_SESSION = "in_session", "In session"
        FINISHED = "finished", "Finished"
        REMOVED = "removed", "Removed"

    class Outcome(models.TextChoices):
        FINISHED = "finished", "Finished"
        CANCELLED = "cancelled", "Left before being seen"
        NO_SHOW = "no_show", "No-show"
        OUT_OF_TIME = "out_of_time", "Out of time"

    #: What staff may pick when removing one student; out of time comes from closing.
    REMOVAL_OUTCOMES = (Outcome.CANCELLED, Outcome.NO_SHOW, Outcome.OUT_OF_TIME)

    student_name = models.CharField(max_length=100, validators=[validate_student_name])
    # Text, not a number: leading zeros matter.
    student_number = models.CharField(
        max_length=20, db_index=True, validators=[validate_student_number]
    )
    unit_code = models.CharField(max_length=12, blank=True, validators=[validate_unit_code])
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="visits")
    enquiry_type = models.ForeignKey(EnquiryType, on_delete=models.PROTECT, related_name="visits")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.WAITING)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True)
    arrived_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Where a visit brought in from another system came from ("legacy:123" is the old
    # system's visit 123), so that importing the same file again finds it instead of
    # adding it twice. Blank for visits added on the desk.
    source_ref = models.CharField("source reference", max_length=64, blank=True, editable=False)
    # What the student is called by in the room (the display never shows a name), unique
    # within the day; blank for visits from before tickets and for imported ones.
    ticket = models.CharField("ticket code", max_length=8, blank=True, editable=False)
    # The secret in the address of the student's own page (their place in line). Blank
    # once the visit is over and the night's retention job has run.
    student_key = models.CharField(max_length=43, blank=True, editable=False)
    # Where "you're next" and "your session is starting" go, if the student asked.
    notify_email = models.EmailField(
        "email for notices",
        blank=True,
        help_text="The student asked to be emailed when they are next and when their "
        "session starts. Cleared the night after the visit.",
    )

    # What the reports group by, kept by the database from the times above whenever a
    # row is written, so a report over a term reads plain columns rather than converting
    # every visit's times (see docs/design.md, Reporting). Null until the times exist.
    wait_seconds = models.GeneratedField(
        expression=SecondsBetween(F("arrived_at"), F("started_at")),
        output_field=models.IntegerField(null=True),
        db_persist=True,
    )
    session_seconds = models.GeneratedField(
        expression=SecondsBetween(F("started_at"), F("ended_at")),
        output_field=models.IntegerField(null=True),
        db_persist=True,
    )
    # In the service's time zone as it was when the database was migrated; the check
    # queueing.E001 says when settings.TIME_ZONE no longer matches.
    local_day = models.GeneratedField(
        expression=LocalDay(F("arrived_at")),
        output_field=models.DateField(),
        db_persist=True,
    )
    hour_of_week = models.GeneratedField(
        expression=HourOfWeek(F("arrived_at")),
        output_field=models.SmallIntegerField(),
        db_persist=True,
    )

    objects = VisitQuerySet.as_manager()

    class Meta:
        ordering = ["arrived_at", "pk"]
        permissions = [
            ("use_desk", "Can run the desk (live queue)"),
            ("export_visits", "Can export visits with student details (CSV)"),
        ]
        indexes = [
            models.Index(fields=["status", "team", "arrived_at"], name="visit_board_idx"),
            models.Index(fields=["ended_at"], name="visit_ended_idx"),
            # Reports filtered by team over a range of days.
            models.Index(fields=["team", "arrived_at"], name="visit_team_arrived_idx"),
            # Unique students over a range of days read this index alone, never the
            # table (a term of 143,000 visits: 53 -> 43 ms on PostgreSQL).
            models.Index(fields=["arrived_at", "student_number"], name="visit_arrived_student_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                name="visit_status_valid",
                condition=Q(status__in=["waiting", "in_session", "finished", "removed"]),
            ),
            # The timestamps and the outcome always agree with the status, so no
            # half-written row can exist whatever a caller does.
            models.CheckConstraint(
                name="visit_state_consistent",
                condition=(
                    Q(status="waiting", started_at__isnull=True, ended_at__isnull=True, outcome="")
                    | Q(
                        status="in_session",
                        started_at__isnull=False,
                        ended_at__isnull=True,
                        outcome="",
                    )
                    | Q(
                        status="finished",
                        started_at__isnull=False,
                        ended_at__isnull=False,
                        outcome="finished",
                    )
                    | Q(
                        status="removed",
                        ended_at__isnull=False,
                        outcome__in=["cancelled", "no_show", "out_of_time"],
                    )
                ),
            ),
            models.UniqueConstraint(
                fields=["source_ref"],
                condition=~Q(source_ref=""),
                name="visit_source_ref_unique",
            ),
            # A backstop: Visit.add holds the board row while it picks the next code.
            models.UniqueConstraint(
                fields=["local_day", "ticket"],
                condition=~Q(ticket=""),
                name="visit_ticket_unique_per_day",
            ),
            models.UniqueConstraint(
                fields=["student_key"],
                condition=~Q(student_key=""),
                name="visit_student_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student_name} ({self.team})"

    # --- the rules of a visit's record ---------------------------------------------
    # Each is written once, here; admin's visit form checks a correction with them, the
    # desk's moves below with the staffing rule. Names, numbers and unit codes are
    # checked by the validators on the fields above (queueing/validators.py).

    #: The fields a manager may correct (in admin's visit form) and that the visit
    #: export writes; who did what on the desk stays as recorded.
    CORRECTABLE = (
        "student_name",
        "student_number",
        "unit_code",
        "team",
        "enquiry_type",
        "status",
        "outcome",
        "arrived_at",
        "started_at",
        "ended_at",
    )

    #: What each status needs of the fields the visit_state_consistent constraint ties
    #: to it. The constraint decides; these explain its refusal in words a manager acts
    #: on, and a test holds the two together.
    STATE_NEEDS: dict[str, list[tuple[str, Any, str]]] = {
        Status.WAITING: [
            ("started_at", False, "A waiting student has not started a session: clear this."),
            ("ended_at", False, "A waiting student has not left: clear this."),
            ("outcome", False, "A waiting student has no outcome yet: clear this."),
        ],
        Status.IN_SESSION: [
            ("started_at", True, "A session in progress needs its start time."),
            ("ended_at", False, "A session in progress has not ended: clear this."),
            ("outcome", False, "A session in progress has no outcome yet: clear this."),
        ],
        Status.FINISHED: [
            ("started_at", True, "A finished session needs its start time."),
            ("ended_at", True, "A finished session needs its end time."),
            ("outcome", {Outcome.FINISHED}, "A finished session has the outcome “Finished”."),
        ],
        Status.REMOVED: [
            ("ended_at", True, "A removed visit needs the time the student left."),
            (
                "outcome",
                set(REMOVAL_OUTCOMES),
                "A removed visit needs a reason: left before being seen, no-show or out of time.",
            ),
        ],
    }

    def state_problems(self) -> dict[str, str]:
        """Which fields do not fit the visit's status, and why; empty when the row
        satisfies visit_state_consistent."""
        problems = {}
        for field, need, message in self.STATE_NEEDS.get(self.status, []):
            value = getattr(self, field)
            fits = value in need if isinstance(need, set) else bool(value) == need
            if not fits:
                problems[field] = message
        return problems

    #: How far past the server's clock a time may be: admin's "Now" takes the
    #: manager's computer's clock, which may run a little fast.
    CLOCK_SKEW = timedelta(minutes=1)
    FUTURE_TIME = {
        "arrived_at": "A student cannot arrive in the future",
        "started_at": "A session cannot start in the future",
        "ended_at": "A visit cannot end in the future",
    }

    @classmethod
    def future_time_problems(
        cls, times: Mapping[str, datetime | None], *, now: datetime | None = None
    ) -> dict[str, str]:
        """The times (arrived_at, started_at, ended_at) that have not come yet, each with
        what to tell the manager. A time is written once it has happened: the desk shows
        a visit ended in the future as finished then, with an Undo lasting until then."""
        now = now or timezone.now()
        clock = date_format(timezone.localtime(now), "D j M, H:i")
        return {
            name: f"{message}: it is now {clock}."
            for name, message in cls.FUTURE_TIME.items()
            if (moment := times.get(name)) is not None and moment > now + cls.CLOCK_SKEW
        }

    @classmethod
    def time_problems(
        cls, times: Mapping[str, datetime | None], *, now: datetime | None = None
    ) -> dict[str, list[str]]:
        """Everything wrong with a visit's times (arrived_at, started_at, ended_at), by
        field: a time still to come, or times out of order. Times not given are not
        judged, so a correction can be checked before it is applied."""
        problems: dict[str, list[str]] = {
            name: [message] for name, message in cls.future_time_problems(times, now=now).items()
        }
        arrived, started, ended = (times.get(f) for f in ("arrived_at", "started_at", "ended_at"))
        if arrived and started and started < arrived:
            problems.setdefault("started_at", []).append(
                "A session cannot start before the student arrived."
            )
        if started and ended and ended < started:
            problems.setdefault("ended_at", []).append("A session cannot end before it started.")
        elif arrived and ended and ended < arrived:
            problems.setdefault("ended_at", []).append(
                "A visit cannot end before the student arrived."
            )
        return problems

    def staffing_problem(self, team: Team) -> str | None:
        """Why this visit cannot be in a session with `team` now, or None: one session
        per available staff member, not counting this visit. The caller holds the team
        row lock, so the count cannot move between this check and the write."""
        others = team.visits.filter(status=Visit.Status.IN_SESSION)
        if self.pk is not None:
            others = others.exclude(pk=self.pk)
        staff = team.available_staff
        if others.count() < staff:
            return None
        if staff == 0:
            return f"No {team.name} staff are available."
        return ngettext(
            "The only %(team)s staff member available is in a session.",
            "All %(count)d %(team)s staff available are in a session.",
            staff,
        ) % {"count": staff, "team": team.name}

    def record(
        self,
        action: str,
        *,
        by: User | None,
        from_status: str | None = None,
        detail: dict[str, Any] | None = None,
        bump: bool = True,
    ) -> None:
        """Write the history event of a change just made to this visit and move the
        board, so every desk screen shows it (unless the change moved it already);
        inside the change's transaction. The event goes from `from_status` (by default
        the status now: a change of details) to the status now."""
        VisitEvent.objects.create(
            visit=self,
            action=action,
            from_status=self.status if from_status is None else from_status,
            to_status=self.status,
            by=by,
            detail=detail or {},
        )
        if bump:
            Board.bump()

    # --- state changes -------------------------------------------------------------

    def _move(
        self,
        *,
        by: User,
        action: str,
        from_status: str,
        to_status: str,
        changes: dict[str, Any],
        detail: dict[str, Any] | None = None,
        extra_filter: Q | None = None,
    ) -> None:
        """The one conditional write every transition goes through (inside a transaction)."""
        query = Visit.objects.filter(pk=self.pk, status=from_status)
        if extra_filter is not None:
            query = query.filter(extra_filter)
        if query.update(status=to_status, **changes) != 1:
            raise TransitionError(self._stale_message())
        for field, value in changes.items():
            setattr(self, field, value)
        self.status = to_status
        self.record(action, by=by, from_status=from_status, detail=detail)

    def _stale_message(self) -> str:
        current = (
            Visit.objects.filter(pk=self.pk)
            .select_related("started_by", "ended_by", "team")
            .first()
        )
        if current is None:
            return "That visit no longer exists."
        name = current.student_name
        match current.status:
            case Visit.Status.IN_SESSION:
                who = current.started_by.display_name if current.started_by else "someone"
                return f"{name} is already in a session, started by {who}."
            case Visit.Status.FINISHED:
                who = current.ended_by.display_name if current.ended_by else "someone"
                return f"{name}'s session was already finished by {who}."
            case Visit.Status.REMOVED:
                who = current.ended_by.display_name if current.ended_by else "someone"
                return f"{name} was already removed from the queue by {who}."
            case _:
                return f"{name} is waiting in the {current.team.queue_label} now."

    def start_session(self, *, by: User, add_staff: bool = False) -> None:
        """Move a waiting student into a session, if the team has a free staff member.

        `add_staff` first counts one more staff member available (the "+1 and start"
        offered when the team is full), in the same transaction.
        """
        with transaction.atomic():
            # Lock the team row: the in-session count must not move between the check
            # and the write, or two screens could both take the last free staff member.
            team = Team.objects.select_for_update(no_key=True).get(pk=self.team_id)
            if add_staff:
                team.change_staffing(+1, by=by)
            if self._is_waiting_in(team):
                self._check_free_staff(team)
            self._move(
                by=by,
                action=VisitEvent.Action.STARTED,
                from_status=Visit.Status.WAITING,
                to_status=Visit.Status.IN_SESSION,
                changes={"started_at": timezone.now(), "started_by": by},
                # A transfer committed since this visit was read would leave it in
                # another team whose staffing we did not check.
                extra_filter=Q(team_id=team.pk),
            )
            if self.notify_email:
                from queueing import notices

                notices.queue([self.pk], StudentNotice.Kind.STARTED)

    def _check_free_staff(self, team: Team) -> None:
        """The staffing rule as the desk words a refusal; the exception names the team
        for the "+1 and start" offer."""
        if problem := self.staffing_problem(team):
            then = " Add a staff member to start" + (" another." if team.available_staff else ".")
            raise StaffingLimitReached(problem + then, team=team)

    def _is_waiting_in(self, team: Team) -> bool:
        """Whether the visit is still waiting in this team: if not, the stale message
        ("already started by …") is more useful than the staffing one."""
        return Visit.objects.filter(pk=self.pk, status=Visit.Status.WAITING, team=team).exists()

    def undo_start(self, *, by: User) -> None:
        """Back to the queue at the original place: arrived_at is untouched."""
        with transaction.atomic():
            self._move(
                by=by,
                action=VisitEvent.Action.START_UNDONE,
                from_status=Visit.Status.IN_SESSION,
                to_status=Visit.Status.WAITING,
                changes={"started_at": None, "started_by": None},
            )

    def finish(self, *, by: User) -> None:
        with transaction.atomic():
            self._move(
                by=by,
                action=VisitEvent.Action.FINISHED,
                from_status=Visit.Status.IN_SESSION,
                to_status=Visit.Status.FINISHED,
                changes={
                    "ended_at": timezone.now(),
                    "ended_by": by,
                    "outcome": Visit.Outcome.FINISHED,
                },
            )

    def remove(self, *, by: User, outcome: str) -> None:
        if outcome not in self.REMOVAL_OUTCOMES:
            raise TransitionError("Choose why the student is leaving the queue.")
        with transaction.atomic():
            self._move(
                by=by,
                action=VisitEvent.Action.REMOVED,
                from_status=Visit.Status.WAITING,
                to_status=Visit.Status.REMOVED,
                changes={"ended_at": timezone.now(), "ended_by": by, "outcome": outcome},
            )

    @property
    def undo_until(self) -> datetime | None:
        return self.undo_deadline(self.ended_at)

    @staticmethod
    def undo_deadline(ended_at: datetime | None) -> datetime | None:
        """When the undo of a finish or removal stops being offered."""
        if ended_at is None:
            return None
        return ended_at + timedelta(seconds=settings.RESQ_UNDO_WINDOW_SECONDS)

    def can_undo_end(self, *, now=None) -> bool:
        now = now or timezone.now()
        return (
            self.status in (Visit.Status.FINISHED, Visit.Status.REMOVED)
            and self.ended_at is not None
            and now - self.ended_at <= timedelta(seconds=settings.RESQ_UNDO_WINDOW_SECONDS)
        )

    def undo_end(self, *, by: User) -> None:
        """Undo a finish (back in session) or a removal (back in the queue, same place)."""
        if not self.can_undo_end():
            if self.status in (Visit.Status.FINISHED, Visit.Status.REMOVED):
                minutes = settings.RESQ_UNDO_WINDOW_SECONDS // 60
                raise TransitionError(
                    f"Too late to undo: {self.student_name} left more than "
                    f"{minutes} minutes ago. A manager can correct the record."
                )
            raise TransitionError(self._stale_message())
        window_start = timezone.now() - timedelta(seconds=settings.RESQ_UNDO_WINDOW_SECONDS)
        with transaction.atomic():
            if self.status == Visit.Status.FINISHED:
                # Back in session takes a staff member again: the same check as a start.
                team = Team.objects.select_for_update(no_key=True).get(pk=self.team_id)
                self._check_free_staff(team)
                self._move(
                    by=by,
                    action=VisitEvent.Action.FINISH_UNDONE,
                    from_status=Visit.Status.FINISHED,
                    to_status=Visit.Status.IN_SESSION,
                    changes={"ended_at": None, "ended_by": None, "outcome": ""},
                    extra_filter=Q(ended_at__gte=window_start),
                )
            else:
                # A removed student who was never started goes back to waiting.
                self._move(
                    by=by,
                    action=VisitEvent.Action.REMOVE_UNDONE,
                    from_status=Visit.Status.REMOVED,
                    to_status=Visit.Status.WAITING,
                    changes={"ended_at": None, "ended_by": None, "outcome": ""},
                    extra_filter=Q(ended_at__gte=window_start),
                )

    def correct(self, *, by: User, **fields: Any) -> list[str]:
        """Fix typos (name, number, unit code, enquiry type) and, while the student is
        waiting, transfer them to another team; arrival time, and so the place in line,
        is kept. Returns the names of the fields that changed."""
        allowed = {"student_name", "student_number", "unit_code", "enquiry_type", "team"}
        changed = {
            name: value
            for name, value in fields.items()
            if name in allowed and getattr(self, name) != value
        }
        if not changed:
            return []
        transfer = "team" in changed
        if transfer and self.status != Visit.Status.WAITING:
            raise TransitionError("Only a waiting student can move to another team's queue.")
        detail = {
            name: [_plain(getattr(self, name)), _plain(value)] for name, value in changed.items()
        }
        with transaction.atomic():
            if transfer:
                _lock_teams(self.team_id, changed["team"])
            query = Visit.objects.filter(pk=self.pk, status=self.status)
            if query.update(**changed) != 1:
                raise TransitionError(self._stale_message())
            self.record(
                VisitEvent.Action.TRANSFERRED if transfer else VisitEvent.Action.CORRECTED,
                by=by,
                detail=detail,
            )
        for name, value in changed.items():
            setattr(self, name, value)
        return list(changed)

    @classmethod
    def add(cls, *, by: User | None, detail: dict[str, Any] | None = None, **fields: Any) -> Visit:
        """A student joins a queue, with the day's next ticket code of their team and
        the key to their own page (`student_key`, unless given: a check-in's)."""
        # No team lock (see _lock_teams): adds to a team do not wait for each other. The
        # board row is taken first instead of last: every add holds it while it picks
        # the next ticket code, so two desks adding at once cannot pick the same one.
        fields.setdefault("student_key", new_secret())
        with transaction.atomic():
            Board.bump()
            visit = cls(added_by=by, **fields)
            visit.ticket = visit.next_ticket()
            visit.save(force_insert=True)
            visit.record(VisitEvent.Action.ADDED, by=by, from_status="", detail=detail, bump=False)
        return visit

    def ask_for_notices(self, address: str) -> None:
        """Email the student at `address` (blank: not at all) when they are next and when
        their session starts; the board moves, so a student already next is emailed."""
        with transaction.atomic():
            Visit.objects.filter(pk=self.pk).update(notify_email=address)
            Board.bump()
        self.notify_email = address

    def next_ticket(self) -> str:
        """The team's next ticket code on the visit's (local) day: one past the highest
        given that day."""
        prefix = f"{self.team.ticket_prefix}-"
        day = timezone.localdate(self.arrived_at or timezone.now())
        given = Visit.objects.filter(local_day=day, ticket__startswith=prefix).values_list(
            "ticket", flat=True
        )
        numbers = [int(t[len(prefix) :]) for t in given if t[len(prefix) :].isdigit()]
        return f"{prefix}{max(numbers, default=0) + 1:03d}"

    @classmethod
    def close_queue(cls, *, by: User) -> int:
        """End of the drop-in: everyone still waiting leaves as "out of time"."""
        now = timezone.now()
        with transaction.atomic():
            ids = list(
                cls.objects.select_for_update()
                .filter(status=Visit.Status.WAITING)
                .values_list("pk", flat=True)
            )
            closed = cls.objects.filter(pk__in=ids, status=Visit.Status.WAITING).update(
                status=Visit.Status.REMOVED,
                outcome=Visit.Outcome.OUT_OF_TIME,
                ended_at=now,
                ended_by=by,
            )
            VisitEvent.objects.bulk_create(
                VisitEvent(
                    visit_id=pk,
                    action=VisitEvent.Action.QUEUE_CLOSED,
                    from_status=Visit.Status.WAITING,
                    to_status=Visit.Status.REMOVED,
                    by=by,
                    at=now,
                )
                for pk in ids
            )
            if closed:
                Board.bump()
        return closed


def new_secret() -> str:
    """A key for an address nobody can guess: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def _lock_teams(*teams: Team | int | None) -> None:
    """Lock team rows before the board, the order every writer keeps; several teams
    in id order.

    Every team lock is FOR NO KEY UPDATE, never FOR UPDATE: PostgreSQL checks a new
    visit's team at commit with a FOR KEY SHARE lock on the team row, by when the
    board row is held, and a start holding its team FOR UPDATE while it waits for the
    board would deadlock with it (seen under load in the crash test). FOR NO KEY
    UPDATE keeps starts and staffing changes of one team in turn without blocking that
    check, so an add needs no team lock of its own.
    """
    ids = sorted({_plain(team) for team in teams if team is not None})
    if ids:
        list(
            Team.objects.select_for_update(no_key=True)
            .filter(pk__in=ids)
            .order_by("pk")
            .values("pk")
        )


def _plain(value: Any) -> Any:
    return value.pk if isinstance(value, models.Model) else value


class VisitEvent(models.Model):
    """Append-only audit trail: one row for every change to a visit."""

    class Action(models.TextChoices):
        ADDED = "added", "Added to queue"
        STARTED = "started", "Session started"
        START_UNDONE = "start_undone", "Start undone"
        FINISHED = "finished", "Session finished"
        FINISH_UNDONE = "finish_undone", "Finish undone"
        REMOVED = "removed", "Removed from queue"
        REMOVE_UNDONE = "remove_undone", "Removal undone"
        QUEUE_CLOSED = "queue_closed", "Queue closed (out of time)"
        CORRECTED = "corrected", "Details corrected"
        TRANSFERRED = "transferred", "Transferred to another team"
        IMPORTED = "imported", "Imported"

    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=16, choices=Action.choices)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} at {timezone.localtime(self.at):%Y-%m-%d %H:%M}"


class WaitEstimate(models.Model):
    """A waiting student's estimated wait as the desk showed it: one as they joined
    (`first`), and one more each time their place in line or their team's staff
    changed, which becomes the `current` one. Minutes from `made_at` until their
    session starts, as a range meant to hold about 80 % of actual waits (the 10th to
    the 90th percentile of a simulation)."""

    # Its index is the constraint's, which starts with the visit.
    visit = models.ForeignKey(
        Visit, on_delete=models.CASCADE, related_name="estimates", db_index=False
    )
    made_at = models.DateTimeField()
    board_version = models.BigIntegerField(help_text="The board version that first showed it.")
    first = models.BooleanField(
        default=False, help_text="The first estimate shown for the visit: as the student joined."
    )
    current = models.BooleanField(
        default=True, help_text="The one the desk shows now (the visit's latest)."
    )
    ahead = models.PositiveIntegerField(help_text="Students ahead in line.")
    staff = models.PositiveSmallIntegerField(help_text="The team's staff available.")
    in_session = models.PositiveSmallIntegerField(help_text="The team's sessions in progress.")
    low_minutes = models.FloatField()
    median_minutes = models.FloatField()
    high_minutes = models.FloatField()

    class Meta:
        ordering = ["made_at", "pk"]
        constraints = [
            # Two screens may render the same board version at once: one estimate each.
            models.UniqueConstraint(
                fields=["visit", "board_version"], name="wait_estimate_once_per_version"
            ),
            # The board joins each waiting visit to its current estimate by this index.
            models.UniqueConstraint(
                fields=["visit"], condition=Q(current=True), name="wait_estimate_one_current"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.low_minutes:.0f}–{self.high_minutes:.0f} min for {self.visit_id}"


class Display(models.Model):
    """A screen in the room (a TV by the entrance) and the check-in form it advertises.

    Both are opened without a staff login, each by its own long random token in its
    address: `token` shows the display (ticket codes and counts, never a student's
    details), `checkin_token` the form its QR code points to. A manager names and
    revokes them in admin; "new addresses" replaces both tokens at once.
    """

    name = models.CharField(max_length=60, unique=True, help_text='e.g. "Entrance TV".')
    token = models.CharField(max_length=43, unique=True, editable=False, default=new_secret)
    checkin_token = models.CharField(max_length=43, unique=True, editable=False, default=new_secret)
    is_active = models.BooleanField(
        "active",
        default=True,
        help_text="Untick to revoke: its display and check-in addresses stop working at once.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    # The room code: what the display shows and the check-in form asks for, so that a
    # check-in comes from someone who can see the screen. It changes every few minutes;
    # the one just before is still taken, for a student who was typing as it changed.
    ROOM_CODE_LETTERS = "ACDEFHJKMNPRTUVWXY"  # no 0/O, 1/I/L, 2/Z, 5/S, 8/B look-alikes
    ROOM_CODE_LENGTH = 4

    def room_code(self, *, at: datetime | None = None, step: int = 0) -> str:
        window = int((at or timezone.now()).timestamp()) // settings.RESQ_ROOM_CODE_SECONDS
        digest = salted_hmac(
            "resq.room_code", f"{self.checkin_token}:{window + step}", algorithm="sha256"
        ).digest()
        letters = self.ROOM_CODE_LETTERS
        return "".join(letters[b % len(letters)] for b in digest[: self.ROOM_CODE_LENGTH])

    def room_code_matches(self, typed: str, *, at: datetime | None = None) -> bool:
        typed = "".join(typed.split()).upper()
        return any(
            constant_time_compare(typed, self.room_code(at=at, step=step)) for step in (0, -1)
        )

    def new_addresses(self) -> None:
        self.token = new_secret()
        self.checkin_token = new_secret()


class CheckIn(models.Model):
    """A student's own check-in from their phone, waiting for the desk to accept it
    into a queue (as a visit, at the check-in's time) or to dismiss it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the desk"
        ACCEPTED = "accepted", "Accepted into a queue"
        DISMISSED = "dismissed", "Dismissed by the desk"
        WITHDRAWN = "withdrawn", "Withdrawn by the student"

    display = models.ForeignKey(
        Display, null=True, on_delete=models.SET_NULL, related_name="checkins"
    )
    # The student's own page, before and after the desk accepts (the visit takes it on).
    key = models.CharField(max_length=43, unique=True, editable=False, default=new_secret)
    student_name = models.CharField(max_length=100, validators=[validate_student_name])
    student_number = models.CharField(max_length=20, validators=[validate_student_number])
    unit_code = models.CharField(max_length=12, blank=True, validators=[validate_unit_code])
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Blank: the student was not sure; the desk chooses.",
    )
    enquiry_type = models.ForeignKey(EnquiryType, on_delete=models.PROTECT, related_name="+")
    notify_email = models.EmailField("email for notices", blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    visit = models.OneToOneField(
        Visit, null=True, blank=True, on_delete=models.SET_NULL, related_name="checkin"
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = "check-in"

    def __str__(self) -> str:
        return f"{self.student_name} checked in at {timezone.localtime(self.created_at):%H:%M}"

    def accept(self, *, by: User | None, team: Team | None = None) -> Visit:
        """Into the team's queue at the check-in's time, so the place in line is the
        one the student took by checking in."""
        team = team or self.team
        if team is None or not team.is_active:
            raise TransitionError(f"Choose a team for {self.student_name}.")
        with transaction.atomic():
            if (
                CheckIn.objects.filter(pk=self.pk, status=CheckIn.Status.PENDING).update(
                    status=CheckIn.Status.ACCEPTED, handled_at=timezone.now(), handled_by=by
                )
                != 1
            ):
                raise TransitionError(self._stale_message())
            visit = Visit.add(
                by=by,
                detail={"checked_in_at": self.created_at.isoformat()},
                student_name=self.student_name,
                student_number=self.student_number,
                unit_code=self.unit_code,
                team=team,
                enquiry_type=self.enquiry_type,
                notify_email=self.notify_email,
                arrived_at=self.created_at,
                student_key=self.key,
            )
            CheckIn.objects.filter(pk=self.pk).update(visit=visit)
        self.status, self.visit = CheckIn.Status.ACCEPTED, visit
        return visit

    def dismiss(self, *, by: User | None, status: str = Status.DISMISSED) -> None:
        with transaction.atomic():
            if (
                CheckIn.objects.filter(pk=self.pk, status=CheckIn.Status.PENDING).update(
                    status=status, handled_at=timezone.now(), handled_by=by
                )
                != 1
            ):
                raise TransitionError(self._stale_message())
            Board.bump()
        self.status = status

    def _stale_message(self) -> str:
        current = CheckIn.objects.filter(pk=self.pk).first()
        if current is None:
            return "That check-in no longer exists."
        return (
            f"{current.student_name}'s check-in was already {current.get_status_display().lower()}."
        )


class StudentNotice(models.Model):
    """An email a student asked for: "you're next" and "your session is starting",
    each sent once. Written with the change that calls for it and sent after it commits,
    off the desk's request (queueing/notices.py); retried until it goes or gives up,
    with the outcome kept here, on the visit's record."""

    class Kind(models.TextChoices):
        NEXT = "next", "You're next"
        STARTED = "started", "Your session is starting"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Gave up"

    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="notices")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = "email to the student"
        verbose_name_plural = "emails to the student"
        constraints = [
            models.UniqueConstraint(fields=["visit", "kind"], name="student_notice_once"),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="student_notice_due_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.get_status_display().lower()}"
