from datetime import date

import pytest
from django.core.management import call_command

from reporting.models import Term

pytestmark = pytest.mark.django_db


def test_it_creates_the_demo_terms_once():
    call_command("demo_terms", verbosity=0)
    call_command("demo_terms", verbosity=0)
    assert Term.objects.count() == 3
    semester = Term.for_date(date(2026, 8, 3))
    assert semester.name == "Semester 2 2026"
    assert semester.week_of(date(2026, 10, 5)) == 10  # after the study break
