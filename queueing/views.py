"""The desk: one page, and small POST endpoints that each make one domain call.

Every action answers an htmx request with the re-rendered board (plus the messages
region, out of band) and a plain POST with a redirect back to the desk, so the page
works with JavaScript off.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from pathlib import Path

from allauth.core.internal import ratelimit
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.cache import caches
from django.db.models import BooleanField, ExpressionWrapper, FilteredRelation, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.backends.utils import csrf_input
from django.template.loader import get_template, render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import reswap, retarget

from accounts.models import User

from . import estimates, notices
from .cache import cache_call as _cache_call
from .forms import (
    AcceptCheckInForm,
    AddVisitForm,
    EditVisitForm,
    NoticeEmailForm,
    RemoveVisitForm,
    StaffingForm,
    StudentLookupForm,
    student_email,
)
from .models import (
    Board,
    CheckIn,
    EnquiryType,
    StaffingLimitReached,
    StudentNotice,
    Team,
    TransitionError,
    Visit,
)
from .qr import qr_svg
from .templatetags import desk as desk_tags
from .templatetags.desk import estimate_markup, fill_slots, in_place, offer_tags

logger = logging.getLogger(__name__)

DESK = "queueing/desk.html"
# A version's board never changes, so this only bounds memory, not staleness.
BOARD_CACHE_SECONDS = 10 * 60


@dataclass(frozen=True, slots=True)
class BoardVisit:
    """A board row's values as its template reads them: who started or ended the visit
    by the name the board shows, its outcome in words and its undo deadline. Made only
    for a row that is rendered."""

    pk: int
    student_name: str
    student_number: str
    unit_code: str
    ticket: str
    status: str
    outcome: str
    arrived_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    team_id: int
    team_name: str
    enquiry_type_name: str
    started_by: str | None
    ended_by: str | None

    @classmethod
    def from_row(cls, row: tuple) -> BoardVisit:
        *fields, started_first, started_user, ended_first, ended_user = row
        return cls(*fields, _shown(started_first, started_user), _shown(ended_first, ended_user))

    @property
    def undo_until(self) -> datetime | None:
        return Visit.undo_deadline(self.ended_at)

    def get_outcome_display(self) -> str:
        # As the model's own: the value itself if it is not one of the choices.
        return str(dict(Visit.Outcome.choices).get(self.outcome, self.outcome))


BOARD_FIELDS = (
    "pk", "student_name", "student_number", "unit_code", "ticket", "status", "outcome",
    "arrived_at", "started_at", "ended_at", "team_id", "team__name", "enquiry_type__name",
    "started_by__first_name", "started_by__username",
    "ended_by__first_name", "ended_by__username",
)  # fmt: skip


# Each row's current wait estimate: read with the board (joined on its visit), and kept
# apart from the row's values (its HTML does not depend on it: the estimate is a slot).
ESTIMATE_FIELDS = (
    "estimate__id", "estimate__ahead", "estimate__staff", "estimate__made_at",
    "estimate__low_minutes", "estimate__high_minutes",
)  # fmt: skip
CURRENT_ESTIMATE = FilteredRelation("estimates", condition=Q(estimates__current=True))
# Whether the student asked for emails: "you're next" goes out when they head a line.
WANTS_EMAIL = ExpressionWrapper(~Q(notify_email=""), output_field=BooleanField())


def _shown(first_name: str | None, username: str | None) -> str | None:
    """Who started or ended a visit, as the board names them."""
    return None if username is None else User.name_shown(first_name, username)


# The version whose board this process rendered last (see board_html).
_last_rendered: dict[str, int] = {}

# Per user: far above what a busy desk types, far below reading visits by number.
LOOKUP_RATE_LIMITS = {"student_lookup": "30/m/user"}
LOOKUP_REFUSED = "Too many student number look-ups this minute: type the name for now."

desk_permission = permission_required("queueing.use_desk", raise_exception=True)


def desk_view(view: Callable) -> Callable:
    """Desk pages show student data: only desk staff, never cached, and varying by
    HX-Request since the same URL answers with a page or a fragment."""
    return vary_on_headers("HX-Request")(never_cache(desk_permission(view)))


def board_context(*, version: int | None = None) -> dict:
    """Everything the board shows, in a fixed number of queries whatever the queue.

    Each visit is one row of plain values (`BOARD_FIELDS`), a named tuple: a queue of
    hundreds is read without a model instance for each visit, its team and its enquiry
    type, and a row's values are also what its HTML is kept under (`board_rows`).
    Each waiting visit comes with its current wait estimate; the estimates this version
    makes (students who joined or moved, `estimates.queue_estimates`) are stored here,
    so a new version's first render writes too: one insert for a student joining.
    """
    now = timezone.now()
    if version is None:
        version = Board.current_version()
    teams = list(Team.objects.filter(is_active=True))
    waiting: dict[int, list[tuple]] = {team.pk: [] for team in teams}
    sessions: list[tuple] = []
    recent: list[tuple] = []
    rows = (
        Visit.objects.on_board(now=now)
        .annotate(estimate=CURRENT_ESTIMATE, wants_email=WANTS_EMAIL)
        .values_list(*BOARD_FIELDS, *ESTIMATE_FIELDS, "wants_email", named=True)
    )
    for row in rows:
        if row.status == Visit.Status.WAITING:
            waiting.setdefault(row.team_id, []).append(row)
        elif row.status == Visit.Status.IN_SESSION:
            sessions.append(row)
        else:
            recent.append(row)
    running: dict[int, list[datetime]] = {team.pk: [] for team in teams}
    for row in sessions:
        running.setdefault(row.team_id, []).append(row.started_at)
    drawn = functools.cache(lambda: estimates.history([team.pk for team in teams], now))
    made = []
    for team in teams:
        team.waiting = waiting[team.pk]
        team.in_session = len(running[team.pk])
        team.is_full = team.in_session >= team.available_staff
        team.estimates, team.newcomer, new = estimates.queue_estimates(
            team, team.waiting, running[team.pk], now=now, version=version,
            drawn=lambda team=team: drawn()[team.pk],
        )  # fmt: skip
        made += new
    estimates.save_estimates(made)
    heads = [team.waiting[0].pk for team in teams if team.waiting and team.waiting[0].wants_email]
    if heads:
        notices.queue(heads, StudentNotice.Kind.NEXT)
    checkins = list(
        CheckIn.objects.filter(status=CheckIn.Status.PENDING).select_related("team", "enquiry_type")
    )
    sessions.sort(key=lambda row: (row.started_at, row.pk))
    recent.sort(key=lambda row: (row.ended_at, row.pk), reverse=True)
    return {
        "teams": teams,
        "sessions": sessions,
        "recent": recent,
        "total_waiting": sum(len(team.waiting) for team in teams),
        "checkins": checkins,
        "board_version": version,
        "server_now": now,
    }


def board_rows(context: dict) -> None:
    """Add each row's HTML to a board's context, reusing rows rendered for earlier
    versions.

    A row's HTML depends only on its values (its timer and a waiting row's place in
    line are slots), so it is kept under exactly those: a new version renders the rows
    that changed, not the whole queue, and finds the others with one dictionary
    look-up each (`_rows_html`).
    """
    now = context["server_now"]
    sessions = [("session", _values(row)) for row in context["sessions"]]
    waiting = {
        team.pk: [("waiting", _values(row)) for row in team.waiting] for team in context["teams"]
    }
    recent = [("recent", _values(row)) for row in context["recent"]]
    html = _rows_html([*sessions, *chain.from_iterable(waiting.values()), *recent])
    context["session_rows"] = _joined(html[row] for row in sessions)
    for team in context["teams"]:
        line = zip(team.waiting, waiting[team.pk], strict=True)
        team.waiting_rows = _joined(
            in_place(html[key], place, estimate_markup(team.estimates.get(visit.pk), now))
            for place, (visit, key) in enumerate(line, 1)
        )
    context["recent_rows"] = _joined(html[row] for row in recent)


def _values(row: tuple) -> tuple:
    """What a row's HTML depends on: its values without its wait estimate."""
    return tuple(row[: len(BOARD_FIELDS)])


def _joined(rows: Iterable[str]) -> str:
    # Rendered rows, escaped as they were rendered.
    return mark_safe("".join(rows))  # noqa: S308


# Rows' HTML by (kind, values), in this process: a busy board's few hundred rows are
# found without a cache call or a digest each. Dropped whole when it outgrows the
# limit (the board cache still has them) or when what every row depends on changes.
ROWS_IN_PROCESS = 2000
_rows_in_process: dict[tuple[str, tuple], str] = {}
_rows_made_for: list[tuple] = [()]


def _rows_html(rows: list[tuple[str, tuple]]) -> dict[tuple[str, tuple], str]:
    """Each row's HTML by (kind, values): from this process's memory, then from the
    board cache in one call (a shared cache has what other processes rendered), the
    rest rendered."""
    setting = (
        template_digest(DESK),
        timezone.get_current_timezone_name(),
        settings.RESQ_UNDO_WINDOW_SECONDS,
    )
    if _rows_made_for[0] != setting or len(_rows_in_process) > ROWS_IN_PROCESS:
        _rows_in_process.clear()
        _rows_made_for[0] = setting
    # Read into a dictionary of this board's own: another thread of the process may
    # drop the kept rows meanwhile, which then costs renders, never a missing row.
    known = _rows_in_process
    found = {row: html for row in rows if (html := known.get(row)) is not None}
    keys = {row: _row_key(row, setting) for row in rows if row not in found}
    if keys:
        boards = _cache_call(caches["board"].get_many, list(keys.values())) or {}
        rendered = {}
        for (kind, values), key in keys.items():
            html = boards.get(key)
            if html is None:
                visit = BoardVisit.from_row(values)
                html = rendered[key] = render_to_string(f"{DESK}#{kind}-row", {"visit": visit})
            found[kind, values] = known[kind, values] = html
        if rendered:
            _cache_call(caches["board"].set_many, rendered, timeout=BOARD_CACHE_SECONDS)
    return found


def forget_rows_in_process() -> None:
    """Drop the rows and estimates this process keeps (tests start each from nothing)."""
    _rows_in_process.clear()
    estimates.forget_in_process()
    desk_tags.forget_in_process()
    notices.forget_in_process()


def _row_key(row: tuple[str, tuple], setting: tuple) -> str:
    """A row's key in the board cache: a digest of its kind, its values and what every
    row depends on (the desk template's digest, the time zone, the undo window), so a
    shared cache never mixes in a row from another release or setting."""
    kind, values = row
    shown = (kind, *setting, tuple(values))
    return f"resq:row:{hashlib.blake2b(repr(shown).encode(), digest_size=16).hexdigest()}"


@functools.cache
def template_digest(name: str) -> str:
    """A template's own digest: HTML cached by a shared cache before a change to its
    markup (another release) is not reused after it."""
    origin = get_template(name).origin.name
    return hashlib.blake2b(Path(origin).read_bytes(), digest_size=8).hexdigest()


def board_html(*, version: int | None = None, page: bool = False) -> tuple[int, str]:
    """The board of a version, rendered once for every screen.

    When something changes, every open screen asks for the new board within two
    seconds; rendering it once per screen would cost hundreds of renders per change.
    The board depends on nothing but the version, and is kept in two forms: the
    fragment htmx screens are sent as it is (no CSRF inputs, since htmx sends the token
    in a header, and timers as of the render, which the browser redraws from their
    start times the moment they arrive), and with `page` the board with its slots
    left for the page to fill per request (`fill_slots`).
    """
    if version is None:
        version = Board.current_version()
    boards = caches["board"]
    fragment_key, page_key, _ = _version_keys(version)
    html = _cache_call(boards.get, page_key if page else fragment_key)
    if html is None:
        context = board_context(version=version)
        board_rows(context)
        slotted = render_to_string(f"{DESK}#board", context)
        fragment = fill_slots(slotted, csrf_input="", now=context["server_now"])
        _cache_call(
            boards.set_many,
            {fragment_key: fragment, page_key: slotted},
            timeout=BOARD_CACHE_SECONDS,
        )
        # Every request asks for the current version's board, so the one this process
        # rendered before is dropped rather than left to crowd the rows out of the cache.
        previous = _last_rendered.get("version", version)
        if previous != version:
            _cache_call(boards.delete_many, _version_keys(previous))
        _last_rendered["version"] = version
        html = slotted if page else fragment
    return version, html


def _version_keys(version: int) -> tuple[str, str, str]:
    """The keys of a version's fragment, its board for the page and its empty add form."""
    return f"resq:board:{version}", f"resq:board:{version}:page", f"resq:board:{version}:add-form"


def add_form_html(
    request: HttpRequest, form: AddVisitForm | None = None, *, version: int | None = None
) -> str:
    """The add form with this request's CSRF input.

    The empty form, on every page and after every add, shows only the active teams and
    enquiry types, so it is rendered once per list of them (its fields' templates cost
    more than the rest of the page), kept in the board cache under a digest of the
    lists, and noted for the board version it was asked for: every change to a team or
    an enquiry type moves the version, so a page at a version it was asked for before
    reads no choices. A form with what was typed and its errors is rendered as it is.
    """
    if form is None:
        boards = caches["board"]
        if version is None:
            version = Board.current_version()
        noted = _version_keys(version)[2]
        html = _cache_call(boards.get, noted)
        if html is None:
            choices = (
                list(Team.objects.filter(is_active=True).values_list("pk", "name")),
                list(EnquiryType.objects.filter(is_active=True).values_list("pk", "name")),
            )
            digest = hashlib.blake2b(
                repr((template_digest(DESK), choices)).encode(), digest_size=16
            )
            key = f"resq:add-form:{digest.hexdigest()}"
            html = _cache_call(boards.get, key)
            if html is None:
                html = render_to_string(f"{DESK}#add-form", {"form": AddVisitForm()})
            _cache_call(boards.set_many, {key: html, noted: html}, timeout=BOARD_CACHE_SECONDS)
    else:
        html = render_to_string(f"{DESK}#add-form", {"form": form})
    # Template output, escaped as it was rendered; the slot adds only our own markup.
    return mark_safe(fill_slots(html, csrf_input=csrf_input(request), now=timezone.now()))  # noqa: S308


def _fragment_response(html: str, version: int) -> HttpResponse:
    response = HttpResponse(html)
    response["X-Board-Version"] = str(version)
    # Timers tick from the server's clock: the browser corrects its own by this.
    response["X-Server-Now"] = timezone.now().isoformat()
    return response


def _board_response(request: HttpRequest, *extra_partials: str) -> HttpResponse:
    """The board, then the messages region and any other partials out of band."""
    version, html = board_html()
    html += render_to_string(f"{DESK}#messages", {"oob": True}, request)
    for name in extra_partials:
        html += render_to_string(name, {"oob": True}, request)
    return _fragment_response(html, version)


def _done(request: HttpRequest, *extra_partials: str) -> HttpResponse:
    if request.htmx:
        return _board_response(request, *extra_partials)
    return redirect("queueing:desk")


def _load_visit(pk: int) -> Visit:
    """The visit, if the board shows it: a leader sees only what is on the board.

    A visit that ended before the undo window is history (managers correct it in
    admin), so it answers exactly as an id that never existed: the same 404, with no
    name shown and nothing written. Ids run in sequence; a different answer would let
    anyone at a desk read the whole history. The model's conditional writes still
    decide every race: this only refuses what is already off the board.
    """
    return get_object_or_404(Visit.objects.on_board(), pk=pk)


@require_GET
@desk_view
def desk(request: HttpRequest) -> HttpResponse:
    return _desk_page(request)


def _desk_page(request: HttpRequest, form: AddVisitForm | None = None) -> HttpResponse:
    """The whole desk, the board taken from the per-version cache with this request's
    CSRF inputs (the page works without JavaScript) and timers as of now."""
    version, board = board_html(page=True)
    now = timezone.now()
    # Template output, escaped as it was rendered; the slots add only our own markup.
    board = mark_safe(fill_slots(board, csrf_input=csrf_input(request), now=now))  # noqa: S308
    context = {
        "board": board,
        "add_form": add_form_html(request, form, version=version),
        "poll_ms": int(settings.RESQ_POLL_SECONDS * 1000),
        "server_now": now,
    }
    response = render(request, DESK, context)
    response["X-Board-Version"] = str(version)
    return response


@require_GET
@never_cache
def poll(request: HttpRequest) -> HttpResponse:
    """What every open board asks every two seconds: has anything changed?

    The unchanged answer is the hot path (hundreds of screens), so beyond the login
    check (session and user) it is one query and no rendering: 204 with no body. The
    version number tells nothing about any student, so the permission check waits
    until there is a board to show, and the board itself comes from the per-version
    cache.
    """
    version = Board.current_version()
    if request.GET.get("v") == str(version):
        return HttpResponse(status=204)
    if not request.user.has_perm("queueing.use_desk"):
        return HttpResponse(status=403)
    version, html = board_html(version=version)
    return _fragment_response(html, version)


@require_POST
@desk_view
def add_visit(request: HttpRequest) -> HttpResponse:
    form = AddVisitForm(request.POST)
    if not form.is_valid():
        if request.htmx:
            # The form with its errors, and an emptied messages region so that an
            # earlier "added" message does not stand beside them.
            response = HttpResponse(add_form_html(request, form))
            response.content += render_to_string(
                f"{DESK}#messages", {"oob": True}, request
            ).encode()
            return response
        return _desk_page(request, form)
    visit = Visit.add(
        by=request.user,
        **{
            name: form.cleaned_data[name]
            for name in ("student_name", "student_number", "unit_code", "team", "enquiry_type")
        },
    )
    messages.success(
        request,
        f"{visit.student_name} added to the {visit.team.queue_label} as {visit.ticket}.",
        extra_tags=offer_tags("pass", visit),
    )
    if request.htmx:
        # A fresh, empty form for the next student; the form's hx-select-oob takes
        # the board out of the response and swaps it in place.
        response = _board_response(request)
        version = int(response["X-Board-Version"])
        response.content = add_form_html(request, version=version).encode() + response.content
        return response
    return redirect("queueing:desk")


def _transition(request: HttpRequest, pk: int, action: Callable[[Visit], None]) -> HttpResponse:
    visit = _load_visit(pk)
    try:
        action(visit)
    except StaffingLimitReached as exc:
        # A refused start offers one more staff member and the start; a refused undo
        # of a finish offers nothing (the visit is not waiting to be started).
        tags = offer_tags("start", visit) if visit.status == Visit.Status.WAITING else ""
        messages.warning(request, str(exc), extra_tags=tags)
    except TransitionError as exc:
        messages.error(request, str(exc))
    return _done(request)


@require_POST
@desk_view
def start_session(request: HttpRequest, pk: int) -> HttpResponse:
    add_staff = request.POST.get("add_staff") == "1"

    def start(visit: Visit) -> None:
        visit.start_session(by=request.user, add_staff=add_staff)
        messages.success(request, f"Session started for {visit.student_name}.")

    return _transition(request, pk, start)


@require_POST
@desk_view
def finish_session(request: HttpRequest, pk: int) -> HttpResponse:
    def finish(visit: Visit) -> None:
        visit.finish(by=request.user)
        messages.success(
            request,
            f"Session finished for {visit.student_name}.",
            extra_tags=offer_tags("undo-finish", visit),
        )

    return _transition(request, pk, finish)


@require_POST
@desk_view
def undo_start(request: HttpRequest, pk: int) -> HttpResponse:
    def undo(visit: Visit) -> None:
        visit.undo_start(by=request.user)
        messages.success(
            request,
            f"{visit.student_name} is back in the {visit.team.queue_label}, "
            "in their original place.",
        )

    return _transition(request, pk, undo)


@require_POST
@desk_view
def undo_end(request: HttpRequest, pk: int) -> HttpResponse:
    def undo(visit: Visit) -> None:
        was_finished = visit.status == Visit.Status.FINISHED
        visit.undo_end(by=request.user)
        if was_finished:
            messages.success(request, f"{visit.student_name}'s session is running again.")
        else:
            messages.success(
                request, f"{visit.student_name} is back in the {visit.team.queue_label}."
            )

    return _transition(request, pk, undo)


@require_http_methods(["GET", "POST"])
@desk_view
def remove_visit(request: HttpRequest, pk: int) -> HttpResponse:
    visit = _load_visit(pk)
    form = RemoveVisitForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            visit.remove(by=request.user, outcome=form.cleaned_data["outcome"])
        except TransitionError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"{visit.student_name} removed from the {visit.team.queue_label} "
                f"({visit.get_outcome_display().lower()}).",
                extra_tags=offer_tags("undo-removal", visit),
            )
        return _done(request, "queueing/dialog_closed.html")
    return _dialog(request, "queueing/remove.html", {"visit": visit, "form": form})


@require_http_methods(["GET", "POST"])
@desk_view
def edit_visit(request: HttpRequest, pk: int) -> HttpResponse:
    visit = _load_visit(pk)
    form = EditVisitForm(request.POST if request.method == "POST" else None, instance=visit)
    if request.method == "POST" and form.is_valid():
        # The form has written the new values onto `visit`; the domain call works
        # from a fresh copy so it can tell what changed and record it.
        fresh = _load_visit(pk)
        try:
            changed = fresh.correct(by=request.user, **form.cleaned_data)
        except TransitionError as exc:
            messages.error(request, str(exc))
        else:
            if "team" in changed:
                messages.success(
                    request,
                    f"{fresh.student_name} moved to the {fresh.team.queue_label}, "
                    "keeping their place by arrival time.",
                )
            elif changed:
                messages.success(request, f"{fresh.student_name}'s details corrected.")
            else:
                messages.info(request, "Nothing was changed.")
        return _done(request, "queueing/dialog_closed.html")
    return _dialog(request, "queueing/edit.html", {"visit": visit, "form": form})


@require_http_methods(["GET", "POST"])
@desk_view
def close_queue(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        closed = Visit.close_queue(by=request.user)
        if closed:
            messages.success(
                request,
                ngettext(
                    "Queue closed: %(count)d waiting student marked out of time.",
                    "Queue closed: %(count)d waiting students marked out of time.",
                    closed,
                )
                % {"count": closed},
            )
        else:
            messages.info(request, "Nobody was waiting; the queue is already clear.")
        return _done(request, "queueing/dialog_closed.html")
    waiting = Visit.objects.waiting().count()
    return _dialog(request, "queueing/close.html", {"waiting": waiting})


def _dialog(request: HttpRequest, template: str, context: dict) -> HttpResponse:
    """A confirmation or edit form: a modal dialog over the board for htmx, its own
    page without JavaScript. A form with errors re-renders in place."""
    if request.htmx:
        response = render(request, f"{template}#dialog", context)
        if request.method == "POST":
            response = reswap(retarget(response, "#dialog"), "innerHTML")
        return response
    return render(request, template, context)


@require_POST
@desk_view
def change_staffing(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team, slug=slug, is_active=True)
    form = StaffingForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Use the − and + buttons to change staffing.")
        return _done(request)
    try:
        team.change_staffing(form.cleaned_data["delta"], by=request.user)
    except TransitionError as exc:
        messages.error(request, str(exc))
    return _done(request)


@require_POST
@desk_view
def student_lookup(request: HttpRequest) -> HttpResponse:
    """Offer the name recorded last time for a student number seen before.

    A POST, so the number never sits in a URL or an access log. It answers only an
    exact, well-formed number with the one name the desk would show anyway, and only
    so many a minute for each user: a desk adds a few students a minute, while
    reading the history by trying numbers takes thousands.
    """
    form = StudentLookupForm(request.POST)
    name = None
    if form.is_valid():
        # Counted in the shared cache, so every app process counts against the same
        # limit; half-typed numbers never reach here, so typing slowly costs nothing.
        if not ratelimit.consume(
            request, app="queueing", action="student_lookup", config=LOOKUP_RATE_LIMITS
        ):
            return HttpResponse(
                LOOKUP_REFUSED, status=429, content_type="text/plain; charset=utf-8"
            )
        name = (
            Visit.objects.filter(student_number=form.cleaned_data["student_number"])
            .order_by("-arrived_at")
            .values_list("student_name", flat=True)
            .first()
        )
    return render(request, f"{DESK}#returning-student", {"returning_name": name})


def _load_checkin(pk: int) -> CheckIn:
    """A check-in the desk lists: waiting for it. One handled already answers as one
    never made (the same 404): the desk's list is the only way to them."""
    return get_object_or_404(
        CheckIn.objects.select_related("team"), pk=pk, status=CheckIn.Status.PENDING
    )


@require_POST
@desk_view
def accept_checkin(request: HttpRequest, pk: int) -> HttpResponse:
    """Into the chosen team's queue (the student's choice unless the leader picks one),
    at the time the student checked in."""
    entry = _load_checkin(pk)
    form = AcceptCheckInForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the teams listed.")
        return _done(request)
    try:
        visit = entry.accept(by=request.user, team=form.cleaned_data["team"])
    except TransitionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"{visit.student_name} added to the {visit.team.queue_label} as {visit.ticket}, "
            "in their place from checking in.",
            extra_tags=offer_tags("pass", visit),
        )
    return _done(request)


@require_POST
@desk_view
def dismiss_checkin(request: HttpRequest, pk: int) -> HttpResponse:
    entry = _load_checkin(pk)
    try:
        entry.dismiss(by=request.user)
    except TransitionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{entry.student_name}'s check-in dismissed.")
    return _done(request)


@require_http_methods(["GET", "POST"])
@desk_view
def student_pass(request: HttpRequest, pk: int) -> HttpResponse:
    """The student's own page as a QR code and a link, for the leader to show them, and
    the email their "you're next" and "session starting" go to, if they want them."""
    visit = _load_visit(pk)
    if not visit.student_key or visit.status not in (Visit.Status.WAITING, Visit.Status.IN_SESSION):
        raise Http404
    form = NoticeEmailForm(
        request.POST if request.method == "POST" else None,
        initial={"notify_email": visit.notify_email},
        university=student_email(visit.student_number),
    )
    if request.method == "POST" and form.is_valid():
        address = form.cleaned_data["notify_email"]
        visit.ask_for_notices(address)
        if address:
            messages.success(request, f"{visit.student_name} will be emailed at {address}.")
        else:
            messages.info(request, f"No emails for {visit.student_name}.")
        return _done(request, "queueing/dialog_closed.html")
    url = request.build_absolute_uri(reverse("students:place", args=[visit.student_key]))
    context = {"visit": visit, "url": url, "qr": qr_svg(url), "form": form}
    return _dialog(request, "queueing/pass.html", context)
