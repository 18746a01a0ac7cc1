import pytest
from django.utils import timezone

from queueing.models import Team


@pytest.fixture
def studysmarter(db):
    """The demo's STUDYSmarter team with two staff available."""
    team = Team.objects.get(slug="studysmarter")
    team.available_staff = 2
    team.save()
    return team


@pytest.fixture
def frozen(monkeypatch):
    """Stop the clock, so that boards rendered a moment apart can be compared."""
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    return now
