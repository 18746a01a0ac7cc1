"""Deny by default: every URL the project serves needs a login, unless it is listed here.

The walk below reads the URLconf itself, so a URL added tomorrow is checked without
anyone remembering to add a test: it either passes the anonymous check, or it is put
on EXEMPT with a reason, or the walk fails because it cannot build a URL for it.
"""

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from accounts.tests.factories import UserFactory
from queueing.models import Board, Visit
from queueing.tests.factories import VisitFactory, db_state

pytestmark = pytest.mark.django_db

#: URLs that answer without a login, and why.
EXEMPT = {
    "accounts:login": "the login page itself",
    "account_login": "allauth's name for the same login page (shadowed by accounts:login)",
    "accounts:logout": "POST only; also abandons a login still waiting for its code",
    "account_reset_password": "a forgotten password: ask for a reset link",
    "account_reset_password_done": "a forgotten password: the link is on its way",
    "account_reset_password_from_key": "a forgotten password: the emailed link itself",
    "account_reset_password_from_key_done": "a forgotten password: the new one is set",
    "account_inactive": "says an account is switched off, to someone not logged in",
    "mfa_authenticate": "the login's second step: password given, code not yet",
    "admin:login": "Django admin's login URL, shadowed by admin_login_redirect",
    "admin_login_redirect": "sends the admin's login URL to the one login page",
    "healthz": "load balancers and the container health check have no session",
    "favicon": "a browser asks for the tab icon before anyone logs in",
}

#: Names every walk must find: a walk that finds nothing would prove nothing.
EXPECTED = {
    "home",
    "accounts:login",
    "accounts:logout",
    "queueing:desk",
    "queueing:poll",
    "queueing:add",
    "queueing:start",
    "queueing:finish",
    "queueing:undo_start",
    "queueing:undo_end",
    "queueing:remove",
    "queueing:edit",
    "queueing:staffing",
    "queueing:close",
    "queueing:student_lookup",
    "admin:index",
    "admin:accounts_user_changelist",
    "healthz",
}

NEVER_CACHE = ("no-store", "no-cache", "must-revalidate", "max-age=0", "private")

ROUTE_PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?:[^()\\]|\\.)*\)")


@dataclass(frozen=True)
class Route:
    route: str
    name: str | None
    callback: object

    @property
    def label(self) -> str:
        return self.name or self.route

    @property
    def is_exempt(self) -> bool:
        return self.name in EXEMPT

    @property
    def has_own_login_page(self) -> bool:
        """Views that name their own login page (Django's admin-site views do)."""
        own = getattr(self.callback, "login_url", None)
        return own is not None and resolve_url(own) != resolve_url(settings.LOGIN_URL)


def _join(first: str, second: str) -> str:
    # As Django joins them for ResolverMatch.route: no "^" at the start of the second.
    return first + second.removeprefix("^") if first else second


def iter_routes(patterns, prefix: str = "", namespace: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from iter_routes(entry.url_patterns, _join(prefix, str(entry.pattern)), inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}{entry.name}" if entry.name else None
            yield Route(_join(prefix, str(entry.pattern)), name, entry.callback)
        else:
            raise AssertionError(f"Unknown URLconf entry {entry!r}: teach the walk about it.")


ROUTES = list(iter_routes(get_resolver().url_patterns))


CHECKED = [pytest.param(r, id=r.label) for r in ROUTES if not r.is_exempt]
# Django admin speaks no htmx: its views send anonymous users to the admin login URL,
# which redirects to ours (checked by the plain walk above).
HTMX_CHECKED = [
    pytest.param(r, id=r.label) for r in ROUTES if not r.is_exempt and not r.has_own_login_page
]


class SampleValues:
    """What to put in each URL parameter: real rows, so views get as far as they can."""

    def __init__(self, visit: Visit, user) -> None:
        self.by_converter = {
            "int": str(visit.pk),
            "slug": "studysmarter",
            "str": str(user.pk),
            "path": str(visit.pk),
            "uuid": "00000000-0000-0000-0000-000000000000",
        }
        self.by_regex_group = {
            "app_label": "accounts",
            "url": "no-such-page/",
            "uidb36": "1",
            "key": "not-a-real-key",
        }

    def url_for(self, route: Route) -> str:
        def from_route(match: re.Match) -> str:
            converter = match["converter"] or "str"
            assert converter in self.by_converter, (
                f"{route.label}: no sample value for <{converter}:{match['name']}>; "
                "add one to SampleValues."
            )
            return self.by_converter[converter]

        def from_regex(match: re.Match) -> str:
            assert match["name"] in self.by_regex_group, (
                f"{route.label}: no sample value for regex group {match['name']!r}; "
                "add one to SampleValues."
            )
            return self.by_regex_group[match["name"]]

        # Regex groups first: "(?P<name>…)" would otherwise look like a route's "<name>".
        path = ROUTE_PARAM.sub(from_route, REGEX_GROUP.sub(from_regex, route.route))
        url = "/" + path.replace("^", "").replace("$", "")
        # The URL must reach the pattern under test, not a neighbour or a 404.
        assert resolve(url).route == route.route, (
            f"{route.label}: the sample URL {url} resolves to {resolve(url).route!r}; "
            "give the walk a better sample for this pattern."
        )
        return url


@pytest.fixture
def samples(db):
    visit = VisitFactory()
    return SampleValues(visit, UserFactory(username="someone"))


def _login_redirect(url: str) -> str:
    return f"{resolve_url(settings.LOGIN_URL)}?next={quote(url, safe='/')}"


def assert_lands_on_the_login_page(client: Client, location: str, url: str) -> None:
    """`location` is the login page with ?next=url, or a page that sends the browser
    straight there (one hop, as a redirect from the admin's login URL would)."""
    if location != _login_redirect(url):
        hop = client.get(location)
        assert hop.status_code == 302, f"{url} -> {location} answered {hop.status_code}"
        assert hop["Location"] == _login_redirect(url), f"{url} -> {location}"


# --- the walk itself ------------------------------------------------------------------


def test_it_finds_every_url_of_the_project():
    labels = {route.label for route in ROUTES}
    assert labels >= EXPECTED, f"The walk missed {sorted(EXPECTED - labels)}"
    assert any(route.route.startswith("admin/") for route in ROUTES)


def test_it_has_no_stale_exemptions():
    names = {route.name for route in ROUTES}
    assert names >= set(EXEMPT), f"Exempt but gone: {sorted(set(EXEMPT) - names)}"


def test_it_builds_a_url_for_every_checked_pattern(samples):
    # A pattern the walk cannot reach fails here, instead of being skipped silently.
    for route in ROUTES:
        if not route.is_exempt:
            samples.url_for(route)


# --- anonymous users ----------------------------------------------------------------


@pytest.mark.parametrize("route", CHECKED)
def test_it_sends_anonymous_users_to_the_login_page(client, samples, route):
    url = samples.url_for(route)
    before = db_state()

    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code == 302, f"{method.__name__.upper()} {url}"
        assert_lands_on_the_login_page(client, response["Location"], url)

    assert db_state() == before


@pytest.mark.parametrize("route", HTMX_CHECKED)
def test_it_sends_anonymous_htmx_requests_to_the_login_page_with_hx_redirect(
    client, samples, route
):
    url = samples.url_for(route)
    before = db_state()

    for method in (client.get, client.post):
        response = method(url, headers={"HX-Request": "true"})
        # A 200 with HX-Redirect: htmx sends the whole browser there instead of
        # swapping a login form into the board.
        assert response.status_code == 200, f"{method.__name__.upper()} {url}"
        assert_lands_on_the_login_page(client, response["HX-Redirect"], url)
        assert response.content == b""
        assert "Location" not in response

    assert db_state() == before


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


@pytest.mark.parametrize("route", [r for r in ROUTES if r.is_exempt], ids=lambda r: r.label)
def test_it_answers_exempt_urls_without_a_login(client, samples, route):
    url = samples.url_for(route)
    # Logging out is POST only; logging out when not logged in lands on the login page.
    method = client.post if route.name == "accounts:logout" else client.get

    response = method(url)
    htmx_response = method(url, headers={"HX-Request": "true"})

    # Served as is, or (the admin's login URL, pointed at ours; the code step with no
    # login waiting) sent to our login page: never held back until a login, which
    # would loop.
    if response.status_code == 302:
        assert urlsplit(response["Location"]).path == resolve_url(settings.LOGIN_URL)
        assert urlsplit(response["Location"]).query != f"next={quote(url, safe='/')}"
    elif route.name == "favicon":
        # The tab icon is a static file: sent on to it.
        assert response.status_code == htmx_response.status_code == 301
    else:
        assert response.status_code == 200
        assert htmx_response.status_code == 200
    assert "HX-Redirect" not in htmx_response


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

DESK_ROUTES = [r for r in ROUTES if (r.name or "").startswith("queueing:")]


@pytest.mark.parametrize("route", DESK_ROUTES, ids=lambda r: r.label)
def test_it_refuses_the_desk_to_a_coordinator(client, coordinator, samples, route):
    client.force_login(coordinator)
    url = samples.url_for(route)
    before = db_state()

    answers = {}
    for method in ("get", "post"):
        for htmx in (False, True):
            headers = {"HX-Request": "true"} if htmx else {}
            response = getattr(client, method)(url, headers=headers)
            answers[method, htmx] = response.status_code

    # 405 where the method is wrong (checked first, and it tells nothing), 403 for
    # the method the endpoint serves: never a page, a redirect or a write.
    assert set(answers.values()) <= {403, 405}, answers
    assert 403 in answers.values(), answers
    assert db_state() == before


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


def test_it_shows_the_desk_to_a_student_leader(leader_client):
    response = leader_client.get(reverse("queueing:desk"))

    assert response.status_code == 200
    assert "ADD TO QUEUE" in response.text


def test_it_shows_the_desk_to_a_manager(client, manager):
    client.force_login(manager)

    response = client.get(reverse("queueing:desk"))

    assert response.status_code == 200


# --- no student data in caches ------------------------------------------------------


@pytest.mark.parametrize("route", DESK_ROUTES, ids=lambda r: r.label)
def test_it_sends_desk_pages_with_never_cache(leader, samples, route):
    url = samples.url_for(route)
    answered = 0
    for htmx in (False, True):
        for method in ("get", "post"):
            client = Client()
            client.force_login(leader)
            headers = {"HX-Request": "true"} if htmx else {}
            response = getattr(client, method)(url, headers=headers)
            if response.status_code == 405:
                continue
            answered += 1
            cache_control = response.get("Cache-Control", "")
            for directive in NEVER_CACHE:
                assert directive in cache_control, (method, htmx, response.status_code)

    assert answered >= 2


def test_it_sends_the_unchanged_poll_answer_with_never_cache(leader_client):
    response = leader_client.get(reverse("queueing:poll"), {"v": Board.current_version()})

    assert response.status_code == 204
    assert "no-store" in response["Cache-Control"]


def test_it_has_one_login_page_for_admin_too(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/"
