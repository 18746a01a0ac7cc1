import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Permission
from django.test.utils import override_settings

from accounts.tests.factories import UserFactory
from resq import settings as project_settings

pytestmark = pytest.mark.django_db


def test_it_grants_a_roles_permissions(leader):
    assert leader.has_perm("queueing.use_desk")
    assert not leader.has_perm("queueing.change_visit")


def test_it_grants_a_users_own_permissions_too(leader):
    leader.user_permissions.add(Permission.objects.get(codename="view_staffingchange"))
    leader = type(leader).objects.get(pk=leader.pk)
    assert leader.has_perm("queueing.view_staffingchange")
    assert leader.has_perm("queueing.use_desk")


def test_it_grants_nothing_to_an_inactive_user(leader):
    leader.is_active = False
    leader.save()
    leader = type(leader).objects.get(pk=leader.pk)
    assert not leader.has_perm("queueing.use_desk")


def test_it_grants_everything_to_a_superuser():
    admin = UserFactory(is_superuser=True)
    assert admin.has_perm("queueing.use_desk")
    assert admin.has_perm("queueing.delete_visit")


def test_it_reads_all_permissions_in_one_query(leader, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert leader.has_perm("queueing.use_desk")
        assert not leader.has_perm("queueing.delete_visit")


def test_it_hashes_new_passwords_with_argon2():
    # The suite swaps in a fast hasher; the project's own setting must be Argon2.
    with override_settings(PASSWORD_HASHERS=project_settings.PASSWORD_HASHERS):
        assert make_password("correct horse battery staple").startswith("argon2$")
