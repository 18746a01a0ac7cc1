"""Signing in lands each role where its work is, never on a page it may not open."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("role", "lands_on"),
    [
        ("leader", "queueing:desk"),
        ("manager", "queueing:desk"),
        ("coordinator", "reporting:dashboard"),
    ],
)
def test_it_starts_each_role_where_its_work_is(client, request, role, lands_on):
    client.force_login(request.getfixturevalue(role))
    response = client.get(reverse("home"), follow=True)
    assert response.redirect_chain[0][0] == reverse(lands_on)
    assert response.status_code == 200


def test_it_sends_someone_without_a_role_to_their_account(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("nobody", password="x" * 12))
    response = client.get(reverse("home"))
    assert response["Location"] == reverse("accounts:overview")


def test_it_asks_anonymous_visitors_to_log_in(client):
    response = client.get(reverse("home"))
    assert response["Location"].startswith(reverse("accounts:login"))
