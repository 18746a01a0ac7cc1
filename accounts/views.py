import time
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from allauth.account import app_settings as account_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from .sessions import session_keep, session_passed_second_factor_within


@method_decorator(login_not_required, name="dispatch")
class LogoutView(auth_views.LogoutView):
    """Django's POST-only logout, which says so on the login page it lands on: on a
    shared computer the next person should see that the last one is gone.

    Open without a login too: it is how a half-finished login (password given, code
    not yet) is abandoned, which would otherwise greet the next person at the login
    page with someone else's code prompt.
    """

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        was_logged_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_logged_in:
            messages.success(request, "You have logged out.")
        return response


@require_GET
@never_cache
def overview(request: HttpRequest) -> HttpResponse:
    """Your account: password, two-factor authentication, where you are logged in."""
    return render(
        request,
        "account/overview.html",
        {"two_factor": is_mfa_enabled(request.user, [Authenticator.Type.TOTP])},
    )


@require_POST
@never_cache
def stay_logged_in(request: HttpRequest) -> HttpResponse:
    """The desk's "Still there?" answered: activity now, so the idle time starts again.

    The desk's own requests (its poll) are not activity; this is a person pressing a
    button. A POST, so a page cannot keep a session alive by linking here.
    """
    session_keep(request.session, now=int(time.time()))
    if request.htmx:
        return HttpResponse(status=204)
    return HttpResponseRedirect(reverse("queueing:desk"))


def second_factor_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For a user who has a second factor: they must have passed it in this session in
    the last few minutes (allauth's reauthentication timeout), or they are asked for a
    code (the app's, or a recovery code) and come back.

    allauth's own check before these pages accepts the password instead, which would
    let whoever has only the password (a session that logged in before the app was set
    up) remove the app and set up their own. Recovery codes are a second factor too:
    seeing or renewing them needs it as well. A user without one yet sets up the first
    with their password: there is no factor to ask for.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and is_mfa_enabled(user)
            and not session_passed_second_factor_within(
                request.session, user.pk, account_settings.REAUTHENTICATION_TIMEOUT
            )
        ):
            query = urlencode({"next": request.get_full_path()})
            return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{query}")
        return view(request, *args, **kwargs)

    return wrapper
