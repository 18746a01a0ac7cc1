import os

import pytest
from django.contrib.auth.models import Group
from django.core.cache import caches
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from accounts.tests.factories import UserFactory
from accounts.tests.helpers import pass_two_factor
from queueing.views import forget_rows_in_process

# smtp_inbox: a real SMTP server for the tests that send mail.
pytest_plugins = ["resq.tests.smtp"]

# Hypothesis' settings for every property and fuzz test. "ci", the default: the same
# examples on every run (a failure in CI is the failure on your machine), a few dozen
# per test. `HYPOTHESIS_PROFILE=explore` draws new ones, ten times as many. Neither has
# a deadline (a request's time is the machine's, not the input's) or keeps an example
# database in the checkout; fixtures are set up once per test, as the tests expect.
hypothesis_settings.register_profile(
    "ci",
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
hypothesis_settings.register_profile(
    "explore", hypothesis_settings.get_profile("ci"), max_examples=300, derandomize=False
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _empty_caches(request):
    # Each test database starts the board version again; boards cached by an earlier
    # test under the same version must not be served. Nor may rate limits and used
    # codes counted by an earlier test count in this one: those are in a table of the
    # test database, cleared only for tests that may use it.
    stores = [caches["board"]]
    if request.node.get_closest_marker("django_db") or "db" in request.fixturenames:
        request.getfixturevalue("db")
        stores.append(caches["default"])
    for store in stores:
        store.clear()
    forget_rows_in_process()
    yield
    for store in stores:
        store.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Real hashers are slow on purpose; tests need speed, not hash strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _user_with_roles(*roles: str, **kwargs):
    user = UserFactory(**kwargs)
    user.groups.set(Group.objects.filter(name__in=roles))
    return user


@pytest.fixture
def leader(db):
    return _user_with_roles("Student leader", username="leader", first_name="Lee")


@pytest.fixture
def other_leader(db):
    return _user_with_roles("Student leader", username="sam", first_name="Sam")


@pytest.fixture
def coordinator(db):
    return _user_with_roles("Coordinator", username="coordinator", first_name="Cora")


@pytest.fixture
def manager(db):
    return _user_with_roles("Manager", username="manager", first_name="Max", is_staff=True)


@pytest.fixture
def leader_client(client, leader):
    client.force_login(leader)
    return client


@pytest.fixture
def manager_client(client, manager):
    # A manager's browser as admin needs it: logged in, two-factor passed.
    client.force_login(manager)
    pass_two_factor(client, manager)
    return client


@pytest.fixture
def htmx_headers():
    return {"HX-Request": "true", "HX-Current-URL": "http://testserver/desk/"}
