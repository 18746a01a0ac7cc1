"""CSRF: every unsafe request needs the token, htmx ones included.

Django's test client skips the check unless asked (`enforce_csrf_checks=True`), which
is how every test here runs. Plain forms send the token as a field; htmx sends it in the
X-CSRFToken header that base.html puts on <body>.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.tests.helpers import PASSWORD, pass_two_factor
from queueing.models import EnquiryType, Team, Visit
from queueing.tests.factories import VisitFactory, db_state

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true", "HX-Current-URL": "http://testserver/desk/"}


@pytest.fixture
def desk_actions(leader):
    """Every desk action, with a body it would accept."""
    team = Team.objects.get(slug="studysmarter")
    team.available_staff = 3
    team.save()
    waiting = VisitFactory(student_number="21000001")
    in_session = VisitFactory(student_number="21000002")
    in_session.start_session(by=leader)
    finished = VisitFactory(student_number="21000003")
    finished.start_session(by=leader)
    finished.finish(by=leader)
    add = {
        "student_name": "Ana Token",
        "student_number": "21999999",
        "unit_code": "",
        "team": team.pk,
        "enquiry_type": EnquiryType.objects.get(name="Essay").pk,
    }
    return {
        "add": (reverse("queueing:add"), add),
        "start": (reverse("queueing:start", args=[waiting.pk]), {}),
        "finish": (reverse("queueing:finish", args=[in_session.pk]), {}),
        "undo start": (reverse("queueing:undo_start", args=[in_session.pk]), {}),
        "undo end": (reverse("queueing:undo_end", args=[finished.pk]), {}),
        "remove": (reverse("queueing:remove", args=[waiting.pk]), {"outcome": "no_show"}),
        "edit": (
            reverse("queueing:edit", args=[waiting.pk]),
            {**add, "student_name": "Ana Edited", "student_number": waiting.student_number},
        ),
        "staffing": (reverse("queueing:staffing", args=["studysmarter"]), {"delta": "1"}),
        "close": (reverse("queueing:close"), {}),
        "student lookup": (reverse("queueing:student_lookup"), {"student_number": "21000001"}),
    }


def browser(user=None) -> Client:
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    return client


def token(client: Client) -> str:
    """The token a page gives the browser (the desk for signed-in users)."""
    page = reverse("queueing:desk") if "_auth_user_id" in client.session else "/accounts/login/"
    client.get(page)
    return client.cookies["csrftoken"].value


ACTIONS = ["add", "start", "finish", "undo start", "undo end", "remove", "edit", "staffing",
           "close", "student lookup"]  # fmt: skip


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_it_refuses_a_desk_action_without_the_token(desk_actions, leader, action, htmx):
    client = browser(leader)
    url, data = desk_actions[action]
    before = db_state()

    response = client.post(url, data, headers=HTMX if htmx else {})

    assert response.status_code == 403
    assert db_state() == before


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_it_accepts_a_desk_action_with_the_token(desk_actions, leader, action, htmx):
    client = browser(leader)
    url, data = desk_actions[action]
    secret = token(client)

    if htmx:
        response = client.post(url, data, headers={**HTMX, "X-CSRFToken": secret})
    else:
        response = client.post(url, {**data, "csrfmiddlewaretoken": secret})

    assert response.status_code != 403
    assert response.status_code in (200, 302)


def test_it_refuses_a_token_from_another_session(desk_actions, leader, other_leader):
    stolen = token(browser(other_leader))
    client = browser(leader)
    token(client)
    url, _ = desk_actions["close"]

    response = client.post(url, headers={**HTMX, "X-CSRFToken": stolen})

    assert response.status_code == 403
    assert Visit.objects.filter(status=Visit.Status.WAITING).exists()


def test_it_refuses_a_request_from_another_site_even_with_the_token(desk_actions, leader):
    client = browser(leader)
    secret = token(client)
    url, _ = desk_actions["close"]

    response = client.post(
        url, headers={**HTMX, "X-CSRFToken": secret, "Origin": "https://evil.example"}
    )

    assert response.status_code == 403
    assert Visit.objects.filter(status=Visit.Status.WAITING).exists()


def test_it_refuses_a_login_without_the_token(leader):
    client = browser()

    response = client.post(
        reverse("accounts:login"), {"username": leader.username, "password": PASSWORD}
    )

    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_it_accepts_a_login_with_the_token(leader):
    client = browser()
    secret = token(client)

    response = client.post(
        reverse("accounts:login"),
        {"username": leader.username, "password": PASSWORD, "csrfmiddlewaretoken": secret},
    )

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(leader.pk)


def test_it_refuses_a_logout_without_the_token(leader):
    # Otherwise any page could sign the desk out with a self-submitting form.
    client = browser(leader)

    response = client.post(reverse("accounts:logout"))

    assert response.status_code == 403
    assert client.session["_auth_user_id"] == str(leader.pk)


def test_it_accepts_a_logout_with_the_token(leader):
    client = browser(leader)
    secret = token(client)

    response = client.post(reverse("accounts:logout"), {"csrfmiddlewaretoken": secret})

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


@pytest.fixture
def admin_browser(manager):
    client = browser(manager)
    pass_two_factor(client, manager)
    return client


def test_it_refuses_an_admin_change_without_the_token(admin_browser):
    team = Team.objects.get(slug="librarian")
    url = reverse("admin:queueing_team_change", args=[team.pk])
    data = {"name": "Hijacked", "slug": team.slug, "display_order": 1, "is_active": "on"}

    refused = admin_browser.post(url, data)
    admin_browser.get(url)
    secret = admin_browser.cookies["csrftoken"].value
    accepted = admin_browser.post(url, {**data, "csrfmiddlewaretoken": secret})

    assert refused.status_code == 403
    assert accepted.status_code == 302
    team.refresh_from_db()
    assert team.name == "Hijacked"


def test_it_refuses_an_admin_delete_without_the_token(admin_browser):
    visit = VisitFactory()

    response = admin_browser.post(
        reverse("admin:queueing_visit_delete", args=[visit.pk]), {"post": "yes"}
    )

    assert response.status_code == 403
    assert Visit.objects.filter(pk=visit.pk).exists()


def test_a_refused_form_explains_itself_on_the_products_page(leader):
    client = browser(leader)

    response = client.post(reverse("queueing:close"), {})

    assert response.status_code == 403
    html = response.content.decode()
    assert "This form has expired" in html
    assert "Nothing was saved." in html
    # The site's own page (its stylesheet, the signed-in header), not Django's, whose
    # inline style the CSP would refuse.
    assert 'rel="stylesheet" href="/static/css/resq.css"' in html
    assert "<style" not in html
    assert "Go to the desk" in html
    assert "token missing" not in html.lower()  # Django's reason names the mechanism
