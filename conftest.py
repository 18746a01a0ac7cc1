import pytest
from django.contrib.auth.models import Group
from django.core.cache import caches

from accounts.tests.factories import UserFactory
from accounts.tests.helpers import pass_two_factor


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
