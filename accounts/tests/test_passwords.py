"""Changing a password while logged in, and resetting a forgotten one by email."""

import re

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import UserFactory
from accounts.tests.helpers import PASSWORD, log_in

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a long walk to the library 42"


@pytest.fixture
def lee(client, leader) -> Client:
    """Lee, logged in through the login page."""
    log_in(client, "leader")
    return client


# --- change ----------------------------------------------------------------------------


def change(client: Client, old: str, new: str, again: str | None = None):
    return client.post(
        reverse("account_change_password"),
        {"oldpassword": old, "password1": new, "password2": again or new},
    )


def test_it_shows_the_change_password_page(lee):
    response = lee.get(reverse("account_change_password"))

    assert response.status_code == 200
    assert "Change your password" in response.text
    assert 'name="oldpassword"' in response.text


def test_it_changes_a_password_and_keeps_this_browser_logged_in(lee, leader):
    elsewhere = Client()
    log_in(elsewhere, "leader")

    response = change(lee, PASSWORD, NEW_PASSWORD)

    assert response.status_code == 302
    leader.refresh_from_db()
    assert leader.check_password(NEW_PASSWORD)
    assert lee.get(reverse("queueing:desk")).status_code == 200
    # Every other browser logged in with the old password is logged out.
    assert elsewhere.get(reverse("queueing:desk")).status_code == 302
    assert log_in(Client(), "leader", NEW_PASSWORD).status_code == 302


def test_it_refuses_a_weak_new_password(lee, leader):
    response = change(lee, PASSWORD, "password")

    assert response.status_code == 200
    assert "This password is too common." in response.text
    leader.refresh_from_db()
    assert leader.check_password(PASSWORD)


def test_it_refuses_a_new_password_like_the_username(lee, leader):
    response = change(lee, PASSWORD, "leader12345")

    assert response.status_code == 200
    assert "too similar to the username" in response.text


def test_it_refuses_a_wrong_current_password(lee, leader):
    response = change(lee, "not my password", NEW_PASSWORD)

    assert response.status_code == 200
    assert "Please type your current password." in response.text
    leader.refresh_from_db()
    assert leader.check_password(PASSWORD)


def test_it_sends_anonymous_users_to_log_in_first(client):
    response = client.get(reverse("account_change_password"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


# --- reset by email ----------------------------------------------------------------------


@pytest.fixture
def lee_with_email(leader):
    leader.email = "lee@example.edu"
    leader.save()
    return leader


def reset_link() -> str:
    [message] = mail.outbox
    [link] = re.findall(r"https?://testserver(/accounts/password/reset/key/\S+/)", message.body)
    return link


def test_it_resets_a_forgotten_password_by_email(client, lee_with_email):
    asked = client.post(reverse("account_reset_password"), {"email": "lee@example.edu"})

    assert asked.status_code == 302
    assert asked["Location"] == reverse("account_reset_password_done")
    [message] = mail.outbox
    assert message.to == ["lee@example.edu"]
    assert message.subject.startswith("[ResQ] ")
    link = reset_link()

    # The link puts the key in the session and moves it out of the address bar.
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    assert "Choose a new password" in form_page.text
    [(set_password_url, _)] = form_page.redirect_chain
    done = client.post(set_password_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert done.status_code == 302
    assert done["Location"] == reverse("account_reset_password_from_key_done")
    assert log_in(Client(), "leader", PASSWORD).status_code == 200
    assert log_in(client, "leader", NEW_PASSWORD).status_code == 302
    assert client.get(reverse("queueing:desk")).status_code == 200


def test_it_refuses_a_weak_password_at_the_reset_too(client, lee_with_email):
    client.post(reverse("account_reset_password"), {"email": "lee@example.edu"})
    form_page = client.get(reset_link(), follow=True)
    [(set_password_url, _)] = form_page.redirect_chain

    response = client.post(set_password_url, {"password1": "12345678", "password2": "12345678"})

    assert response.status_code == 200
    assert "This password is entirely numeric." in response.text
    lee_with_email.refresh_from_db()
    assert lee_with_email.check_password(PASSWORD)


def test_it_works_once(client, lee_with_email):
    client.post(reverse("account_reset_password"), {"email": "lee@example.edu"})
    link = reset_link()
    form_page = client.get(link, follow=True)
    [(set_password_url, _)] = form_page.redirect_chain
    client.post(set_password_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    again = Client().get(link, follow=True)

    assert "This link no longer works" in again.text


def test_it_does_not_say_whether_an_address_has_an_account(client, lee_with_email):
    response = client.post(reverse("account_reset_password"), {"email": "nobody@example.edu"})

    assert response.status_code == 302
    assert response["Location"] == reverse("account_reset_password_done")
    assert mail.outbox == []


def test_it_sends_no_reset_to_a_switched_off_account(client):
    UserFactory(username="gone", email="gone@example.edu", is_active=False)

    client.post(reverse("account_reset_password"), {"email": "gone@example.edu"})

    assert mail.outbox == []


def test_it_lifts_a_lockout_once_the_password_is_reset(client, lee_with_email, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "leader", "wrong guess")
    assert log_in(client, "leader", PASSWORD).status_code == 429

    client.post(reverse("account_reset_password"), {"email": "lee@example.edu"})
    form_page = client.get(reset_link(), follow=True)
    [(set_password_url, _)] = form_page.redirect_chain
    client.post(set_password_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert not AccessAttempt.objects.exists()
    assert log_in(client, "leader", NEW_PASSWORD).status_code == 302


def test_it_emails_the_account_when_its_password_changes(lee, lee_with_email):
    change(lee, PASSWORD, NEW_PASSWORD)

    [message] = mail.outbox
    assert message.to == ["lee@example.edu"]
    assert "password" in message.subject.lower()
