"""What happens around signing in: stamps on the session, the second factor passed,
sessions ended when an account is switched off or its second factor removed, changes
to a second factor in the admin's log, lockouts lifted by a password reset."""

import time
from typing import Any

from allauth.account.signals import password_reset
from allauth.core import context
from allauth.mfa.models import Authenticator
from allauth.mfa.signals import (
    authenticator_added,
    authenticator_removed,
    authenticator_reset,
    authenticator_used,
)
from axes.utils import reset as axes_reset
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest

from .models import User
from .sessions import session_note_second_factor, session_stamp_login, sessions_end

#: How the admin's log names them: as the user's pages do.
AUTHENTICATOR_NAMES = {
    Authenticator.Type.TOTP: "authenticator app",
    Authenticator.Type.RECOVERY_CODES: "recovery codes",
}


@receiver(user_logged_in)
def stamp_login(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        session_stamp_login(request.session, now=int(time.time()))


@receiver(authenticator_used)
def note_second_factor(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    # At login this runs before the user is logged in; Django's login keeps the
    # session's data when it renews the session key, so the note survives it.
    if request is not None:
        session_note_second_factor(request.session, user.pk, now=int(time.time()))


@receiver(post_save, sender=Authenticator)
def note_second_factor_set_up(
    sender: Any, instance: Authenticator, created: bool, **kwargs: Any
) -> None:
    # Setting up an app means typing a code from it: as good as passing it. (Not on
    # allauth's authenticator_added, which waits for the commit: after the request in
    # a test, too late for the session.)
    request = context.request
    if (
        created
        and instance.type == Authenticator.Type.TOTP
        and request is not None
        and getattr(request, "user", None) is not None
        and request.user.pk == instance.user_id
    ):
        session_note_second_factor(request.session, instance.user_id, now=int(time.time()))


#: How the admin's log words each change to a second factor.
TWO_FACTOR_CHANGES = {
    authenticator_added: "Set up",
    authenticator_removed: "Removed",
    authenticator_reset: "Renewed",
}


@receiver(list(TWO_FACTOR_CHANGES))
def after_second_factor_changed(
    sender: Any,
    signal: Any,
    request: HttpRequest | None,
    user: User,
    authenticator: Authenticator,
    **kwargs: Any,
) -> None:
    # Each change is in the admin's log, and allauth emails the user: the first app
    # needs only the password (there is no factor yet to ask for), so that is how
    # someone else setting one up is noticed. Whoever removed one may have been
    # someone else holding the account: the user's other browsers log in again.
    # (Removing it asks for the second factor first: accounts.views.)
    if request is None:
        return
    if signal is authenticator_removed:
        sessions_end(users=[user], keep=request.session.session_key)
    name = AUTHENTICATOR_NAMES.get(authenticator.type, authenticator.get_type_display())
    LogEntry.objects.log_actions(
        user_id=request.user.pk,
        queryset=[user],
        action_flag=CHANGE,
        change_message=f"{TWO_FACTOR_CHANGES[signal]} two-factor authentication: {name}.",
    )


@receiver(post_save, sender=User)
def end_sessions_of_inactive_user(sender: Any, instance: User, **kwargs: Any) -> None:
    # Django already refuses an inactive user's session at its next request; ending
    # it removes it now, cached copies included.
    if not instance.is_active:
        sessions_end(users=[instance])


@receiver(password_reset)
def lift_lockout_after_reset(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    # Whoever followed the emailed link holds the account's mailbox, and has just
    # chosen a new password: a lockout for the old one has done its job.
    axes_reset(username=user.get_username())
