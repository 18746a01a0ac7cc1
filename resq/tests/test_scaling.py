"""Several app containers as one: the caches and the sessions they share through Redis.

These run against a real Redis (TEST_REDIS_URL, default 127.0.0.1:6379 database 15) and
skip when there is none. Each test keeps its keys under a prefix of its own and deletes
them afterwards; nothing here empties a Redis database. A second container is a second
process started with the same settings from the environment, as compose would start it.
"""

import json
import os
import subprocess
import uuid

import pytest
import redis
from django.conf import settings
from django.contrib.sessions.backends.cached_db import KEY_PREFIX as CACHED_DB_PREFIX
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.module_loading import import_string

from queueing.models import Board
from queueing.tests.factories import VisitFactory
from resq.tests.processes import django_process

pytestmark = pytest.mark.django_db

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PASSWORD = "correct horse battery staple"
# Settings read from the environment by these tests; a container is started with only
# what each test gives it.
SCALING_KEYS = ("REDIS_URL", "CACHE_KEY_PREFIX", "SESSION_ENGINE")
# The desk's board cache, in code run by another container.
BOARDS = "from django.core.cache import caches\nboards = caches['board']\n"


@pytest.fixture(scope="module")
def redis_client():
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(
            f"Redis is not reachable at {TEST_REDIS_URL} ({exc}); start one or set TEST_REDIS_URL"
        )
    yield client
    client.close()


@pytest.fixture
def shared_cache(settings, redis_client, monkeypatch):
    """Point this process's caches at Redis, as REDIS_URL would, under a fresh prefix."""
    prefix = f"resq-test-{uuid.uuid4().hex[:12]}"

    def refuse_to_flush(self):
        raise AssertionError("cache.clear() empties the whole Redis database")

    monkeypatch.setattr(RedisCache, "clear", refuse_to_flush)
    settings.CACHES = redis_caches(TEST_REDIS_URL, prefix)
    yield prefix
    for key in redis_client.scan_iter(match=f"{prefix}:*"):
        redis_client.delete(key)


@pytest.fixture
def cached_db_sessions(settings, shared_cache):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    return shared_cache


def redis_caches(url: str, prefix: str = "resq") -> dict:
    redis = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": prefix,
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    return {"default": redis, "board": redis}


def another_container(code: str, **env: str) -> subprocess.CompletedProcess:
    """Code run in a new process whose settings come from these environment variables
    only (of the keys under test)."""
    return django_process(code, unset=SCALING_KEYS, empty=SCALING_KEYS, **env)


def log_in(leader) -> Client:
    browser = Client()
    response = browser.post(
        reverse("accounts:login"), {"username": leader.username, "password": PASSWORD}
    )
    assert response.status_code == 302
    return browser


def visit_queries(queries: CaptureQueriesContext) -> list[str]:
    """The queries that read the board's visits (student names)."""
    return [
        query["sql"]
        for query in queries.captured_queries
        if '"queueing_visit"."student_name"' in query["sql"]
    ]


# --- the board cache --------------------------------------------------------------


def test_it_serves_the_board_this_container_rendered_to_another(leader_client, shared_cache):
    VisitFactory(student_name="Zoë Ng")
    response = leader_client.get(reverse("queueing:poll"), {"v": -1})
    assert response.status_code == 200
    version = response["X-Board-Version"]

    other = another_container(
        f"{BOARDS}print(boards.get('resq:board:{version}'), end='')",
        REDIS_URL=TEST_REDIS_URL,
        CACHE_KEY_PREFIX=shared_cache,
    )
    assert other.returncode == 0, other.stderr
    assert other.stdout == response.text
    assert "Zoë Ng" in other.stdout


def test_it_serves_a_board_another_container_rendered_without_rendering_it(
    leader_client, shared_cache
):
    VisitFactory(student_name="Zoë Ng")
    version = Board.current_version()
    marker = '<section id="board">rendered by the other container</section>'
    other = another_container(
        f"{BOARDS}boards.set('resq:board:{version}', {marker!r}, 600)",
        REDIS_URL=TEST_REDIS_URL,
        CACHE_KEY_PREFIX=shared_cache,
    )
    assert other.returncode == 0, other.stderr

    with CaptureQueriesContext(connection) as queries:
        response = leader_client.get(reverse("queueing:poll"), {"v": -1})
    assert response.status_code == 200
    assert response.text == marker
    assert response["X-Board-Version"] == str(version)
    assert visit_queries(queries) == []


def test_it_renders_the_board_once_for_every_screen(leader, other_leader, shared_cache):
    VisitFactory(student_name="Zoë Ng")
    screens = [log_in(leader), log_in(other_leader)]
    with CaptureQueriesContext(connection) as queries:
        boards = [screen.get(reverse("queueing:poll"), {"v": -1}).text for screen in screens]
    assert boards[0] == boards[1]
    assert len(visit_queries(queries)) == 1


def test_it_keeps_the_desk_working_when_the_shared_cache_stops_answering(
    settings, leader_client, htmx_headers, caplog
):
    # Nothing listens on port 9: every cache call fails at once.
    nowhere = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
    }
    settings.CACHES = {"default": nowhere, "board": nowhere}
    VisitFactory(student_name="Ada Cache")
    poll = leader_client.get(reverse("queueing:poll"), {"v": "-1"}, headers=htmx_headers)
    assert poll.status_code == 200
    assert "Ada Cache" in poll.text
    assert "Board cache unavailable" in caplog.text


def test_it_keeps_this_process_board_apart_without_redis(leader_client):
    # The control: without REDIS_URL a board rendered here is invisible to another
    # process, which renders its own; a board never changes under its version.
    assert settings.CACHES["board"]["BACKEND"].endswith("LocMemCache")
    response = leader_client.get(reverse("queueing:poll"), {"v": -1})
    version = response["X-Board-Version"]
    assert caches["board"].get(f"resq:board:{version}") == response.text
    other = another_container(f"{BOARDS}print(boards.get('resq:board:{version}'))")
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == "None"


# --- sessions ---------------------------------------------------------------------


def test_it_keeps_cached_db_sessions_in_the_database_and_in_redis(
    leader, cached_db_sessions, redis_client
):
    browser = log_in(leader)
    session_key = browser.cookies[settings.SESSION_COOKIE_NAME].value
    # The database stays the source of truth; Redis holds the copy every container reads.
    assert Session.objects.filter(session_key=session_key).exists()
    assert redis_client.exists(f"{cached_db_sessions}:1:{CACHED_DB_PREFIX}{session_key}")

    # Another screen with the same cookie, on another container: signed in.
    other = Client()
    other.cookies[settings.SESSION_COOKIE_NAME] = session_key
    assert other.get(reverse("queueing:desk")).status_code == 200


def test_it_saves_the_session_query_on_every_poll_with_cached_db(
    leader, cached_db_sessions, django_assert_num_queries
):
    browser = log_in(leader)
    version = Board.current_version()
    # The user and the version; the session comes from Redis.
    with django_assert_num_queries(2):
        response = browser.get(reverse("queueing:poll"), {"v": version})
    assert response.status_code == 204


def test_it_signs_out_a_deactivated_user_despite_the_cached_session(leader, cached_db_sessions):
    browser = log_in(leader)
    assert browser.get(reverse("queueing:desk")).status_code == 200
    leader.is_active = False
    leader.save()
    response = browser.get(reverse("queueing:desk"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_it_ends_a_cached_session_everywhere_on_sign_out(leader, cached_db_sessions, redis_client):
    browser = log_in(leader)
    session_key = browser.cookies[settings.SESSION_COOKIE_NAME].value
    other = Client()
    other.cookies[settings.SESSION_COOKIE_NAME] = session_key
    assert browser.post(reverse("accounts:logout")).status_code == 302
    assert not Session.objects.filter(session_key=session_key).exists()
    assert not redis_client.exists(f"{cached_db_sessions}:1:{CACHED_DB_PREFIX}{session_key}")
    assert other.get(reverse("queueing:desk")).status_code == 302


def test_it_needs_the_session_store_to_end_a_cached_session(leader, cached_db_sessions):
    # Deleting session rows leaves the cached copy alive until it expires: code that
    # ends sessions must go through the session store (or deactivate the user).
    browser = log_in(leader)
    session_key = browser.cookies[settings.SESSION_COOKIE_NAME].value
    Session.objects.filter(session_key=session_key).delete()
    assert browser.get(reverse("queueing:desk")).status_code == 200

    import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key).delete()
    assert browser.get(reverse("queueing:desk")).status_code == 302


# --- settings from the environment ------------------------------------------------

PRINT_SETTINGS = """
import json
from django.conf import settings
print(json.dumps({"CACHES": settings.CACHES, "SESSION_ENGINE": settings.SESSION_ENGINE}))
"""
DATABASE_AND_LOCMEM = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "resq_cache",
        "OPTIONS": {"MAX_ENTRIES": 20_000},
    },
    "board": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "board",
        "OPTIONS": {"MAX_ENTRIES": 5000},
    },
}
DB_SESSIONS = "django.contrib.sessions.backends.db"
CACHED_DB_SESSIONS = "django.contrib.sessions.backends.cached_db"


@pytest.mark.parametrize(
    ("env", "caches", "engine"),
    [
        ({}, DATABASE_AND_LOCMEM, DB_SESSIONS),
        ({"SESSION_ENGINE": "db"}, DATABASE_AND_LOCMEM, DB_SESSIONS),
        ({"REDIS_URL": "redis://redis:6379/0"}, redis_caches("redis://redis:6379/0"), DB_SESSIONS),
        (
            {"REDIS_URL": "redis://redis:6379/2", "CACHE_KEY_PREFIX": "staging"},
            redis_caches("redis://redis:6379/2", "staging"),
            DB_SESSIONS,
        ),
        (
            {"REDIS_URL": "redis://redis:6379/0", "SESSION_ENGINE": "cached_db"},
            redis_caches("redis://redis:6379/0"),
            CACHED_DB_SESSIONS,
        ),
        (
            {"REDIS_URL": "redis://redis:6379/0", "SESSION_ENGINE": CACHED_DB_SESSIONS},
            redis_caches("redis://redis:6379/0"),
            CACHED_DB_SESSIONS,
        ),
    ],
)
def test_it_builds_the_cache_and_sessions_from_the_environment(env, caches, engine):
    result = another_container(PRINT_SETTINGS, **env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"CACHES": caches, "SESSION_ENGINE": engine}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SESSION_ENGINE": "cached_db"}, "SESSION_ENGINE=cached_db needs REDIS_URL"),
        ({"SESSION_ENGINE": "cache", "REDIS_URL": "redis://redis:6379/0"}, "db or cached_db"),
        ({"SESSION_ENGINE": "signed_cookies"}, "db or cached_db"),
    ],
)
def test_it_refuses_sessions_that_could_not_be_ended(env, message):
    result = another_container(PRINT_SETTINGS, **env)
    assert result.returncode != 0
    assert message in result.stderr
