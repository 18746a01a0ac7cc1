"""Who may open what: every URL pattern × every role, against one explicit table.

The walk reads the URLconf itself. A pattern without a row in EXPECTED fails the test
by name, so every new page is a decision somebody wrote down; a row without a pattern
fails too. docs/security.md ("Permissions matrix") is rendered from the same table, and
a test keeps the two equal: `RESQ_WRITE_DOCS=1 pytest resq/tests/test_permissions_matrix.py
-k docs` rewrites that section after a change here.

Each cell is what the role gets from one request (GET, or POST without a body):

- `login`: sent to the login page with `?next=` (an htmx request gets `HX-Redirect` to
  it instead of a login form to swap in). Inactive accounts count as signed out.
- `403`: signed in, without the permission. Nothing is written.
- `405`: the wrong method, refused before the permission check (it discloses nothing).
- `302 → name`: a redirect to that page (a desk action done, or nothing to do).
- a status code: that answer.
- `—`: not walked: admin's own forms, POSTed by staff, are tested with the admin.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import resolve, reverse

from accounts.tests.factories import UserFactory
from accounts.tests.helpers import pass_two_factor
from queueing.tests.factories import db_state
from resq.tests.routes import every_route
from resq.tests.routes import samples as samples  # a fixture

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "leader", "coordinator", "manager", "superuser", "inactive")
METHODS = ("GET", "POST")

LOGIN = "login"
NOT_WALKED = "—"
REFUSALS = {LOGIN, "403", "405"}


def row(
    anonymous: str, leader: str, coordinator: str, manager: str, superuser: str
) -> dict[str, str]:
    """One method's answers; an inactive account is treated as signed out."""
    return {
        "anonymous": anonymous,
        "leader": leader,
        "coordinator": coordinator,
        "manager": manager,
        "superuser": superuser,
        "inactive": anonymous,
    }


def same(outcome: str) -> dict[str, str]:
    return row(outcome, outcome, outcome, outcome, outcome)


def signed_in(outcome: str, anonymous: str = LOGIN) -> dict[str, str]:
    return row(anonymous, outcome, outcome, outcome, outcome)


TO_DESK = "302 → queueing:desk"
TO_REPORTS = "302 → reporting:dashboard"
TO_HOME = "302 → home"
TO_LOGIN = "302 → accounts:login"

# --- the desk: student leaders and managers ----------------------------------------------
DESK_PAGE = row(LOGIN, "200", "403", "200", "200")
DESK_ACTION = row(LOGIN, TO_DESK, "403", TO_DESK, TO_DESK)
# A POST without a body: the form comes back with its errors.
DESK_FORM = DESK_PAGE
POST_ONLY = signed_in("405")
GET_ONLY = signed_in("405")

# --- reports: coordinators and managers; exports: coordinators ---------------------------
REPORT_PAGE = row(LOGIN, "403", "200", "200", "200")
EXPORT_PAGE = row(LOGIN, "403", "200", "403", "200")

# --- admin: staff, each model as its permissions say ---------------------------------------
ADMIN_PAGE = row(LOGIN, "403", "403", "200", "200")
ADMIN_NO = row(LOGIN, "403", "403", "403", "403")
ADMIN_SUPER = row(LOGIN, "403", "403", "403", "200")
ADMIN_POST = row(LOGIN, "403", "403", NOT_WALKED, NOT_WALKED)


def admin_page(get: dict[str, str]) -> dict[str, dict[str, str]]:
    return {"GET": get, "POST": ADMIN_POST}


def admin_model(
    prefix: str,
    *,
    view: dict[str, str] = ADMIN_PAGE,
    add: dict[str, str] | None = None,
    change: dict[str, str] | None = None,
    delete: dict[str, str] | None = None,
    import_export: dict[str, str] | None = None,
) -> dict[str, dict[str, dict[str, str]]]:
    """The admin's pages for one model: list, add, change, delete, history, the bare
    object URL (a redirect to its change page), and CSV import and export if it has them.
    A page not given answers as the list does."""
    pages = {
        f"admin:{prefix}_changelist": admin_page(view),
        f"admin:{prefix}_add": admin_page(add or view),
        f"admin:{prefix}_change": admin_page(change or view),
        f"admin:{prefix}_delete": admin_page(delete or view),
        f"admin:{prefix}_history": admin_page(view),
        f"admin/{prefix.replace('_', '/', 1)}/<path:object_id>/": admin_page(
            row(LOGIN, "403", "403", "302", "302")
        ),
    }
    if import_export is not None:
        pages[f"admin:{prefix}_import"] = admin_page(import_export)
        pages[f"admin:{prefix}_export"] = admin_page(import_export)
        # The confirmation of an uploaded file: a POST from the import's preview page.
        pages[f"admin:{prefix}_process_import"] = admin_page(
            {**import_export, **{r: "405" for r, o in import_export.items() if o == "200"}}
        )
    return pages


TO_REAUTHENTICATE = "302 → account_reauthenticate"
TO_CODE = "302 → mfa_reauthenticate"
TO_ADMIN = "302 → admin:index"

#: Every URL pattern: its name (or its route, if unnamed) → method → role → answer.
EXPECTED: dict[str, dict[str, dict[str, str]]] = {
    # Each role starts where its work is; someone with no role, at their account.
    "home": {"GET": row(LOGIN, TO_DESK, TO_REPORTS, TO_DESK, TO_DESK), "POST": signed_in("405")},
    "healthz": {"GET": same("200"), "POST": same("405")},
    # The tab icon, for browsers that ask at the root: sent on to the static file.
    "favicon": {"GET": same("301"), "POST": same("405")},
    # --- sign-in (allauth): open to everyone, or to any signed-in user for their own account
    "accounts:overview": {"GET": signed_in("200"), "POST": signed_in("405")},
    "account_inactive": {"GET": same("200"), "POST": same("405")},
    "account_reauthenticate": {"GET": signed_in("200"), "POST": signed_in("200")},
    "account_change_password": {"GET": signed_in("200"), "POST": signed_in("200")},
    # Every account has a password: setting a first one is changing it.
    "account_set_password": {
        "GET": signed_in("302 → account_change_password"),
        "POST": signed_in("302 → account_change_password"),
    },
    "account_reset_password": {"GET": same("200"), "POST": same("200")},
    "account_reset_password_done": {"GET": same("200"), "POST": same("405")},
    "account_reset_password_from_key_done": {"GET": same("200"), "POST": same("405")},
    # The sample key is wrong: the page that says the link is no longer valid.
    "account_reset_password_from_key": {"GET": same("200"), "POST": same("200")},
    "mfa_index": {"GET": signed_in("200"), "POST": signed_in("405")},
    # The code step of a login in progress; nobody here has one under way.
    "mfa_authenticate": {
        "GET": signed_in(TO_HOME, anonymous=TO_LOGIN),
        "POST": signed_in(TO_HOME, anonymous=TO_LOGIN),
    },
    # Staff (who have an authenticator app) confirm a code; others confirm a password.
    "mfa_reauthenticate": {
        "GET": row(LOGIN, TO_REAUTHENTICATE, TO_REAUTHENTICATE, "200", "200"),
        "POST": row(LOGIN, TO_REAUTHENTICATE, TO_REAUTHENTICATE, "200", "200"),
    },
    # Changing a second factor asks for the password again first.
    "mfa_activate_totp": {
        "GET": signed_in(TO_REAUTHENTICATE),
        "POST": signed_in(TO_REAUTHENTICATE),
    },
    # Removing a second factor, or seeing or renewing recovery codes, asks those who
    # have one for a code from it, not the password. Nobody here has recovery codes yet.
    "mfa_deactivate_totp": {
        "GET": row(LOGIN, "404", "404", TO_CODE, TO_CODE),
        "POST": row(LOGIN, "404", "404", TO_CODE, TO_CODE),
    },
    "mfa_view_recovery_codes": {
        "GET": row(LOGIN, "404", "404", TO_CODE, TO_CODE),
        "POST": signed_in("405"),
    },
    "mfa_generate_recovery_codes": {
        "GET": row(LOGIN, TO_REAUTHENTICATE, TO_REAUTHENTICATE, TO_CODE, TO_CODE),
        "POST": row(LOGIN, TO_REAUTHENTICATE, TO_REAUTHENTICATE, TO_CODE, TO_CODE),
    },
    "mfa_download_recovery_codes": {
        "GET": row(LOGIN, "404", "404", TO_CODE, TO_CODE),
        "POST": row(LOGIN, "404", "404", TO_CODE, TO_CODE),
    },
    "usersessions_list": {"GET": signed_in("200"), "POST": signed_in("302 → usersessions_list")},
    # --- sign-in (ResQ's names)
    "accounts:login": {
        "GET": signed_in(TO_HOME, anonymous="200"),
        "POST": signed_in(TO_HOME, anonymous="200"),
    },
    # Logging out is a POST (a link could not log anyone out), open even to the signed out.
    "accounts:logout": {"GET": same("405"), "POST": same(TO_LOGIN)},
    # "Still there?" answered: activity for whoever is signed in, then back to the desk.
    "accounts:stay": {"GET": signed_in("405"), "POST": signed_in(TO_DESK)},
    "admin_login_redirect": {"GET": same(TO_LOGIN), "POST": same(TO_LOGIN)},
    # --- the desk
    "queueing:desk": {"GET": DESK_PAGE, "POST": GET_ONLY},
    "queueing:poll": {"GET": DESK_PAGE, "POST": GET_ONLY},
    "queueing:add": {"GET": POST_ONLY, "POST": DESK_FORM},
    "queueing:start": {"GET": POST_ONLY, "POST": DESK_ACTION},
    "queueing:finish": {"GET": POST_ONLY, "POST": DESK_ACTION},
    "queueing:undo_start": {"GET": POST_ONLY, "POST": DESK_ACTION},
    "queueing:undo_end": {"GET": POST_ONLY, "POST": DESK_ACTION},
    "queueing:remove": {"GET": DESK_PAGE, "POST": DESK_FORM},
    "queueing:edit": {"GET": DESK_PAGE, "POST": DESK_FORM},
    "queueing:staffing": {"GET": POST_ONLY, "POST": DESK_ACTION},
    "queueing:close": {"GET": DESK_PAGE, "POST": DESK_ACTION},
    "queueing:student_lookup": {"GET": POST_ONLY, "POST": DESK_FORM},
    # The student's page as a QR code; a POST without an address: no emails for them.
    "queueing:pass": {"GET": DESK_PAGE, "POST": DESK_ACTION},
    # Without a team chosen (the sample check-in has none), Accept says to choose one.
    "queueing:accept_checkin": {"GET": POST_ONLY, "POST": DESK_ACTION},
    # The leader's dismissal comes first; a check-in handled answers as one never made.
    "queueing:dismiss_checkin": {
        "GET": POST_ONLY,
        "POST": row(LOGIN, TO_DESK, "403", "404", "404"),
    },
    # --- the students' side: open to anyone holding the address's secret (the sample's)
    "students:display": {"GET": same("200"), "POST": same("405")},
    "students:display_poll": {"GET": same("200"), "POST": same("405")},
    "students:poster": {"GET": same("200"), "POST": same("405")},
    # A POST without the form's fields: the form again, with what is missing.
    "students:checkin": {"GET": same("200"), "POST": same("400")},
    "students:place": {"GET": same("200"), "POST": same("405")},
    "students:place_poll": {"GET": same("200"), "POST": same("405")},
    # The student leaves the queue, and is sent back to their page to see it.
    "students:leave": {"GET": same("405"), "POST": same("302")},
    # --- reports
    "reporting:dashboard": {"GET": REPORT_PAGE, "POST": GET_ONLY},
    "reporting:chart_csv": {"GET": REPORT_PAGE, "POST": GET_ONLY},
    "reporting:weekly": {"GET": REPORT_PAGE, "POST": GET_ONLY},
    "reporting:staffing": {"GET": REPORT_PAGE, "POST": GET_ONLY},
    "reporting:staffing_csv": {"GET": REPORT_PAGE, "POST": GET_ONLY},
    "reporting:data_dictionary": {"GET": REPORT_PAGE, "POST": GET_ONLY},
    "reporting:export": {"GET": EXPORT_PAGE, "POST": GET_ONLY},
    "reporting:export_csv": {"GET": EXPORT_PAGE, "POST": GET_ONLY},
    # --- admin
    "admin:index": admin_page(ADMIN_PAGE),
    "admin:app_list": admin_page(ADMIN_PAGE),
    "admin:password_change": admin_page(ADMIN_PAGE),
    "admin:password_change_done": admin_page(ADMIN_PAGE),
    "admin:jsi18n": admin_page(ADMIN_PAGE),
    # Without its query (which field, which term) the search refuses.
    "admin:autocomplete": admin_page(ADMIN_NO),
    # No ResQ model has a public page to view on site.
    "admin:view_on_site": admin_page(row(LOGIN, "403", "403", "404", "404")),
    # Logging out is a POST (the header's button); a GET answers 405. The admin sends
    # everyone else to its index, which refuses them.
    "admin:logout": {
        "GET": row(LOGIN, TO_ADMIN, TO_ADMIN, "405", "405"),
        "POST": row(LOGIN, TO_ADMIN, TO_ADMIN, NOT_WALKED, NOT_WALKED),
    },
    # Unknown admin addresses: 404 for staff, after the same checks as any admin page.
    "admin/(?P<url>.*)$": admin_page(row(LOGIN, "403", "403", "404", "404")),
    # Users: managers keep accounts; only a superuser may grant superuser powers.
    **admin_model("accounts_user"),
    "admin:auth_user_password_change": admin_page(ADMIN_PAGE),
    # Roles are seeded by migrations: managers read them, superusers change them.
    **admin_model("auth_group", add=ADMIN_SUPER, delete=ADMIN_SUPER),
    # Visits start on the desk, never in admin; managers correct and import them.
    **admin_model("queueing_visit", add=ADMIN_NO, import_export=ADMIN_PAGE),
    # Names and numbers leave only with queueing.export_visits, which no manager holds
    # by role (coordinators do, but are not admin staff): a superuser has every permission.
    "admin:queueing_visit_export": admin_page(ADMIN_SUPER),
    **admin_model("queueing_team", import_export=ADMIN_PAGE),
    **admin_model("queueing_enquirytype", import_export=ADMIN_PAGE),
    # Written by the desk's staffing counters: read-only for everyone.
    **admin_model("queueing_staffingchange", add=ADMIN_NO, delete=ADMIN_NO),
    # The room's displays: managers name, revoke and delete them.
    **admin_model("queueing_display"),
    # Check-ins come from phones and are handled on the desk: read-only for managers.
    **admin_model("queueing_checkin", add=ADMIN_NO, delete=ADMIN_SUPER),
    **admin_model("reporting_term"),
    # Written by the daily report command: read-only for everyone.
    **admin_model("reporting_dailyreport", add=ADMIN_NO, delete=ADMIN_NO),
    # The admin's own log of changes (queueing/admin_audit.py): read-only for everyone.
    **admin_model("admin_logentry", add=ADMIN_NO, delete=ADMIN_NO),
    # Sign-in records: addresses, authenticator apps and sessions are a superuser's.
    **admin_model("account_emailaddress", view=ADMIN_SUPER),
    **admin_model("mfa_authenticator", view=ADMIN_SUPER),
    **admin_model("usersessions_usersession", view=ADMIN_SUPER, add=ADMIN_NO),
    # Locked-out logins: managers read them and delete one to unlock an account.
    **admin_model("axes_accessattempt", add=ADMIN_NO),
    **admin_model("axes_accesslog", view=ADMIN_SUPER, add=ADMIN_NO),
    **admin_model("axes_accessfailurelog", view=ADMIN_SUPER, add=ADMIN_NO),
}

#: Names that exist in the URLconf but that no request can reach, and why.
SHADOWED = {
    "admin:login": "admin_login_redirect serves /admin/login/ first: one login page",
    "account_login": "accounts:login serves /accounts/login/ first; allauth reverses this name",
}

ROUTES = [r for r in every_route() if r.label not in SHADOWED]


@pytest.fixture
def users(leader, coordinator, manager) -> dict[str, object]:
    inactive = UserFactory(username="gone", is_staff=True, is_active=False)
    inactive.groups.set(Group.objects.filter(name="Manager"))
    return {
        "anonymous": None,
        "leader": leader,
        "coordinator": coordinator,
        "manager": manager,
        "superuser": UserFactory(username="root", is_staff=True, is_superuser=True),
        "inactive": inactive,
    }


def client_for(user) -> Client:
    """A browser signed in as `user`; staff have passed two-factor, as admin requires."""
    client = Client()
    if user is not None:
        client.force_login(user)
        if user.is_staff and user.is_active:
            pass_two_factor(client, user)
    return client


def login_url(next_url: str) -> str:
    return f"{resolve_url(settings.LOGIN_URL)}?next={quote(next_url, safe='/')}"


def check(client: Client, method: str, url: str, outcome: str, *, admin: bool) -> str | None:
    """What is wrong with the answer, or None if it is the expected one."""
    response = getattr(client, method.lower())(url)
    status, location = response.status_code, response.get("Location", "")
    if "no-store" not in response.get("Cache-Control", ""):
        return f"no Cache-Control: no-store ({response.get('Cache-Control')!r})"
    if outcome == LOGIN:
        if status != 302:
            return f"{status}, not a redirect to the login page"
        if location != login_url(url):
            # The admin sends strangers to its own login URL, one hop from ours.
            hop = client.get(location)
            if not admin or hop.get("Location") != login_url(url):
                return f"302 to {location}, not to the login page"
        if not admin:
            htmx = getattr(client, method.lower())(url, headers={"HX-Request": "true"})
            if htmx.status_code != 200 or htmx.get("HX-Redirect") != login_url(url):
                return f"htmx: {htmx.status_code} {htmx.get('HX-Redirect')!r}, not HX-Redirect"
            if htmx.content or "Location" in htmx:
                return "htmx: a body to swap in, or a redirect"
        return None
    if outcome.startswith("302 → "):
        target = reverse(outcome.removeprefix("302 → "))
        if status != 302 or urlsplit(location).path != target:
            return f"{status} {location!r}, not a redirect to {target}"
        return None
    return None if str(status) == outcome else f"{status}, not {outcome}"


# --- the table is complete -------------------------------------------------------------------


def test_every_url_pattern_has_a_row():
    missing = [route.label for route in ROUTES if route.label not in EXPECTED]

    assert missing == [], (
        f"No row in EXPECTED for {missing}: decide who may open each of these pages, "
        "add the rows, and rewrite the docs table."
    )


def test_every_row_has_a_url_pattern():
    labels = {route.label for route in ROUTES}

    assert sorted(set(EXPECTED) - labels) == []
    assert set(SHADOWED) <= {r.label for r in every_route()}


def test_every_row_answers_every_role_and_method():
    for label, methods in EXPECTED.items():
        assert set(methods) == set(METHODS), label
        for method, answers in methods.items():
            assert set(answers) == set(ROLES), (label, method)


def test_shadowed_names_cannot_be_reached():
    for name in SHADOWED:
        assert resolve(reverse(name)).view_name != name


# --- the matrix ------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.label)
def test_it_answers_each_role_as_the_table_says(samples, users, route):
    assert route.label in EXPECTED, f"No row in EXPECTED for {route.label}."
    url = samples.url_for(route)
    wrong = {}
    for role in ROLES:
        # GET first: the POST (a logout, say) may end the session.
        client = client_for(users[role])
        for method in METHODS:
            outcome = EXPECTED[route.label][method][role]
            if outcome == NOT_WALKED:
                continue
            before = db_state() if outcome in REFUSALS else None
            problem = check(client, method, url, outcome, admin=route.is_admin)
            if problem:
                wrong[role, method] = f"expected {outcome}: {problem}"
            elif before is not None and db_state() != before:
                wrong[role, method] = f"{outcome}, but the database changed"

    assert wrong == {}, url


def test_a_coordinator_is_refused_the_desk_plain_or_htmx(samples, coordinator):
    # The desk's cells again, each also asked by htmx, and each POST with a body a desk
    # action would read: a coordinator gets the table's 403 or 405 and writes nothing.
    client = client_for(coordinator)
    before = db_state()
    wrong = {}
    for route in ROUTES:
        if not route.label.startswith("queueing:"):
            continue
        url = samples.url_for(route)
        for method in METHODS:
            data = {"delta": "1", "outcome": "no_show"} if method == "POST" else {}
            for headers in ({}, {"HX-Request": "true"}):
                response = getattr(client, method.lower())(url, data, headers=headers)
                if str(response.status_code) != EXPECTED[route.label][method]["coordinator"]:
                    wrong[route.label, method, bool(headers)] = response.status_code

    assert wrong == {}
    assert db_state() == before


# --- the docs ----------------------------------------------------------------------------

DOCS = Path(settings.BASE_DIR) / "docs" / "security.md"
START = "<!-- permissions-matrix:start (rendered from resq/tests/test_permissions_matrix.py) -->"
END = "<!-- permissions-matrix:end -->"


def render_matrix() -> str:
    paths = {r.label: "/" + r.route.replace("^", "").replace("$", "") for r in ROUTES}
    head = ["Page", "Path", "Method", "Anonymous", "Student leader", "Coordinator", "Manager",
            "Superuser", "Inactive"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, methods in EXPECTED.items():
        path = paths[label].replace("|", "\\|")
        for method, answers in methods.items():
            cells = [f"`{label}`", f"`{path}`", method, *(answers[role] for role in ROLES)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([START, *lines, END])


def test_the_docs_show_the_same_table():
    text = DOCS.read_text()
    table = render_matrix()
    if os.environ.get("RESQ_WRITE_DOCS"):
        before, _, rest = text.partition(START)
        _, _, after = rest.partition(END)
        DOCS.write_text(before + table + after)
        text = DOCS.read_text()

    assert START in text and END in text, f"Put the markers in {DOCS.name}."
    assert table in text, (
        f"{DOCS.name} is out of date: RESQ_WRITE_DOCS=1 pytest {__file__} -k docs rewrites it."
    )
