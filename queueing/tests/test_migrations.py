import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from queueing.models import Board, EnquiryType, Team

pytestmark = pytest.mark.django_db


def test_it_has_a_migration_for_every_model_change():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_it_seeds_the_two_teams_and_the_original_enquiry_types():
    assert list(Team.objects.values_list("name", flat=True)) == ["STUDYSmarter", "Librarian"]
    names = list(EnquiryType.objects.values_list("name", flat=True))
    assert names[0] == "Essay" and names[-1] == "Other" and len(names) == 13
    assert Board.objects.filter(pk=1).exists()


def test_it_seeds_the_roles_with_permissions():
    leader = Group.objects.get(name="Student leader")
    assert {p.codename for p in leader.permissions.all()} == {"use_desk"}
    manager = Group.objects.get(name="Manager")
    assert {"use_desk", "change_visit", "change_user", "change_team"} <= {
        p.codename for p in manager.permissions.all()
    }
    assert Group.objects.filter(name="Coordinator").exists()
