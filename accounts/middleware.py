import logging
import time
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import ngettext
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from .sessions import (
    ACTIVE_AT,
    LOGIN_AT,
    TWO_FACTOR_USER,
    session_idle_left,
    session_note_activity,
)

logger = logging.getLogger(__name__)


class LoginRequiredMiddleware(auth_middleware.LoginRequiredMiddleware):
    """Django's deny-by-default login check, aware of htmx.

    An htmx request from a signed-out screen (an expired session during a poll) must
    send the whole browser to the login page, not swap a login form into a table.
    """

    def handle_no_permission(self, request: HttpRequest, view_func) -> HttpResponse:
        if getattr(request, "htmx", False):
            current = _current_page(request)
            login_url = redirect_to_login(
                current or request.get_full_path(),
                resolve_url(self.get_login_url(view_func)),
                self.get_redirect_field_name(view_func),
            )["Location"]
            if urlsplit(current).path == reverse("queueing:desk"):
                return _desk_logged_out(request, login_url)
            return HttpResponseClientRedirect(login_url)
        return super().handle_no_permission(request, view_func)


def _desk_logged_out(request: HttpRequest, login_url: str) -> HttpResponse:
    """The desk's own answer when its session has ended (usually noticed by the poll).

    Sent to the login page, the screen would just become a login form: nobody would
    know why, and what was half-typed in ADD TO QUEUE would be gone. Instead the page's
    content (with every student on it) is replaced by a message saying why, with a
    link that logs in and comes back; resq.js keeps the typing in the browser tab.
    The header is rendered afresh, logged out, so it offers no pages and no Log out.
    """
    why = getattr(request, "resq_logged_out", None) or "Your session has ended."
    response = render(request, "account/desk_logged_out.html", {"why": why, "login_url": login_url})
    response.content += render_to_string("base.html#site-header", {"oob": True}, request).encode()
    response["X-Logged-Out"] = "1"
    return reswap(retarget(response, "#main"), "innerHTML")


class SessionTimeoutMiddleware:
    """Logs a user out after a while without activity, and a while after logging in.

    ResQ runs on a shared reception computer: a desk left open must not stay logged
    in until the evening. Idle means no request of the user's own. The board's
    two-second poll (RESQ_SESSION_PASSIVE_VIEWS) is the browser asking, not the
    person, so it never counts as activity and never writes the session: an
    unattended desk is logged out by its own poll once the idle time is up. Other
    requests write the time back at most once a minute.

    Before LoginRequiredMiddleware, which then sends the logged-out request to the
    login page as it would any other, with a message saying why (the desk's htmx
    requests are answered with that message in place of the board instead).

    htmx answers carry the seconds left before the idle logout (X-Session-Idle-Left),
    read without writing the session: the desk warns a couple of minutes before, and
    its "Stay logged in" button is a request of the person's own.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # Only where process_view looked at the user already: asking here must not
        # load a session that the request did not otherwise need.
        if (
            getattr(request, "htmx", False)
            and getattr(request, "resq_session_checked", False)
            and request.user.is_authenticated
        ):
            left = session_idle_left(request.session, now=int(time.time()))
            if left is not None:
                response["X-Session-Idle-Left"] = str(left)
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> None:
        request.resq_session_checked = True
        if not request.user.is_authenticated:
            return
        session = request.session
        now = int(time.time())
        login_at = session.get(LOGIN_AT)
        active_at = session.get(ACTIVE_AT)
        idle = settings.RESQ_SESSION_IDLE_TIMEOUT
        lifetime = settings.SESSION_COOKIE_AGE
        if login_at is not None and lifetime and now - login_at >= lifetime:
            self.log_out(request, f"after {_duration(lifetime)}: log in again to carry on.")
            return
        if active_at is not None and idle and now - active_at >= idle:
            self.log_out(request, f"after {_duration(idle)} without activity.")
            return
        match = request.resolver_match
        if match is not None and match.view_name in settings.RESQ_SESSION_PASSIVE_VIEWS:
            return
        if login_at is None:
            # Logged in before sessions were stamped: the clocks start now.
            session[LOGIN_AT] = now
        session_note_activity(session, now=now)

    @staticmethod
    def log_out(request: HttpRequest, why: str) -> None:
        user_id = request.user.pk
        logout(request)
        request.resq_logged_out = f"You were logged out {why}"
        messages.info(request, request.resq_logged_out)
        logger.info("Session of user %s timed out.", user_id)


class AdminTwoFactorMiddleware:
    """Admin needs two-factor authentication: a staff user without an authenticator
    app is sent to set one up, and one who has it must have passed it in this session
    (at login, by confirming a code now, or by setting the app up in it). Other pages
    do not ask: student leaders and coordinators share the reception computer and have
    no admin.

    After LoginRequiredMiddleware: an anonymous request is the admin's to refuse.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func, view_args, view_kwargs
    ) -> HttpResponse | None:
        match = request.resolver_match
        if match is None or match.app_name != "admin" or match.view_name == "admin:logout":
            return None
        user = request.user
        if not user.is_authenticated:
            return None
        if not (user.is_active and user.is_staff):
            # Django's admin would send them to its login page, which is ours, which
            # sends a logged-in user straight back: a loop. Say no instead.
            raise PermissionDenied
        if not is_mfa_enabled(user, [Authenticator.Type.TOTP]):
            messages.info(
                request,
                "Admin needs two-factor authentication. Set up an authenticator app on "
                "your phone to continue.",
            )
            return HttpResponseRedirect(reverse("mfa_activate_totp"))
        if request.session.get(TWO_FACTOR_USER) != user.pk:
            query = urlencode({"next": request.get_full_path()})
            return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{query}")
        return None


def _current_page(request: HttpRequest) -> str:
    """The path and query of the page an htmx request came from ("" if unknown), to
    come back to after logging in rather than to the fragment's URL.

    The header is the client's word: one no browser would send (a host urlsplit cannot
    parse, such as `http://[::1`) counts as absent, not as a server error.
    """
    try:
        current = urlsplit(request.htmx.current_url or "")
    except ValueError:
        return ""
    return current.path + (f"?{current.query}" if current.query else "")


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}
    minutes = max(1, round(seconds / 60))
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
