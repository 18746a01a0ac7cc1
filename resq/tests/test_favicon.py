"""The tab icon: linked from every page, and at /favicon.ico for what asks there."""

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_it_answers_favicon_ico_with_the_icon(client):
    # Browsers (and admin pages, before they linked the icon) ask for /favicon.ico when
    # a page names no icon; a 404 there fills the logs.
    response = client.get("/favicon.ico")

    assert response.status_code == 301
    assert response["Location"] == f"{settings.STATIC_URL}favicon.svg"
    assert finders.find("favicon.svg")


ICON = re.compile(r'<link rel="icon" href="[^"]*favicon\.svg"')


@pytest.mark.parametrize(("path", "status"), [(reverse("accounts:login"), 200), ("/nowhere/", 404)])
def test_it_links_the_icon_from_pages_for_everyone(client, path, status):
    response = client.get(path)

    assert response.status_code == status
    assert ICON.search(response.text)


@pytest.mark.parametrize(
    "path",
    [
        reverse("admin:index"),
        reverse("admin:queueing_visit_changelist"),
        reverse("admin:queueing_visit_import"),
    ],
)
def test_it_links_the_icon_from_every_admin_page(manager_client, path):
    response = manager_client.get(path)

    assert response.status_code == 200
    assert ICON.search(response.text)
