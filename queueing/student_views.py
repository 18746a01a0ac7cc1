"""The students' side: the room's display, check-in from a phone, a student's own page.

These are the only pages open without a staff login, each reached by a secret in its
address and scoped to what it shows (docs/security.md, "The students' side"):

- the display (`Display.token`): per team, how many wait, the estimate for someone
  joining now and the ticket codes in line; a code called, large, for a minute. Never a
  name, number, unit or enquiry.
- check-in (`Display.checkin_token`): a form that asks for the room code the display
  shows, so a check-in comes from the room; it shows nothing about anyone else.
- a student's own page (the visit's `student_key`, or a pending check-in's): their
  code, place in line, estimate, and a button to leave.

Each polls like the desk's board: one query and a 204 while the board's version (and,
for the display, its room code) has not moved.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from allauth.core.internal import ratelimit
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import caches
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .cache import cache_call
from .estimates import Shown
from .forms import CheckInForm
from .models import Board, CheckIn, Display, TransitionError, Visit, WaitEstimate
from .qr import qr_svg
from .templatetags.desk import estimate_markup
from .views import BOARD_CACHE_SECONDS, board_context, board_html, template_digest

logger = logging.getLogger(__name__)

DISPLAY = "students/display.html"
#: How long a code called stays large on the display.
CALLED_SECONDS = 60
#: A student's page answers for this long after their visit ended, then 404s.
PAGE_LASTS = timedelta(hours=2)

# Per address: a room's students share one network address, so this is far above a
# queue's arrivals and far below a script's. Per number: one student checking in again
# and again. Wrong room codes count too, so the code cannot be guessed by trying.
CHECKIN_RATE_LIMITS = {"checkin": "30/10m/ip", "checkin_number": "3/1h/key"}
CHECKIN_REFUSED = (
    "Too many check-ins from this network in the last few minutes, so this one was not "
    "saved. Please give your details at the desk."
)
NUMBER_REFUSED = (
    "This student number has checked in several times in the last hour, so this one was "
    "not saved. Please see the desk."
)

student_page = login_not_required


def _display(token: str) -> Display:
    return get_object_or_404(Display, token=token, is_active=True)


def _checkin_url(request: HttpRequest, screen: Display) -> str:
    return request.build_absolute_uri(reverse("students:checkin", args=[screen.checkin_token]))


# --- the room's display --------------------------------------------------------------


@require_GET
@student_page
@never_cache
def display(request: HttpRequest, token: str) -> HttpResponse:
    screen = _display(token)
    version = Board.current_version()
    checkin_url = _checkin_url(request, screen)
    context = {
        "screen": screen,
        "live": _display_live(screen, version),
        "version": version,
        "checkin_url": checkin_url,
        "qr": qr_svg(checkin_url),
        "poll_ms": int(settings.RESQ_POLL_SECONDS * 1000),
        "time_zone": settings.TIME_ZONE,
    }
    response = render(request, DISPLAY, context)
    response["X-Board-Version"] = str(version)
    return response


@require_GET
@student_page
@never_cache
def display_poll(request: HttpRequest, token: str) -> HttpResponse:
    """204 while neither the board nor the room code has changed; else what the screen
    shows, for it to swap in."""
    screen = _display(token)
    version = Board.current_version()
    code = screen.room_code()
    if request.GET.get("v") == str(version) and request.GET.get("c") == code:
        return HttpResponse(status=204)
    response = HttpResponse(_display_live(screen, version))
    response["X-Board-Version"] = str(version)
    return response


def _display_live(screen: Display, version: int) -> str:
    """The room code, then the teams' lines as of the version, from the board cache:
    rendered once per version for every display."""
    board = _display_board(version)
    code = render_to_string(
        f"{DISPLAY}#room-code",
        {"room_code": screen.room_code()},
    )
    return mark_safe(code + board)  # noqa: S308


def _display_board(version: int) -> str:
    # With the template's digest: a shared cache never serves another release's board.
    key = f"resq:display:{version}:{template_digest(DISPLAY)}"
    html = cache_call(caches["board"].get, key)
    if html is None:
        context = board_context(version=version)
        now = context["server_now"]
        called_since = now - timedelta(seconds=CALLED_SECONDS)
        called = [
            {
                "ticket": row.ticket,
                "team": row.team__name,
                "until": row.started_at + timedelta(seconds=CALLED_SECONDS),
            }
            for row in reversed(context["sessions"])
            if row.ticket and row.started_at >= called_since
        ]
        teams = [
            {
                "name": team.name,
                "slug": team.slug,
                "waiting": len(team.waiting),
                "tickets": [row.ticket for row in team.waiting if row.ticket],
                "newcomer": estimate_markup(team.newcomer, now) if team.newcomer else "",
            }
            for team in context["teams"]
        ]
        html = render_to_string(
            f"{DISPLAY}#board",
            {"teams": teams, "called": called, "server_now": now, "version": version},
        )
        cache_call(caches["board"].set, key, html, timeout=BOARD_CACHE_SECONDS)
    return html


@require_GET
@student_page
@never_cache
def poster(request: HttpRequest, token: str) -> HttpResponse:
    """A printable A4 poster of the check-in QR code, for the wall or the desk."""
    screen = _display(token)
    checkin_url = _checkin_url(request, screen)
    return render(
        request,
        "students/poster.html",
        {"screen": screen, "checkin_url": checkin_url, "qr": qr_svg(checkin_url)},
    )


# --- check-in from a phone -----------------------------------------------------------


@require_http_methods(["GET", "POST"])
@student_page
@never_cache
def checkin(request: HttpRequest, token: str) -> HttpResponse:
    screen = get_object_or_404(Display, checkin_token=token, is_active=True)
    if request.method == "GET":
        form = CheckInForm(display=screen)
        return render(request, "students/checkin.html", {"form": form, "screen": screen})
    if not _within_limit(request, "checkin"):
        return _refused(request, screen, CHECKIN_REFUSED)
    form = CheckInForm(request.POST, display=screen)
    if not form.is_valid():
        return render(
            request, "students/checkin.html", {"form": form, "screen": screen}, status=400
        )
    number = form.cleaned_data["student_number"]
    # The limiter keeps its key in the cache for an hour: a keyed digest, not the number.
    if not _within_limit(
        request,
        "checkin_number",
        key=salted_hmac("resq.checkin", number, algorithm="sha256").hexdigest(),
    ):
        return _refused(request, screen, NUMBER_REFUSED)
    with transaction.atomic():
        entry = form.save(commit=False)
        entry.display = screen
        entry.notify_email = form.cleaned_data["notify_email"]
        entry.save()
        Board.bump()
    if settings.RESQ_CHECKIN_AUTO_ACCEPT and entry.team is not None:
        entry.accept(by=None)
    return redirect("students:place", entry.key)


def _within_limit(request: HttpRequest, action: str, key: str | None = None) -> bool:
    """Whether this check-in is within its rate limit. The limits are counted in the
    shared cache; a cache that stops answering lets check-ins through (with a warning in
    the log) rather than failing every student at once."""
    try:
        return bool(
            ratelimit.consume(
                request, app="students", action=action, config=CHECKIN_RATE_LIMITS, key=key
            )
        )
    except Exception:
        logger.warning("Check-in rate limits unavailable; not limiting", exc_info=True)
        return True


def _refused(request: HttpRequest, screen: Display, reason: str) -> HttpResponse:
    return render(
        request,
        "students/checkin.html",
        {"form": None, "screen": screen, "refused": reason},
        status=429,
    )


# --- a student's own page ------------------------------------------------------------


def _find(key: str) -> Visit | CheckIn:
    """The visit the key opens, else the check-in not yet accepted; a visit long over,
    like a key never given, is a 404."""
    if not key:
        raise Http404
    visit = Visit.objects.select_related("team").filter(student_key=key).first()
    if visit is not None:
        if visit.ended_at is not None and visit.ended_at < timezone.now() - PAGE_LASTS:
            raise Http404
        return visit
    entry = CheckIn.objects.filter(key=key).first()
    if entry is None or entry.created_at < timezone.now() - PAGE_LASTS * 6:
        raise Http404
    return entry


def place_context(found: Visit | CheckIn) -> dict:
    """What a student's page says: their state, and while they wait, their place in
    line and estimate."""
    context: dict = {"found": found}
    if isinstance(found, CheckIn):
        context["state"] = f"checkin-{found.status}"
        return context
    visit = found
    context["state"] = f"{visit.status}-{visit.outcome}"
    if visit.status == Visit.Status.WAITING:
        ahead = (
            Visit.objects.waiting()
            .filter(team_id=visit.team_id, arrived_at__lte=visit.arrived_at)
            .exclude(arrived_at=visit.arrived_at, pk__gte=visit.pk)
            .count()
        )
        context["place"] = ahead + 1
        estimate = (
            WaitEstimate.objects.filter(visit=visit, current=True)
            .values_list("made_at", "low_minutes", "high_minutes")
            .first()
        )
        now = timezone.now()
        if estimate is not None:
            context["estimate"] = estimate_markup(Shown.made(*estimate), now)
        context["state"] = f"waiting-{context['place']}-{estimate}"
    return context


def _place_html(request: HttpRequest, found: Visit | CheckIn, key: str) -> tuple[str, str]:
    context = place_context(found)
    context["leave_url"] = reverse("students:leave", args=[key])
    html = render_to_string("students/place.html#status", context, request)
    # Of what the page says, not of its HTML (whose CSRF input differs every time).
    digest = hashlib.blake2b(context["state"].encode(), digest_size=8).hexdigest()
    return html, digest


@require_GET
@student_page
@never_cache
def place(request: HttpRequest, key: str) -> HttpResponse:
    found = _find(key)
    version = Board.current_version()
    # The board of this version (its estimates stored) before the page reads them:
    # every desk screen asks for it anyway, so this is usually a cache hit.
    board_html(version=version)
    status, digest = _place_html(request, found, key)
    context = {
        "found": found,
        "status": mark_safe(status),  # noqa: S308
        "digest": digest,
        "version": version,
        "poll_ms": int(settings.RESQ_POLL_SECONDS * 1000),
        "time_zone": settings.TIME_ZONE,
        "key": key,
    }
    response = render(request, "students/place.html", context)
    response["X-Board-Version"] = str(version)
    return response


@require_GET
@student_page
@never_cache
def place_poll(request: HttpRequest, key: str) -> HttpResponse:
    """204 while the board has not changed, or has changed in nothing this student's
    page shows; else their status, to swap in."""
    version = Board.current_version()
    if request.GET.get("v") == str(version):
        return HttpResponse(status=204)
    found = _find(key)
    board_html(version=version)
    html, digest = _place_html(request, found, key)
    if request.GET.get("s") == digest:
        response = HttpResponse(status=204)
    else:
        response = HttpResponse(html)
        response["X-Digest"] = digest
    response["X-Board-Version"] = str(version)
    return response


@require_POST
@student_page
@never_cache
def leave(request: HttpRequest, key: str) -> HttpResponse:
    """The student leaves the queue: recorded as removed, "left before being seen"."""
    found = _find(key)
    try:
        if isinstance(found, CheckIn):
            found.dismiss(by=None, status=CheckIn.Status.WITHDRAWN)
        elif found.status == Visit.Status.WAITING:
            found.remove(by=None, outcome=Visit.Outcome.CANCELLED)
    except TransitionError:
        pass  # Already moved on (started, or removed at the desk): the page says so.
    return redirect("students:place", key)
