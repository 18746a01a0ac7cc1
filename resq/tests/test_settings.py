import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_it_gives_postgresql_room_to_group_a_terms_visits():
    if connection.vendor != "postgresql":
        pytest.skip("work_mem is a PostgreSQL setting")
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone()[0] == "16MB"
