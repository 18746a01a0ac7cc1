import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from accounts.tests.helpers import pass_two_factor

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    # A superuser's browser as admin needs it: logged in, two-factor passed.
    admin = UserFactory(username="admin", is_superuser=True, is_staff=True)
    client.force_login(admin)
    pass_two_factor(client, admin)
    return client


def change_data(user, **changes) -> dict:
    """The user change form as a manager's browser submits it, with changes."""
    joined = timezone.localtime(user.date_joined)
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "groups": [group.pk for group in user.groups.all()],
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("users", [3, 30])
def test_it_lists_users_with_their_roles_in_a_fixed_number_of_queries(
    manager_client, leader, django_assert_max_num_queries, users
):
    roles = list(Group.objects.all())
    for n in range(users):
        UserFactory().groups.set(roles[: n % 3])
    # Session, user, the two-factor check, permissions, count, page, roles: however
    # many users there are.
    with django_assert_max_num_queries(9):
        response = manager_client.get(reverse("admin:accounts_user_changelist"))
    assert response.status_code == 200
    rows = {user.username: user for user in response.context["cl"].result_list}
    model_admin = response.context["cl"].model_admin
    assert model_admin.roles(rows["leader"]) == "Student leader"
    assert model_admin.roles(rows["manager"]) == "Manager"
    assert "Roles" in response.text


def test_it_filters_users_by_role(manager_client, leader, other_leader, coordinator):
    leaders = Group.objects.get(name="Student leader")
    response = manager_client.get(
        reverse("admin:accounts_user_changelist"), {"groups__id__exact": leaders.pk}
    )
    assert response.status_code == 200
    assert {u.username for u in response.context["cl"].result_list} == {"leader", "sam"}


def test_it_lets_a_manager_change_a_users_roles_and_logs_who_changed_what(
    manager_client, manager, leader
):
    managers = Group.objects.get(name="Manager")
    url = reverse("admin:accounts_user_change", args=[leader.pk])
    response = manager_client.post(url, change_data(leader, groups=[managers.pk], is_staff="on"))
    assert response.status_code == 302
    assert list(leader.groups.values_list("name", flat=True)) == ["Manager"]
    messages = [
        entry.get_change_message()
        for entry in LogEntry.objects.filter(user=manager, object_id=str(leader.pk))
    ]
    assert "Roles: added Manager; removed Student leader. Staff status: given." in messages


def test_it_does_not_let_a_manager_change_their_own_roles(manager_client, manager):
    coordinators = Group.objects.get(name="Coordinator")
    url = reverse("admin:accounts_user_change", args=[manager.pk])
    data = change_data(manager, groups=[g.pk for g in manager.groups.all()] + [coordinators.pk])
    response = manager_client.post(url, {**data, "first_name": "Maxine"})
    assert response.status_code == 302
    manager.refresh_from_db()
    assert manager.first_name == "Maxine"
    assert list(manager.groups.values_list("name", flat=True)) == ["Manager"]
    assert not manager.has_perm("queueing.export_visits")
    page = manager_client.get(url)
    assert page.status_code == 200
    assert 'name="groups"' not in page.text
    assert "Manager" in page.text


def test_it_does_not_let_a_superuser_change_their_own_powers(admin_client):
    admin = UserFactory(username="admin")
    url = reverse("admin:accounts_user_change", args=[admin.pk])
    response = admin_client.post(url, change_data(admin))  # no is_superuser, no is_staff
    assert response.status_code == 302
    admin.refresh_from_db()
    assert admin.is_superuser
    assert admin.is_staff


def test_it_leaves_giving_a_role_beyond_a_managers_own_to_a_superuser(manager_client, leader):
    # Coordinators export students' names and numbers, which managers cannot: a
    # manager who could hand that out could hand it to an account of their own.
    coordinators = Group.objects.get(name="Coordinator")
    url = reverse("admin:accounts_user_change", args=[leader.pk])
    response = manager_client.post(url, change_data(leader, groups=[coordinators.pk]))
    assert response.status_code == 200
    assert "Only a superuser can give the role Coordinator" in response.text
    assert list(leader.groups.values_list("name", flat=True)) == ["Student leader"]
    # Taking a role away is allowed.
    assert manager_client.post(url, change_data(leader, groups=[])).status_code == 302
    assert not leader.groups.exists()


def test_it_keeps_superuser_powers_out_of_a_managers_reach(manager_client, leader):
    url = reverse("admin:accounts_user_change", args=[leader.pk])
    page = manager_client.get(url)
    assert page.status_code == 200
    assert 'name="is_superuser"' not in page.text
    assert 'name="user_permissions"' not in page.text
    permission = Permission.objects.get(codename="delete_visit")
    data = change_data(leader, is_superuser="on", user_permissions=[permission.pk])
    response = manager_client.post(url, data)
    assert response.status_code == 302
    leader.refresh_from_db()
    assert not leader.is_superuser
    assert not leader.user_permissions.exists()


@pytest.mark.parametrize(
    "powers",
    [
        {"is_superuser": True, "is_staff": True},
        {"role": "Coordinator"},  # exports names and numbers, which a manager cannot
        {"role": "Coordinator", "is_active": False},  # switched back on, it could again
    ],
    ids=["superuser", "coordinator", "inactive coordinator"],
)
def test_it_does_not_let_a_manager_take_over_an_account_that_can_do_more(manager_client, powers):
    role = powers.pop("role", None)
    boss = UserFactory(username="boss", **powers)
    if role:
        boss.groups.set(Group.objects.filter(name=role))
    url = reverse("admin:accounts_user_change", args=[boss.pk])
    assert manager_client.get(url).status_code == 200
    response = manager_client.post(url, change_data(boss, first_name="Mallory"))
    assert response.status_code == 403
    password_url = reverse("admin:auth_user_password_change", args=[boss.pk])
    response = manager_client.post(
        password_url, {"password1": "a new passphrase 42", "password2": "a new passphrase 42"}
    )
    assert response.status_code == 403
    delete_url = reverse("admin:accounts_user_delete", args=[boss.pk])
    assert manager_client.post(delete_url, {"post": "yes"}).status_code == 403
    boss.refresh_from_db()
    assert boss.first_name != "Mallory"
    assert boss.check_password("correct horse battery staple")


def test_it_lets_a_superuser_grant_superuser_powers(admin_client, leader):
    url = reverse("admin:accounts_user_change", args=[leader.pk])
    assert 'name="is_superuser"' in admin_client.get(url).text
    coordinators = Group.objects.get(name="Coordinator")
    data = change_data(leader, is_superuser="on", is_staff="on", groups=[coordinators.pk])
    response = admin_client.post(url, data)
    assert response.status_code == 302
    leader.refresh_from_db()
    assert leader.is_superuser
    assert list(leader.groups.values_list("name", flat=True)) == ["Coordinator"]


def test_it_refuses_admin_to_a_student_leader(client, leader):
    # Not the admin's redirect to its login page: ours would send a logged-in user
    # straight back, round and round.
    client.force_login(leader)
    response = client.get(reverse("admin:accounts_user_changelist"))
    assert response.status_code == 403
