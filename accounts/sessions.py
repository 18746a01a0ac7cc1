"""Signed-in sessions: when they began and were last used, whether they passed the
second factor, and ending them.

Which sessions belong to a user comes from allauth's `UserSession` map, written when
someone logs in through the login page (allauth's `user_logged_in`), so ending a
user's sessions is one query for the map and one delete per session, not a decode
of every session in the table.
"""

import time
from collections.abc import Iterable

from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase

#: Seconds since the epoch, kept in the session itself.
LOGIN_AT = "resq_login_at"
ACTIVE_AT = "resq_active_at"
#: The user (pk) who passed the second factor in this session: at login, by
#: confirming a code later, or by setting up an authenticator app in it.
TWO_FACTOR_USER = "resq_two_factor_user"
#: When (seconds since the epoch) that user last passed it in this session.
TWO_FACTOR_AT = "resq_two_factor_at"

#: Activity is written back at most this often, so that a page that keeps asking
#: (or a leader clicking all afternoon) does not write the session every request.
ACTIVITY_WRITE_SECONDS = 60


def session_stamp_login(session: SessionBase, *, now: int) -> None:
    session[LOGIN_AT] = now
    session[ACTIVE_AT] = now


def session_note_activity(session: SessionBase, *, now: int) -> None:
    """Records activity, writing the session only when the last note is a minute old."""
    last = session.get(ACTIVE_AT)
    if last is None or now - last >= ACTIVITY_WRITE_SECONDS:
        session[ACTIVE_AT] = now


def session_keep(session: SessionBase, *, now: int) -> None:
    """Records activity now: someone asked to stay logged in, however recent the
    last note."""
    session[ACTIVE_AT] = now


def session_idle_left(session: SessionBase, *, now: int) -> int | None:
    """Seconds until the session ends for want of activity (None: it will not), read
    without writing anything, so that asking does not count as activity."""
    idle = settings.RESQ_SESSION_IDLE_TIMEOUT
    active_at = session.get(ACTIVE_AT)
    if not idle or active_at is None:
        return None
    return max(0, idle - (now - active_at))


def session_note_second_factor(session: SessionBase, user_id: int, *, now: int) -> None:
    session[TWO_FACTOR_USER] = user_id
    session[TWO_FACTOR_AT] = now


def session_passed_second_factor_within(session: SessionBase, user_id: int, seconds: int) -> bool:
    """Whether this user passed their second factor in this session in the last
    `seconds`: a code typed then, not just a password."""
    passed_at = session.get(TWO_FACTOR_AT)
    return (
        session.get(TWO_FACTOR_USER) == user_id
        and passed_at is not None
        and time.time() - passed_at < seconds
    )


def sessions_end(*, users: Iterable, keep: str | None = None) -> int:
    """Ends every session the users logged in to through the login page, but the one
    with the key `keep`; returns how many. Each is removed through the session engine,
    so a cached copy goes too."""
    ended = 0
    for user_session in UserSession.objects.filter(user__in=users).exclude(session_key=keep):
        user_session.end()
        ended += 1
    return ended
