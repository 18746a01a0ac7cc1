"""Deny by default: every URL the project serves needs a login, unless it is listed here.

The permissions matrix (resq/tests/test_permissions_matrix.py) walks every URL pattern
and checks that a stranger is sent to the login page (an htmx request with HX-Redirect)
wherever its table says so. Here: the table lets a stranger in only where EXEMPT says
why, so a new page is private unless someone writes down otherwise; and an exempt page
never sends a stranger to log in for it, which would loop.
"""

import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.shortcuts import resolve_url
from django.urls import reverse

from queueing.models import Board
from resq.tests.routes import every_route
from resq.tests.routes import samples as samples  # a fixture
from resq.tests.test_permissions_matrix import EXPECTED, LOGIN

pytestmark = pytest.mark.django_db

#: URLs that answer without a login, and why.
EXEMPT = {
    "accounts:login": "the login page itself",
    "accounts:logout": "POST only; also abandons a login still waiting for its code",
    "account_reset_password": "a forgotten password: ask for a reset link",
    "account_reset_password_done": "a forgotten password: the link is on its way",
    "account_reset_password_from_key": "a forgotten password: the emailed link itself",
    "account_reset_password_from_key_done": "a forgotten password: the new one is set",
    "account_inactive": "says an account is switched off, to someone not logged in",
    "mfa_authenticate": "the login's second step: password given, code not yet",
    "admin_login_redirect": "sends the admin's login URL to the one login page",
    "healthz": "load balancers and the container health check have no session",
    "favicon": "a browser asks for the tab icon before anyone logs in",
    # The students' side: each opened by the secret in its address, never a login.
    "students:display": "the room's TV: ticket codes and counts, by the display's token",
    "students:display_poll": "the room's TV asking what changed, by the display's token",
    "students:poster": "the printable check-in QR code, by the display's token",
    "students:checkin": "a student checking in from a phone, by the check-in token",
    "students:place": "a student's own place in line, by their visit's key",
    "students:place_poll": "a student's page asking what changed, by their visit's key",
    "students:leave": "a student leaving the queue from their page, by their visit's key",
}


def _login_redirect(url: str) -> str:
    return f"{resolve_url(settings.LOGIN_URL)}?next={quote(url, safe='/')}"


def test_it_lets_strangers_in_only_where_exempt_says_why():
    open_to_strangers = {
        label
        for label, methods in EXPECTED.items()
        if any(answers["anonymous"] != LOGIN for answers in methods.values())
    }

    assert open_to_strangers == set(EXEMPT)


@pytest.mark.parametrize("name", sorted(EXEMPT))
def test_it_never_sends_a_stranger_to_log_in_for_an_exempt_url(client, samples, name):
    [route] = [route for route in every_route() if route.name == name]
    url = samples.url_for(route)
    # Logging out is POST only; logging out when not logged in lands on the login page.
    method = client.post if name == "accounts:logout" else client.get

    response = method(url)
    htmx_response = method(url, headers={"HX-Request": "true"})

    assert response.get("Location") != _login_redirect(url)
    assert "HX-Redirect" not in htmx_response


def test_it_sends_an_expired_board_back_to_the_board_after_login(client, htmx_headers):
    # The poll is what notices an expired session; the board then offers to log in
    # again, and after that the user lands on the page they were looking at, not on
    # the poll endpoint.
    response = client.get(reverse("queueing:poll"), headers=htmx_headers)

    assert response.status_code == 200
    [href] = re.findall(r'href="([^"]*)"[^>]*>Log in again<', response.text)
    location = urlsplit(href.replace("&amp;", "&"))
    assert location.path == resolve_url(settings.LOGIN_URL)
    [next_url] = parse_qs(location.query)["next"]
    assert urlsplit(next_url).path == urlsplit(htmx_headers["HX-Current-URL"]).path


def test_it_shows_the_login_form_on_the_login_page(client):
    response = client.get(reverse("accounts:login"), {"next": "/desk/"})

    assert response.status_code == 200
    assert 'name="username"' in response.text
    assert 'name="password"' in response.text
    assert 'name="next" value="/desk/"' in response.text


def test_it_answers_the_health_check_without_a_session(client):
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert not Session.objects.exists()


def test_it_logs_in_and_goes_to_the_page_asked_for(client, leader):
    response = client.post(
        reverse("accounts:login"),
        {"username": "leader", "password": "correct horse battery staple", "next": "/desk/"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/desk/"
    assert Session.objects.count() == 1


def test_it_ignores_an_off_site_next_after_login(client, leader):
    # HX-Current-URL is a request header and ends up in ?next=: it must not become
    # an open redirect.
    response = client.post(
        reverse("accounts:login"),
        {
            "username": "leader",
            "password": "correct horse battery staple",
            "next": "https://evil.example/desk/",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == resolve_url(settings.LOGIN_REDIRECT_URL)


def test_it_refuses_a_wrong_password(client, leader):
    response = client.post(
        reverse("accounts:login"), {"username": "leader", "password": "not the password"}
    )

    assert response.status_code == 200
    assert "username and/or password you specified are not correct" in response.text
    assert not Session.objects.exists()


# --- logout -------------------------------------------------------------------------


def test_it_does_not_log_out_on_get(leader_client):
    # A GET must not log anyone out: an <img src=".../logout/"> on any page could.
    response = leader_client.get(reverse("accounts:logout"))

    assert response.status_code == 405
    assert leader_client.get(reverse("queueing:desk")).status_code == 200
    assert Session.objects.count() == 1


def test_it_logs_out_on_post(leader_client):
    response = leader_client.post(reverse("accounts:logout"))

    assert response.status_code == 302
    assert response["Location"] == resolve_url(settings.LOGOUT_REDIRECT_URL)
    after = leader_client.get(reverse("queueing:desk"))
    assert after.status_code == 302
    assert after["Location"] == _login_redirect(reverse("queueing:desk"))
    assert not Session.objects.exists()


# --- signed in, but not desk staff --------------------------------------------------


def test_it_tells_a_coordinator_only_that_nothing_changed(client, coordinator):
    # By design the unchanged-version answer skips the permission check: it is the
    # hot path and says nothing about any student.
    client.force_login(coordinator)
    version = Board.current_version()

    unchanged = client.get(reverse("queueing:poll"), {"v": version})
    changed = client.get(reverse("queueing:poll"), {"v": version - 1})

    assert unchanged.status_code == 204
    assert unchanged.content == b""
    assert changed.status_code == 403


def test_it_has_one_login_page_for_admin_too(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/"
