"""No header or query parameter makes ResQ answer 500.

Hypothesis sends arbitrary text in every header htmx sends (and django-htmx reads) and
arbitrary query parameters to every URL pattern, anonymous and signed in with each role:
a bad request is the client's fault and gets a 4xx, never a server error. The walk is
the permissions matrix's (resq/tests/routes.py: every pattern, with a real row for each
parameter). Each example runs in a savepoint that is rolled back, and lets any
exception raise, so a failure shows its traceback and the smallest request that causes
it.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from urllib.parse import quote, urlencode

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from queueing.models import Team
from resq.tests import test_permissions_matrix as matrix
from resq.tests.routes import ADMIN_MODEL_ROUTE, Route
from resq.tests.routes import samples as samples  # a fixture

pytestmark = pytest.mark.django_db

# The matrix's users, one for every role.
users = matrix.users

# Every request header htmx 2 sends and django-htmx reads, and each one's
# `-URI-AutoEncoded` twin, which makes django-htmx percent-decode the value.
HTMX_HEADERS = (
    "HX-Request",
    "HX-Boosted",
    "HX-Current-URL",
    "HX-History-Restore-Request",
    "HX-Prompt",
    "HX-Target",
    "HX-Trigger",
    "HX-Trigger-Name",
    "Triggering-Event",
    "HX-PTag",
    "HX-Request-Type",
    "HX-Source",
)
FUZZED_HEADERS = (
    *HTMX_HEADERS,
    *(f"{name}-URI-AutoEncoded" for name in HTMX_HEADERS),
    "X-Request-ID",
)

# What a real request can carry in a header: latin-1, without the characters a server
# refuses (NUL, CR, LF).
header_text = st.text(
    alphabet=st.characters(max_codepoint=0xFF, exclude_characters="\0\r\n"), max_size=40
)
# URLs for HX-Current-URL, often with a host urlsplit cannot parse.
urls = st.builds(
    "{}{}{}".format,
    st.sampled_from(["http://", "https://", "//", "javascript:", ""]),
    st.one_of(
        st.sampled_from(["testserver", "[::1", "[", "]", "[::1]", "testserver:99999", "%5B"]),
        header_text,
    ),
    st.one_of(st.sampled_from(["/desk/", "/desk/?tab=1", "/%FF%", "?next=//x"]), header_text),
)
flags = st.one_of(st.sampled_from(["true", "false"]), header_text)
header_values = dict.fromkeys(FUZZED_HEADERS, header_text) | {
    "HX-Request": flags,
    "HX-Boosted": flags,
    "HX-History-Restore-Request": flags,
    "HX-Current-URL": urls,
    "Triggering-Event": st.one_of(
        st.sampled_from(['{"target": null}', "[]", "1e999"]), header_text
    ),
    **{f"{name}-URI-AutoEncoded": flags for name in HTMX_HEADERS},
}
# Each header present or not, so any combination of them can be tried.
htmx_headers = st.fixed_dictionaries({}, optional=header_values)

# The query parameters ResQ's views read (grep request.GET), admin's and allauth's, then
# any name at all.
QUERY_NAMES = (
    "v",
    "next",
    "view",
    "day",
    "start",
    "end",
    "term",
    "term_week",
    "team",
    "period",
    "q",
    "o",
    "p",
    "e",
    "all",
    "_popup",
    "_to_field",
    "_changelist_filters",
    "app_label",
    "model_name",
    "field_name",
)
query_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
query_values = st.one_of(
    st.sampled_from(
        [
            "",
            "-1",
            "0",
            "9" * 30,
            "1e309",
            "NaN",
            "2026-02-30",
            "0001-01-01",
            "9999-12-31",
            "studysmarter",
            "last-week",
            "custom",
            "\0",
            "//elsewhere.example/",
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    query_text,
)
query_pairs = st.lists(
    st.tuples(st.one_of(st.sampled_from(QUERY_NAMES), query_text), query_values), max_size=5
)

ROLES = matrix.ROLES
# Requests per group: a few per pattern and some to spare, about 700 in all, so the file
# runs in well under a minute. The same ones each run under the "ci" profile (the
# root conftest.py); `HYPOTHESIS_PROFILE=explore` draws new ones.
EXAMPLES_PER_GROUP = 10


@contextmanager
def rolled_back():
    """Run one example in a savepoint and throw its writes away."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def send(users, url: str, role: str, method: str, headers: dict, query: list) -> int:
    # A browser of its own per example: a logout in one must not sign out the next.
    client: Client = matrix.client_for(users[role])
    separator = "&" if "?" in url else "?"
    full_url = f"{url}{separator}{urlencode(query)}" if query else url
    return getattr(client, method)(full_url, headers=headers).status_code


# --- the reproduction from the issue ------------------------------------------------


def test_it_sends_an_htmx_request_with_an_unparsable_current_url_to_the_login_page(client):
    response = client.get(
        "/desk/",
        headers={
            "HX-Request": "true",
            "HX-Current-URL": "http://[::1",
            "X-Forwarded-Proto": "https",
        },
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/accounts/login/?next={quote('/desk/')}"


def test_it_refuses_an_admin_export_with_filters_its_list_would_refuse(manager_client):
    # Admin's export applies the list's filters from the query string; an unknown one
    # is a bad request (the list itself sends it back with ?e=1), not a server error.
    response = manager_client.get(reverse("admin:queueing_team_export"), {"v": "1"})

    assert response.status_code == 400


@pytest.mark.parametrize("page", ["change", "delete"])
def test_it_refuses_an_admin_page_asked_for_an_empty_to_field(manager_client, page):
    # Django's admin checks a named `_to_field` but looks an empty one up as a field.
    team = Team.objects.get(slug="studysmarter")
    url = reverse(f"admin:queueing_team_{page}", args=[team.pk])

    assert manager_client.get(url, {"_to_field": ""}).status_code == 400
    assert manager_client.post(f"{url}?_to_field=").status_code == 400
    assert Team.objects.filter(pk=team.pk, name=team.name).exists()


# --- every URL, every role, any header and query --------------------------------------


def route_groups() -> dict[str, list[Route]]:
    """The patterns by the code that serves them: each app's pages, and admin's pages
    one model at a time (every model's list, add, change, delete... share admin's code)."""
    groups: dict[str, list[Route]] = defaultdict(list)
    for route in matrix.ROUTES:
        model = ADMIN_MODEL_ROUTE.match(route.route)
        if model:
            groups[f"admin:{model['app']}.{model['model']}"].append(route)
        else:
            groups[route.route.split("/")[0] or "home"].append(route)
    return dict(groups)


GROUPS = route_groups()


@pytest.mark.parametrize("group", GROUPS)
def test_it_never_answers_500(samples, users, group):
    routes = GROUPS[group]
    urls = {route.label: samples.url_for(route) for route in routes}

    @hypothesis_settings(max_examples=EXAMPLES_PER_GROUP + 3 * len(routes))
    @given(
        label=st.sampled_from(sorted(urls)),
        role=st.sampled_from(ROLES),
        method=st.sampled_from(["get", "post"]),
        headers=htmx_headers,
        query=query_pairs,
    )
    def request_anything(label, role, method, headers, query):
        with rolled_back():
            assert send(users, urls[label], role, method, headers, query) < 500

    request_anything()
