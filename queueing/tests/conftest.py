import pytest

from queueing.models import Team


@pytest.fixture
def studysmarter(db):
    """The demo's STUDYSmarter team with two staff available."""
    team = Team.objects.get(slug="studysmarter")
    team.available_staff = 2
    team.save()
    return team
