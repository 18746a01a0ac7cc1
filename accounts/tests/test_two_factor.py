"""Two-factor authentication: staff need it for admin; logging in with it takes a code
from an authenticator app (or a recovery code, once); the desk never asks for it."""

from io import StringIO
from urllib.parse import quote

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.contrib.admin.models import LogEntry
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.sessions import TWO_FACTOR_USER
from accounts.tests.factories import UserFactory
from accounts.tests.helpers import (
    PASSWORD,
    give_authenticator_app,
    log_in,
    pass_two_factor,
    totp_code,
)

pytestmark = pytest.mark.django_db

ADMIN = "/admin/"


@pytest.fixture(autouse=True)
def _one_code_either_side(settings):
    # A code may be used once per period; tests that need two codes in a row take
    # the next period's, which a tolerance of one period accepts (as a slow phone).
    settings.MFA_TOTP_TOLERANCE = 1


@pytest.fixture
def manager_app(manager) -> str:
    """The manager's authenticator app, already set up; its secret."""
    return give_authenticator_app(manager)


def is_logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# --- the admin asks -------------------------------------------------------------------------


def test_it_sends_staff_without_an_app_to_set_one_up(client, manager):
    client.force_login(manager)

    response = client.get(ADMIN)
    page = client.get(response["Location"], follow=True)

    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    assert "Admin needs two-factor authentication." in page.text


def test_it_sends_staff_without_an_app_away_from_every_admin_page(client, manager):
    client.force_login(manager)

    for url in (ADMIN, reverse("admin:accounts_user_changelist"), "/admin/no-such-page/"):
        response = client.post(url)
        assert response.status_code == 302, url
        assert response["Location"] == reverse("mfa_activate_totp"), url


def test_it_asks_for_a_code_in_a_browser_that_has_not_given_one(client, manager, manager_app):
    client.force_login(manager)

    response = client.get(reverse("admin:accounts_user_changelist"))

    assert response.status_code == 302
    assert response["Location"] == (
        f"{reverse('mfa_reauthenticate')}?next=%2Fadmin%2Faccounts%2Fuser%2F"
    )
    confirmed = client.post(response["Location"], {"code": totp_code(manager_app)})
    assert confirmed.status_code == 302
    assert confirmed["Location"] == "/admin/accounts/user/"
    assert client.get(confirmed["Location"]).status_code == 200


def test_it_does_not_accept_the_password_instead_of_the_code(client, manager, manager_app):
    client.force_login(manager)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})

    assert client.get(ADMIN).status_code == 302


def test_it_lets_a_manager_who_passed_it_in(client, manager):
    client.force_login(manager)
    pass_two_factor(client, manager)

    assert client.get(ADMIN).status_code == 200


def test_it_never_asks_a_student_leader_or_coordinator(client, leader, coordinator):
    for user in (leader, coordinator):
        browser = Client()
        response = log_in(browser, user.username)
        assert response.status_code == 302
        assert response["Location"] == reverse("home")
        assert is_logged_in(browser)


def test_it_does_not_ask_staff_outside_admin(client, manager):
    assert log_in(client, "manager").status_code == 302
    assert client.get(reverse("queueing:desk")).status_code == 200


# --- setting up an app ------------------------------------------------------------------


def test_it_sets_up_an_app_and_then_opens_admin(
    client, manager, django_capture_on_commit_callbacks
):
    log_in(client, "manager", next=ADMIN)
    to_setup = client.get(ADMIN)
    # Changing how someone logs in asks for their password again first.
    confirm = client.get(to_setup["Location"])
    assert confirm["Location"].startswith(reverse("account_reauthenticate"))
    setup = client.post(confirm["Location"], {"password": PASSWORD}, follow=True)
    assert "Set up an authenticator app" in setup.text
    secret = setup.context["form"].secret
    assert setup.context["totp_url"].endswith("&issuer=ResQ")

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})

    assert done.status_code == 302
    assert done["Location"] == reverse("mfa_view_recovery_codes")
    codes = client.get(done["Location"])
    assert "Continue to Admin" in codes.text
    assert len(codes.context["unused_codes"]) == 10
    assert Authenticator.objects.filter(user=manager, type=Authenticator.Type.TOTP).exists()
    # Typing the app's code to set it up counts as passing it.
    assert client.session[TWO_FACTOR_USER] == manager.pk
    assert LogEntry.objects.get(
        user=manager, change_message="Set up two-factor authentication: authenticator app."
    )
    assert client.get(ADMIN).status_code == 200


def test_it_refuses_a_wrong_code_when_setting_up(client, manager):
    log_in(client, "manager")
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})

    response = client.post(reverse("mfa_activate_totp"), {"code": "000000"})

    assert response.status_code == 200
    assert "Incorrect code." in response.text
    assert not Authenticator.objects.filter(user=manager).exists()


# --- logging in with it ----------------------------------------------------------------


def test_it_logs_in_only_after_the_code(client, manager, manager_app):
    response = log_in(client, "manager", next=ADMIN)

    # Password right, but not logged in yet: nothing is open but the code step.
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert not is_logged_in(client)
    assert client.get(reverse("queueing:desk")).status_code == 302
    assert client.get(ADMIN).status_code == 302
    assert client.get(reverse("accounts:login"))["Location"] == reverse("mfa_authenticate")
    page = client.get(reverse("mfa_authenticate"))
    assert "Enter your code" in page.text

    done = client.post(reverse("mfa_authenticate"), {"code": totp_code(manager_app)})

    assert done.status_code == 302
    assert done["Location"] == ADMIN
    assert is_logged_in(client)
    # A logged-in user with an app has passed it: admin opens without asking again.
    assert client.get(ADMIN).status_code == 200


def test_it_refuses_a_wrong_code_at_login(client, manager, manager_app):
    log_in(client, "manager")

    response = client.post(reverse("mfa_authenticate"), {"code": "123456"})

    assert response.status_code == 200
    assert "Incorrect code." in response.text
    assert not is_logged_in(client)


def test_it_refuses_a_code_used_once_already(client, manager, manager_app):
    code = totp_code(manager_app)
    log_in(client, "manager")
    client.post(reverse("mfa_authenticate"), {"code": code})
    client.post(reverse("accounts:logout"))

    log_in(client, "manager")
    response = client.post(reverse("mfa_authenticate"), {"code": code})

    assert response.status_code == 200
    assert not is_logged_in(client)


def test_it_refuses_a_code_another_worker_accepted(client, manager, manager_app):
    code = totp_code(manager_app)
    log_in(client, "manager")
    client.post(reverse("mfa_authenticate"), {"code": code})
    client.post(reverse("accounts:logout"))
    # The next login reaches another worker: same database and shared store, none of
    # this process's memory.
    for local in caches.all():
        if isinstance(local, LocMemCache):
            local.clear()

    log_in(client, "manager")
    response = client.post(reverse("mfa_authenticate"), {"code": code})

    assert response.status_code == 200
    assert not is_logged_in(client)


def test_it_accepts_each_recovery_code_once(manager, manager_app):
    codes = RecoveryCodes.activate(manager).generate_codes()

    first = Client()
    log_in(first, "manager")
    first_code = first.post(reverse("mfa_authenticate"), {"code": codes[0]})
    again = Client()
    log_in(again, "manager")
    reused = again.post(reverse("mfa_authenticate"), {"code": codes[0]})
    other = again.post(reverse("mfa_authenticate"), {"code": codes[1]})

    assert first_code.status_code == 302
    assert is_logged_in(first)
    assert reused.status_code == 200
    assert other.status_code == 302
    assert is_logged_in(again)
    assert first.get(ADMIN).status_code == 200


def test_it_can_abandon_a_login_waiting_for_its_code(client, manager, manager_app):
    log_in(client, "manager")

    cancelled = client.post(reverse("accounts:logout"))
    page = client.get(reverse("accounts:login"))

    # The next person at a shared computer gets the login form, not this code prompt.
    assert cancelled.status_code == 302
    assert page.status_code == 200
    assert "Log in to ResQ" in page.text


def test_it_throttles_wrong_codes(client, manager, manager_app):
    log_in(client, "manager")
    for _ in range(20):
        client.post(reverse("mfa_authenticate"), {"code": "000000"})

    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(manager_app)})

    assert "Too many failed login attempts" in response.text
    assert not is_logged_in(client)


# --- a lost phone -------------------------------------------------------------------------


def test_it_lets_a_superuser_remove_the_app_of_someone_who_lost_their_phone(manager, manager_app):
    boss = UserFactory(username="boss", is_superuser=True, is_staff=True)
    admin = Client()
    admin.force_login(boss)
    pass_two_factor(admin, boss)
    lost = Authenticator.objects.get(user=manager, type=Authenticator.Type.TOTP)

    response = admin.post(
        reverse("admin:mfa_authenticator_delete", args=[lost.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    browser = Client()
    assert log_in(browser, "manager")["Location"] == reverse("home")
    assert browser.get(ADMIN)["Location"] == reverse("mfa_activate_totp")


def test_it_does_not_let_a_manager_remove_anyones_app(manager_client, leader):
    secret_holder = give_authenticator_app(leader)
    assert secret_holder
    app = Authenticator.objects.get(user=leader)

    response = manager_client.post(
        reverse("admin:mfa_authenticator_delete", args=[app.pk]), {"post": "yes"}
    )

    assert response.status_code == 403
    assert Authenticator.objects.filter(pk=app.pk).exists()


def test_it_removes_an_app_from_the_command_line(manager, manager_app):
    RecoveryCodes.activate(manager)
    out = StringIO()

    call_command("remove_two_factor", "manager", stdout=out)

    assert not Authenticator.objects.filter(user=manager).exists()
    assert "manager" in out.getvalue()
    assert log_in(Client(), "manager")["Location"] == reverse("home")


# --- the demo ----------------------------------------------------------------------------


def test_the_demo_user_logs_in_with_a_password_and_is_asked_for_an_app_at_admin(client):
    out = StringIO()
    # Tests run with DEBUG off, as production does.
    call_command(
        "demo_data", "--weeks", "0", "--today", "0", "--allow-public-demo-logins", stdout=out
    )

    response = log_in(client, "demo", "demo")

    assert "set up an authenticator app" in out.getvalue()
    assert response["Location"] == reverse("home")
    assert client.get(ADMIN)["Location"] == reverse("mfa_activate_totp")


# --- changing it needs it -----------------------------------------------------------------


def test_it_does_not_let_the_password_alone_replace_the_app(manager):
    # A browser that logged in before the app was set up: the password is all it has.
    browser = Client()
    log_in(browser, "manager")
    give_authenticator_app(manager)
    browser.post(reverse("account_reauthenticate"), {"password": PASSWORD})

    response = browser.post(reverse("mfa_deactivate_totp"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))
    assert Authenticator.objects.filter(user=manager, type=Authenticator.Type.TOTP).exists()
    assert browser.get("/admin/queueing/visit/").status_code == 302


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("post", "mfa_deactivate_totp"),
        ("get", "mfa_view_recovery_codes"),
        ("get", "mfa_download_recovery_codes"),
        ("post", "mfa_generate_recovery_codes"),
    ],
)
def test_it_asks_for_a_code_not_the_password_before_changing_it(
    client, manager, manager_app, method, name
):
    # Recovery codes are a second factor too: seeing or renewing them is changing it.
    RecoveryCodes.activate(manager)
    codes = Authenticator.objects.get(user=manager, type=Authenticator.Type.RECOVERY_CODES)
    client.force_login(manager)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})

    response = getattr(client, method)(reverse(name))

    assert response.status_code == 302
    next_url = quote(reverse(name), safe="")
    assert response["Location"] == f"{reverse('mfa_reauthenticate')}?next={next_url}"
    assert Authenticator.objects.get(pk=codes.pk).data == codes.data


def test_it_removes_the_app_after_a_code_logs_out_other_browsers_and_tells_the_user(
    client, manager, mailoutbox
):
    manager.email = "max@example.edu"
    manager.save()
    elsewhere = Client()
    log_in(elsewhere, "manager")
    secret = give_authenticator_app(manager)
    client.force_login(manager)
    client.post(reverse("mfa_reauthenticate"), {"code": totp_code(secret)})

    response = client.post(reverse("mfa_deactivate_totp"))

    assert response.status_code == 302
    assert not Authenticator.objects.filter(user=manager).exists()
    assert is_logged_in(client)
    assert elsewhere.get(reverse("queueing:desk")).status_code == 302
    entry = LogEntry.objects.get(object_id=str(manager.pk))
    assert entry.user == manager
    assert entry.get_change_message() == "Removed two-factor authentication: authenticator app."
    assert [message.to for message in mailoutbox] == [["max@example.edu"]]
