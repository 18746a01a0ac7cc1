import secrets

import pytest
from django.db import connection

from resq.tests.processes import django_process

pytestmark = pytest.mark.django_db


def test_it_gives_postgresql_room_to_group_a_terms_visits():
    if connection.vendor != "postgresql":
        pytest.skip("work_mem is a PostgreSQL setting")
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone()[0] == "16MB"


def test_it_prepares_what_a_connection_runs_again_and_again():
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    from queueing.models import Board

    for _ in range(6):
        Board.current_version()
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('"queueing_board"."version"' in statement for statement in prepared)


def test_it_binds_on_the_client_with_prepared_statements_off():
    code = (
        "from django.conf import settings; print(sorted(settings.DATABASES['default']['OPTIONS']))"
    )
    url = "postgres://postgres@127.0.0.1:5432/resq"
    on = django_process(code, DATABASE_URL=url)
    off = django_process(code, DATABASE_URL=url, PG_PREPARED_STATEMENTS="off")
    assert on.stdout.split() == ["['options',", "'prepare_threshold',", "'server_side_binding']"]
    assert off.stdout.split() == ["['options']"]


def test_it_takes_an_empty_value_in_production_as_the_default():
    # .env.example lists these keys empty; copied as it is, production must still
    # redirect to HTTPS and send HSTS rather than crash or quietly turn them off.
    code = (
        "from django.conf import settings; "
        "print(settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS, "
        "settings.STORAGES['staticfiles']['BACKEND'].rsplit('.', 1)[-1])"
    )
    result = django_process(
        code,
        DEBUG="off",
        SECRET_KEY=secrets.token_urlsafe(50),
        SECURE_SSL_REDIRECT="",
        SECURE_HSTS_SECONDS="",
        STATIC_MANIFEST="",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "31536000", "CompressedManifestStaticFilesStorage"]


@pytest.mark.parametrize(
    "key",
    ["", "too-short", "x" * 60, "django-insecure-" + "k3y" * 20],
    ids=["empty", "short", "few characters", "django's placeholder"],
)
def test_it_refuses_to_start_in_production_with_a_weak_secret_key(key):
    result = django_process("print('started')", DEBUG="off", SECRET_KEY=key)
    assert result.returncode != 0
    assert "started" not in result.stdout
    assert "ImproperlyConfigured: SECRET_KEY" in result.stderr
    assert 'python -c "import secrets; print(secrets.token_urlsafe(50))"' in result.stderr


def test_it_starts_in_development_with_the_empty_key_env_example_lists():
    result = django_process(
        "from django.conf import settings; print(len(settings.SECRET_KEY) >= 50)",
        DEBUG="on",
        SECRET_KEY="",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"]
