"""Error pages: friendly, in the product's style, and telling an outsider nothing.

Tests run with DEBUG off (as pytest-django sets it), so these are the pages production
shows. The failing view lives only in this module's URLconf.
"""

from pathlib import Path

import pytest
from django.conf import settings
from django.template import loader
from django.test import Client
from django.urls import include, path, reverse

from resq import urls as project_urls

pytestmark = pytest.mark.django_db

SECRET_DETAIL = "connection to 10.1.2.3 refused for student 21234567"


def broken_view(request):
    raise RuntimeError(SECRET_DETAIL)


urlpatterns = [
    path("test-only/boom/", broken_view),
    path("", include(project_urls)),
]
handler500 = project_urls.handler500

#: What a debug page or a stack trace would show, and no error page may.
LEAKS = (
    "Traceback",
    "RuntimeError",
    SECRET_DETAIL,
    "21234567",
    "SECRET_KEY",
    "DATABASES",
    "INSTALLED_APPS",
    "settings.py",
    "site-packages",
    str(settings.BASE_DIR),
    "Using the URLconf",
    "Django tried these URL patterns",
    "You're seeing this error because you have",
)


def assert_leaks_nothing(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, leak


@pytest.mark.urls(__name__)
def test_it_shows_a_friendly_500_page_without_details(leader):
    client = Client(raise_request_exception=False)
    client.force_login(leader)

    response = client.get("/test-only/boom/")

    assert response.status_code == 500
    assert settings.DEBUG is False
    text = response.content.decode()
    assert "Something went wrong" in text
    assert "the change may not have been saved" in text
    assert_leaks_nothing(text)
    assert "no-store" in response["Cache-Control"]
    assert "Content-Security-Policy" in response


def test_it_renders_the_500_page_without_a_request_or_the_database(django_assert_num_queries):
    # As Django's 500 handler does: no request, so no context processors and no user.
    with django_assert_num_queries(0):
        text = loader.get_template("500.html").render()

    assert "Something went wrong" in text


def test_the_500_page_links_only_to_static_files_that_exist():
    text = (Path(settings.BASE_DIR) / "templates" / "500.html").read_text()
    static = "/" + settings.STATIC_URL.strip("/") + "/"

    assert f'href="{static}css/resq.css"' in text
    assert (Path(settings.BASE_DIR) / "static" / "css" / "resq.css").is_file()
    assert (Path(settings.BASE_DIR) / "static" / "favicon.svg").is_file()
    # No tags that need a context: {% url %}, {% static %}, {{ user }}...
    assert "{%" not in text
    assert "{{" not in text


def test_it_shows_a_friendly_404_page(leader_client):
    response = leader_client.get("/desk/no-such-page/21234567/")

    assert response.status_code == 404
    text = response.content.decode()
    assert "Page not found" in text
    assert "Go to the desk" in text
    assert_leaks_nothing(text)
    assert "no-store" in response["Cache-Control"]


def test_it_shows_the_404_page_to_strangers_too(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    text = response.content.decode()
    assert "Page not found" in text
    assert "Log in" in text
    assert_leaks_nothing(text)


def test_it_shows_a_404_for_a_visit_that_does_not_exist(leader_client):
    response = leader_client.get(reverse("queueing:edit", args=[999_999]))

    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_it_shows_a_friendly_403_page_for_a_missing_permission(client, coordinator):
    client.force_login(coordinator)

    response = client.get(reverse("queueing:desk"))

    assert response.status_code == 403
    text = response.content.decode()
    assert "isn't available to you" in text
    assert "Cora" in text
    # Where a coordinator can go instead; never a link to what they cannot open.
    assert reverse("reporting:dashboard") in text
    assert 'href="/desk/"' not in text
    assert_leaks_nothing(text)
    assert "no-store" in response["Cache-Control"]


def test_it_answers_a_refused_htmx_action_with_403_and_no_page_to_swap_in(client, coordinator):
    client.force_login(coordinator)

    response = client.post(reverse("queueing:close"), headers={"HX-Request": "true"})

    # htmx swaps nothing on a 4xx: the desk's script shows its own short message.
    assert response.status_code == 403
