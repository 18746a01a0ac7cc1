"""Sessions on a shared reception computer: logged out after a while without
activity (the board's poll is not activity) and a working day after logging in;
ended when an account is switched off, or from admin."""

import time

import pytest
from allauth.usersessions.models import UserSession
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.sessions import ACTIVE_AT, LOGIN_AT
from accounts.tests.factories import UserFactory
from accounts.tests.helpers import log_in, pass_two_factor
from accounts.tests.test_admin import change_data
from queueing.models import Board

pytestmark = pytest.mark.django_db

MINUTE = 60


def set_clock(client: Client, **stamps: int) -> None:
    """Moves the session's stamps: e.g. active=-31 * MINUTE (seconds from now)."""
    session = client.session
    now = int(time.time())
    if "login" in stamps:
        session[LOGIN_AT] = now + stamps["login"]
    if "active" in stamps:
        session[ACTIVE_AT] = now + stamps["active"]
    session.save()


def session_row(client: Client) -> tuple:
    row = Session.objects.get(session_key=client.session.session_key)
    return row.session_data, row.expire_date


# --- stamps ----------------------------------------------------------------------------


def test_it_stamps_the_login_and_first_activity(client, leader):
    before = int(time.time())

    log_in(client, "leader")

    session = client.session
    assert before <= session[LOGIN_AT] <= time.time()
    assert session[ACTIVE_AT] == session[LOGIN_AT]


def test_it_notes_activity_at_most_once_a_minute(leader_client):
    set_clock(leader_client, active=-30)
    stamped = leader_client.session[ACTIVE_AT]
    row = session_row(leader_client)

    leader_client.get(reverse("queueing:desk"))

    assert leader_client.session[ACTIVE_AT] == stamped
    assert session_row(leader_client) == row

    set_clock(leader_client, active=-61)
    leader_client.get(reverse("queueing:desk"))

    assert leader_client.session[ACTIVE_AT] >= time.time() - 5


# --- idle ------------------------------------------------------------------------------


def test_it_logs_out_after_thirty_minutes_without_activity(leader_client):
    set_clock(leader_client, active=-31 * MINUTE)

    response = leader_client.get(reverse("queueing:desk"))
    page = leader_client.get(response["Location"])

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next=/desk/"
    assert "You were logged out after 30 minutes without activity." in page.text
    assert "_auth_user_id" not in leader_client.session


def test_it_keeps_a_user_who_was_active_recently(leader_client):
    set_clock(leader_client, active=-29 * MINUTE)

    assert leader_client.get(reverse("queueing:desk")).status_code == 200


def test_it_does_not_count_the_boards_poll_as_activity(leader_client, htmx_headers):
    set_clock(leader_client, active=-29 * MINUTE)
    row = session_row(leader_client)
    version = Board.current_version()

    with CaptureQueriesContext(connection) as queries:
        unchanged = leader_client.get(
            reverse("queueing:poll"), {"v": version}, headers=htmx_headers
        )
        changed = leader_client.get(reverse("queueing:poll"), {"v": -1}, headers=htmx_headers)

    assert (unchanged.status_code, changed.status_code) == (204, 200)
    # Read-only: the desk's hundreds of polling screens write nothing.
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in queries.captured_queries)
    assert session_row(leader_client) == row


def test_it_says_on_the_board_when_an_unattended_desk_is_logged_out(leader_client, htmx_headers):
    set_clock(leader_client, active=-30 * MINUTE)

    response = leader_client.get(
        reverse("queueing:poll"), {"v": Board.current_version()}, headers=htmx_headers
    )

    # Not the whole browser sent to the login page: the desk says what happened in
    # place of the board (and of the students on it), with a way back to the desk.
    assert response.status_code == 200
    assert "HX-Redirect" not in response
    assert response["HX-Retarget"] == "#main"
    assert "You were logged out after 30 minutes without activity." in response.text
    assert f'href="{reverse("accounts:login")}?next=/desk/"' in response.text
    assert "_auth_user_id" not in leader_client.session
    # The login page that link opens says it too.
    page = leader_client.get(reverse("accounts:login"), {"next": "/desk/"})
    assert "You were logged out after 30 minutes without activity." in page.text


def test_it_tells_the_desk_how_long_until_it_idles_out(leader_client, htmx_headers):
    set_clock(leader_client, active=-29 * MINUTE)

    response = leader_client.get(
        reverse("queueing:poll"), {"v": Board.current_version()}, headers=htmx_headers
    )

    # A minute left, counted from the last activity: the poll itself is not one.
    assert 55 <= int(response["X-Session-Idle-Left"]) <= 60


def test_it_keeps_the_session_when_asked_to(leader_client, htmx_headers, settings):
    settings.RESQ_SESSION_IDLE_TIMEOUT = 5 * MINUTE
    # Under a minute ago: an ordinary request would not write the time back.
    set_clock(leader_client, active=-50)

    response = leader_client.post(reverse("accounts:stay"), headers=htmx_headers)

    assert response.status_code == 204
    assert int(response["X-Session-Idle-Left"]) == 5 * MINUTE
    assert leader_client.session[ACTIVE_AT] >= time.time() - 5


def test_it_takes_the_idle_time_from_the_settings(leader_client, settings):
    settings.RESQ_SESSION_IDLE_TIMEOUT = 5 * MINUTE
    set_clock(leader_client, active=-6 * MINUTE)

    response = leader_client.get(reverse("queueing:desk"), follow=True)

    assert "after 5 minutes without activity" in response.text


def test_it_never_logs_out_for_idleness_when_turned_off(leader_client, settings):
    settings.RESQ_SESSION_IDLE_TIMEOUT = 0
    set_clock(leader_client, active=-5 * 60 * MINUTE)

    assert leader_client.get(reverse("queueing:desk")).status_code == 200


# --- a working day ---------------------------------------------------------------------


def test_it_logs_out_ten_hours_after_login_however_active(leader_client):
    set_clock(leader_client, login=-10 * 60 * MINUTE, active=-10)

    response = leader_client.get(reverse("queueing:desk"), follow=True)

    assert "You were logged out after 10 hours: log in again to carry on." in response.text
    assert "_auth_user_id" not in leader_client.session


def test_it_starts_the_clocks_for_a_session_from_before_them(leader_client):
    session = leader_client.session
    del session[LOGIN_AT], session[ACTIVE_AT]
    session.save()

    assert leader_client.get(reverse("queueing:desk")).status_code == 200
    assert LOGIN_AT in leader_client.session


# --- cookies -----------------------------------------------------------------------------


def test_it_keeps_the_session_cookie_from_scripts_and_other_sites(client, leader):
    response = log_in(client, "leader")

    cookie = response.cookies[django_settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    # No "remember me" on a shared computer: the cookie ends with the browser.
    assert not cookie["max-age"]
    assert django_settings.CSRF_COOKIE_HTTPONLY
    assert django_settings.CSRF_COOKIE_SAMESITE == "Lax"


# --- ending sessions ---------------------------------------------------------------------


def logged_in_browsers(username: str, count: int) -> list[Client]:
    browsers = [Client() for _ in range(count)]
    for browser in browsers:
        assert log_in(browser, username).status_code == 302
    return browsers


def test_it_maps_sessions_to_their_user_at_login(leader):
    logged_in_browsers("leader", 2)

    assert UserSession.objects.filter(user=leader).count() == 2


def test_it_ends_a_users_sessions_when_their_account_is_switched_off(leader):
    browsers = logged_in_browsers("leader", 2)

    leader.is_active = False
    leader.save()

    assert not Session.objects.exists()
    assert not UserSession.objects.exists()
    for browser in browsers:
        assert browser.get(reverse("queueing:desk")).status_code == 302


def test_it_ends_a_users_sessions_when_a_manager_switches_them_off_in_admin(leader, manager_client):
    [browser] = logged_in_browsers("leader", 1)
    url = reverse("admin:accounts_user_change", args=[leader.pk])

    response = manager_client.post(url, change_data(leader, is_active=""))

    assert response.status_code == 302
    assert browser.get(reverse("queueing:desk")).status_code == 302
    assert manager_client.get(reverse("queueing:desk")).status_code == 200


def test_it_logs_a_user_out_everywhere_from_admin(leader, other_leader, manager_client):
    leader_browsers = logged_in_browsers("leader", 2)
    [sam] = logged_in_browsers("sam", 1)

    response = manager_client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "log_out_everywhere", "_selected_action": [leader.pk]},
        follow=True,
    )

    assert "Ended 2 sessions." in response.text
    for browser in leader_browsers:
        assert browser.get(reverse("queueing:desk")).status_code == 302
    assert sam.get(reverse("queueing:desk")).status_code == 200


def test_it_does_not_let_a_manager_log_out_a_superuser(manager_client):
    UserFactory(username="boss", is_superuser=True, is_staff=True)
    [boss] = logged_in_browsers("boss", 1)

    manager_client.post(
        reverse("admin:accounts_user_changelist"),
        {
            "action": "log_out_everywhere",
            "_selected_action": [boss.session["_auth_user_id"]],
        },
    )

    assert UserSession.objects.count() == 1


def test_it_refuses_the_action_to_a_coordinator(client, coordinator, leader):
    logged_in_browsers("leader", 1)
    client.force_login(coordinator)

    response = client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "log_out_everywhere", "_selected_action": [leader.pk]},
    )

    assert response.status_code == 403
    assert UserSession.objects.count() == 1


def test_it_shows_a_user_where_they_are_logged_in_and_logs_out_the_others(leader):
    here, there = logged_in_browsers("leader", 2)

    page = here.get(reverse("usersessions_list"))
    response = here.post(reverse("usersessions_list"))

    assert page.status_code == 200
    assert page.text.count("<tr>") == 3  # the heading and two sessions
    assert response.status_code == 302
    assert here.get(reverse("queueing:desk")).status_code == 200
    assert there.get(reverse("queueing:desk")).status_code == 302


def test_it_says_so_on_the_login_page_after_logging_out(leader_client):
    response = leader_client.post(reverse("accounts:logout"), follow=True)

    assert "You have logged out." in response.text


def test_it_logs_a_session_out_when_a_superuser_deletes_it_in_admin(leader):
    [browser] = logged_in_browsers("leader", 1)
    boss = UserFactory(username="boss", is_superuser=True, is_staff=True)
    admin = Client()
    admin.force_login(boss)
    pass_two_factor(admin, boss)
    row = UserSession.objects.get(user=leader)

    response = admin.post(
        reverse("admin:usersessions_usersession_delete", args=[row.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert browser.get(reverse("queueing:desk")).status_code == 302
