"""Login throttling: django-axes locks a (username, address) pair out; allauth slows one
address trying many usernames. Whose address counts, and what a locked-out person sees.
Settings: ACCOUNT_RATE_LIMITS and the `AXES_*` block in resq/settings.py."""

import math
from datetime import timedelta
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter, get_adapter
from allauth.core.internal import ratelimit
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone


class AccountAdapter(DefaultAccountAdapter):
    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        """Counts a password attempt against its address only.

        allauth counts failures per username too, at every address at once: anyone
        could lock a user out wherever they are by typing wrong passwords for their
        name. axes' lockout of the (username, address) pair already stops guessing at
        one account, so the username alone counts nowhere. The usage is kept where
        allauth's authenticate() rolls it back after a right password, so people
        signing in do not use up their address's allowance.
        """
        self._login_failed_rl_usage = ratelimit.consume(
            request, app="allauth.account", action="login_failed_password"
        )
        if not self._login_failed_rl_usage:
            raise self.validation_error("too_many_login_attempts")


def client_ip(request: HttpRequest) -> str | None:
    """The address failures are counted against: the one allauth's rate limits use, so
    both agree behind the proxy (ALLAUTH_TRUSTED_PROXY_COUNT)."""
    try:
        return get_adapter(request).get_client_ip(request)
    except PermissionDenied:
        return None


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """The page a locked-out login gets instead of the login form (429): how long to
    wait, and that a manager can unlock them sooner.

    The lock lifts a cool-off after the last counted failure. Attempts during the
    lock are not counted (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT off), so the
    time shown holds however often they try.
    """
    username = get_client_username(request, credentials) or ""
    ip_address = getattr(request, "axes_ip_address", None) or client_ip(request)
    cool_off = get_cool_off(request) or timedelta(0)
    last_failure = AccessAttempt.objects.filter(username=username, ip_address=ip_address).aggregate(
        last=Max("attempt_time")
    )["last"]
    now = timezone.now()
    until = (last_failure or now) + cool_off
    wait = max(until - now, timedelta(0))
    response = render(
        request,
        "axes/lockout.html",
        {
            "username": username,
            "failure_limit": get_failure_limit(request, credentials),
            "until": until,
            "wait_minutes": max(1, math.ceil(wait.total_seconds() / 60)),
        },
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
    response["Retry-After"] = str(max(1, math.ceil(wait.total_seconds())))
    return response
