"""Login throttling: too many wrong passwords for one username from one address lock
that pair out for a while; managers can unlock it sooner."""

import logging
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.tests.helpers import PASSWORD, log_in

pytestmark = pytest.mark.django_db

WRONG = "Tr0ub4dor&3-not-it"


def fail(client: Client, times: int, username: str = "leader"):
    response = None
    for _ in range(times):
        response = log_in(client, username, WRONG)
    return response


def logged_in_sessions() -> int:
    return sum("_auth_user_id" in session.get_decoded() for session in Session.objects.all())


def test_it_refuses_wrong_passwords_on_the_form_until_the_limit(client, leader, settings):
    response = fail(client, settings.AXES_FAILURE_LIMIT - 1)

    assert response.status_code == 200
    assert "are not correct" in response.text
    assert AccessAttempt.objects.get(username="leader").failures_since_start == 4


def test_it_locks_out_at_the_limit_with_a_page_that_says_what_to_do(client, leader, settings):
    response = fail(client, settings.AXES_FAILURE_LIMIT)

    assert response.status_code == 429
    assert "Too many wrong passwords" in response.text
    assert "Ask a manager to unlock your account" in response.text
    assert "axes/lockout.html" in [template.name for template in response.templates]
    assert 14 * 60 < int(response["Retry-After"]) <= 15 * 60
    assert logged_in_sessions() == 0


def test_it_says_when_to_try_again_in_local_time(client, leader, settings):
    fail(client, settings.AXES_FAILURE_LIMIT)
    last = AccessAttempt.objects.get(username="leader").attempt_time

    response = log_in(client, "leader", WRONG)

    until = timezone.localtime(last + timedelta(minutes=15))
    assert f"{until:%H:%M}" in response.text
    assert "in about 15 minutes" in response.text


def test_it_refuses_even_the_right_password_while_locked_out(client, leader, settings):
    fail(client, settings.AXES_FAILURE_LIMIT)

    response = log_in(client, "leader", PASSWORD)

    assert response.status_code == 429
    assert logged_in_sessions() == 0
    assert client.get(reverse("queueing:desk")).status_code == 302
    # Refused without counting: the time on the page does not move.
    assert AccessAttempt.objects.get(username="leader").failures_since_start == 5


def test_it_locks_only_that_username_at_that_address(leader, other_leader, settings):
    reception = Client(REMOTE_ADDR="10.0.0.7")
    fail(reception, settings.AXES_FAILURE_LIMIT)

    elsewhere = log_in(Client(REMOTE_ADDR="10.0.0.8"), "leader")
    colleague = log_in(reception, "sam")

    assert elsewhere.status_code == 302
    assert colleague.status_code == 302


def test_it_never_lets_failures_at_one_address_stop_a_login_from_another(leader):
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    fail(attacker, 25)

    assert log_in(Client(REMOTE_ADDR="10.0.0.8"), "leader").status_code == 302


def test_it_slows_one_address_trying_many_usernames(leader, settings):
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "login_failed_password": "3/m/ip",
    }
    sprayer = Client(REMOTE_ADDR="203.0.113.9")
    for username in ("ann", "bob", "cy"):
        fail(sprayer, 1, username)

    response = log_in(sprayer, "leader")

    assert "Too many failed login attempts" in response.text
    assert log_in(Client(REMOTE_ADDR="10.0.0.8"), "leader").status_code == 302


def test_it_lets_them_in_once_a_manager_unlocks_them_in_admin(leader, manager_client, settings):
    client = Client()
    fail(client, settings.AXES_FAILURE_LIMIT)
    attempt = AccessAttempt.objects.get(username="leader")

    listing = manager_client.get(reverse("admin:axes_accessattempt_changelist"))
    unlock = manager_client.post(
        reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"}
    )

    assert listing.status_code == 200
    assert "leader" in listing.text
    assert unlock.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert log_in(client, "leader").status_code == 302
    assert client.get(reverse("queueing:desk")).status_code == 200


def test_it_lets_them_in_once_reset_from_the_command_line(client, leader, settings):
    fail(client, settings.AXES_FAILURE_LIMIT)

    call_command("axes_reset_username", "leader", stdout=None)

    assert log_in(client, "leader").status_code == 302


def test_it_lets_them_in_after_the_cool_off(client, leader, settings):
    fail(client, settings.AXES_FAILURE_LIMIT)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    assert log_in(client, "leader").status_code == 302


def test_it_forgets_failures_after_a_successful_login(client, leader, settings):
    fail(client, settings.AXES_FAILURE_LIMIT - 1)
    log_in(client, "leader")
    client.post(reverse("accounts:logout"))

    response = fail(client, settings.AXES_FAILURE_LIMIT - 1)

    assert response.status_code == 200


def test_it_takes_the_limit_from_the_settings(client, leader, settings):
    settings.AXES_FAILURE_LIMIT = 2

    assert fail(client, 2).status_code == 429


def test_it_logs_a_failed_login_without_the_password(client, leader, caplog):
    caplog.set_level(logging.DEBUG)

    log_in(client, "leader", WRONG)

    failures = [r for r in caplog.records if "login failure" in r.getMessage()]
    assert failures, "a failed login is logged"
    assert failures[0].levelno == logging.WARNING
    for record in caplog.records:
        assert WRONG not in record.getMessage()
        assert WRONG not in repr(vars(record))
    # Nor in the attempt kept for admin.
    assert WRONG not in AccessAttempt.objects.get().post_data


def test_it_does_not_let_a_coordinator_see_the_lockouts(client, coordinator):
    client.force_login(coordinator)

    response = client.get(reverse("admin:axes_accessattempt_changelist"))

    assert response.status_code == 403
