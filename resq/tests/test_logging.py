"""Request logs and error reports: what they carry, and that no student data gets in."""

import io
import json
import logging
import subprocess
from types import SimpleNamespace

import pytest
import sentry_sdk
from django.conf import settings
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.module_loading import import_string

from queueing.models import Board, EnquiryType, Team, Visit
from resq import middleware
from resq.logging import RequestIdFilter, current_request, user_id
from resq.sentry import scrub_event
from resq.tests.processes import django_process

pytestmark = pytest.mark.django_db

STUDENT_NAME = "Zoë Secretname"
STUDENT_NUMBER = "21234567"
# Pieces of the student's data that must appear nowhere, whatever the encoding.
SECRETS = ("Zoë", "Zo\\u00eb", "Secretname", STUDENT_NUMBER)
GENERATED_ID = r"[0-9a-f]{32}"


def formatter(name: str) -> logging.Formatter:
    """The formatter exactly as LOGGING configures it."""
    config = dict(settings.LOGGING["formatters"][name])
    if "()" in config:
        return import_string(config.pop("()"))(**config)
    return logging.Formatter(config["format"], defaults=config.get("defaults"))


class JsonLines:
    """Everything logged anywhere during a test, through the production formatter."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(formatter("json"))
        self.handler.addFilter(RequestIdFilter())

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]

    def requests(self) -> list[dict]:
        return [line for line in self.lines() if line["logger"] == "resq.request"]


@pytest.fixture
def json_log(caplog):
    caplog.set_level(logging.DEBUG)
    log = JsonLines()
    root = logging.getLogger()
    root.addHandler(log.handler)
    yield log
    root.removeHandler(log.handler)


@pytest.fixture
def studysmarter():
    team = Team.objects.get(slug="studysmarter")
    team.available_staff = 2
    team.save()
    return team


def assert_no_student_data(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# --- the request line -------------------------------------------------------------


def test_it_logs_each_request_once_as_a_json_line(leader_client, leader, json_log):
    response = leader_client.get(reverse("queueing:desk"))
    assert response.status_code == 200
    [line] = json_log.requests()
    assert line["level"] == "INFO"
    assert line["request_id"] == response["X-Request-ID"]
    assert line["user_id"] == leader.pk
    assert line["method"] == "GET"
    assert line["route"] == "/desk/"
    assert line["status"] == 200
    assert line["view"] == "queueing:desk"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["time"].endswith("+00:00")
    assert line["message"] == f"GET /desk/ 200 {line['duration_ms']}ms"
    # The user by number only.
    assert leader.username not in json_log.text
    assert leader.first_name not in json_log.text


def test_it_never_logs_the_query_string(leader_client, json_log, caplog):
    response = leader_client.get(reverse("queueing:desk"), {"student_number": STUDENT_NUMBER})
    assert response.status_code == 200
    [line] = json_log.requests()
    assert line["route"] == "/desk/"
    assert "?" not in json_log.text and "?" not in caplog.text
    assert_no_student_data(json_log.text)
    assert_no_student_data(caplog.text)


def test_it_logs_the_route_not_a_number_typed_into_the_url(leader_client, json_log):
    response = leader_client.get("/desk/visits/12345678/edit/")

    assert response.status_code == 404
    [line] = json_log.requests()
    assert line["route"] == "/desk/visits/<int:pk>/edit/"
    assert line["view"] == "queueing:edit"
    assert line["message"] == f"GET /desk/visits/<int:pk>/edit/ 404 {line['duration_ms']}ms"
    # Django's own "Not Found" record too.
    assert "12345678" not in json_log.text


def test_it_logs_an_address_no_route_serves_as_unresolved(leader_client, json_log):
    response = leader_client.get("/desk/12345678/")

    assert response.status_code == 404
    [line] = json_log.requests()
    assert (line["route"], line["view"]) == ("<unresolved>", None)
    assert "12345678" not in json_log.text


def test_it_does_not_load_a_user_the_request_never_read(rf):
    # A static file or a view that never looked at the user: loading it for the log
    # line would cost the session and user queries, or fail if the database is down.
    request = rf.get("/healthz")
    request.user = SimpleLazyObject(lambda: pytest.fail("the log line loaded the user"))
    assert user_id(request) is None


def test_it_reads_the_user_the_request_loaded(rf, leader):
    request = rf.get("/desk/")
    request.user = SimpleLazyObject(lambda: leader)
    assert request.user.is_authenticated
    assert user_id(request) == leader.pk


def test_it_logs_an_anonymous_user_as_none(client, json_log):
    response = client.get(reverse("accounts:login"))
    assert response.status_code == 200
    [line] = json_log.requests()
    assert line["user_id"] is None
    assert line["view"] == "accounts:login"


# --- request ids ------------------------------------------------------------------


@pytest.mark.parametrize(
    "incoming",
    ["0f8e2c1a-3b4d-4c5e-9f60-718293a4b5c6", "4bf92f3577b34da6a3ce929d0e0e4736", "req_01.AbC-9"],
)
def test_it_keeps_a_sane_incoming_request_id(client, json_log, incoming):
    response = client.get(reverse("accounts:login"), headers={"X-Request-ID": incoming})
    assert response["X-Request-ID"] == incoming
    assert json_log.requests()[0]["request_id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "",
        "short",
        "has spaces in it",
        "a" * 65,
        "line\tbreak-12345",
        "<script>alert(1)</script>",
        "-starts-with-a-dash",
        "ünïcode-12345",
    ],
)
def test_it_replaces_a_bad_incoming_request_id(client, json_log, incoming):
    response = client.get(reverse("accounts:login"), headers={"X-Request-ID": incoming})
    assert response["X-Request-ID"] != incoming
    assert response["X-Request-ID"] == json_log.requests()[0]["request_id"]
    assert len(response["X-Request-ID"]) == 32
    assert int(response["X-Request-ID"], 16) >= 0


def test_it_gives_each_request_its_own_id(client):
    first = client.get(reverse("accounts:login"))["X-Request-ID"]
    second = client.get(reverse("accounts:login"))["X-Request-ID"]
    assert first != second


def test_it_stamps_other_records_of_the_request_with_its_id(leader_client, json_log):
    # A 404 raised inside the view is logged by Django while the request runs.
    leader_client.get(
        reverse("queueing:remove", args=[987654]), headers={"X-Request-ID": "trace-404-abcdef"}
    )
    not_found = [line for line in json_log.lines() if line["logger"] == "django.request"]
    assert [line["message"] for line in not_found] == ["Not Found: /desk/visits/<int:pk>/remove/"]
    assert not_found[0]["request_id"] == "trace-404-abcdef"


def test_it_stamps_a_response_django_logs_after_the_middleware(client, coordinator, json_log):
    # A refused poll is a returned 403, which Django logs once the middleware has
    # finished: the id comes from the request on the record, which itself is not logged.
    client.force_login(coordinator)
    client.get(reverse("queueing:poll"), {"v": "-1"}, headers={"X-Request-ID": "trace-403-abcdef"})
    forbidden = [line for line in json_log.lines() if line["logger"] == "django.request"]
    assert [line["message"] for line in forbidden] == ["Forbidden: /desk/poll/"]
    assert forbidden[0]["request_id"] == "trace-403-abcdef"
    assert "request" not in forbidden[0]
    assert "?" not in json_log.text


def test_it_writes_the_request_id_in_text_logs_too(client, caplog):
    caplog.set_level(logging.INFO)
    client.get(reverse("accounts:login"), headers={"X-Request-ID": "trace-text-abcdef"})
    [record] = [r for r in caplog.records if r.name == "resq.request"]
    assert "[trace-text-abcdef] GET /accounts/login/ 200" in formatter("text").format(record)
    outside = logging.LogRecord("resq", logging.INFO, __file__, 1, "started", None, None)
    RequestIdFilter().filter(outside)
    assert "[-] started" in formatter("text").format(outside)


# --- polls and slow requests ------------------------------------------------------


def test_it_logs_polls_at_debug_unless_asked(leader_client, json_log, settings):
    version = Board.current_version()
    assert leader_client.get(reverse("queueing:poll"), {"v": version}).status_code == 204
    assert leader_client.get(reverse("queueing:poll"), {"v": -1}).status_code == 200
    assert leader_client.get(reverse("healthz")).status_code == 200
    assert [(line["level"], line["status"]) for line in json_log.requests()] == [
        ("DEBUG", 204),
        ("DEBUG", 200),
        ("DEBUG", 200),
    ]

    settings.RESQ_LOG_POLLS = True
    leader_client.get(reverse("queueing:poll"), {"v": version})
    assert json_log.requests()[-1]["level"] == "INFO"


def test_it_logs_a_failed_poll_at_info(client, coordinator, json_log):
    client.force_login(coordinator)
    assert client.get(reverse("queueing:poll"), {"v": -1}).status_code == 403
    assert [(line["level"], line["status"]) for line in json_log.requests()] == [("INFO", 403)]


def test_it_warns_about_a_slow_request_even_a_poll(leader_client, json_log, monkeypatch):
    clock = iter([100.0, 102.5])
    monkeypatch.setattr(middleware, "perf_counter", lambda: next(clock))
    leader_client.get(reverse("queueing:poll"), {"v": Board.current_version()})
    [line] = json_log.requests()
    assert (line["level"], line["duration_ms"]) == ("WARNING", 2500.0)


# --- no student data, through a whole desk session --------------------------------


def test_it_logs_a_desk_session_without_student_data(client, leader, studysmarter, caplog):
    caplog.set_level(logging.DEBUG)
    log = JsonLines()
    logging.getLogger().addHandler(log.handler)
    text_stream = io.StringIO()
    text_handler = logging.StreamHandler(text_stream)
    text_handler.setFormatter(formatter("text"))
    text_handler.addFilter(RequestIdFilter())
    logging.getLogger().addHandler(text_handler)
    htmx = {"HX-Request": "true", "HX-Current-URL": "http://testserver/desk/?tab=1"}
    try:
        response = client.post(
            reverse("accounts:login"),
            {"username": leader.username, "password": "correct horse battery staple"},
        )
        assert response.status_code == 302
        response = client.post(
            reverse("queueing:add"),
            {
                "student_name": STUDENT_NAME,
                "student_number": STUDENT_NUMBER,
                "unit_code": "CITS3200",
                "team": studysmarter.pk,
                "enquiry_type": EnquiryType.objects.get(name="Essay").pk,
            },
        )
        assert response.status_code == 302
        visit = Visit.objects.get(student_number=STUDENT_NUMBER)
        assert client.get(reverse("queueing:desk")).status_code == 200
        client.post(reverse("queueing:start", args=[visit.pk]), headers=htmx)
        client.post(reverse("queueing:finish", args=[visit.pk]))
        visit.refresh_from_db()
        assert visit.status == Visit.Status.FINISHED
        response = client.post(
            reverse("queueing:student_lookup"), {"student_number": STUDENT_NUMBER}, headers=htmx
        )
        assert STUDENT_NAME in response.text
        # The board itself (with the name in it) and a number typed into a URL.
        assert STUDENT_NAME in client.get(reverse("queueing:poll"), {"v": -1}).text
        client.get(reverse("queueing:desk"), {"q": STUDENT_NUMBER, "name": STUDENT_NAME})
    finally:
        logging.getLogger().removeHandler(log.handler)
        logging.getLogger().removeHandler(text_handler)

    requests = log.requests()
    assert [(line["method"], line["route"], line["status"]) for line in requests] == [
        ("POST", "/accounts/login/", 302),
        ("POST", "/desk/visits/add/", 302),
        ("GET", "/desk/", 200),
        ("POST", "/desk/visits/<int:pk>/start/", 200),
        ("POST", "/desk/visits/<int:pk>/finish/", 302),
        ("POST", "/desk/students/lookup/", 200),
        ("GET", "/desk/poll/", 200),
        ("GET", "/desk/", 200),
    ]
    # Signed in from the login's response on: the user is known by number.
    assert {line["user_id"] for line in requests} == {leader.pk}
    assert len({line["request_id"] for line in requests}) == len(requests)
    for output in (log.text, text_stream.getvalue(), caplog.text):
        assert_no_student_data(output)
        assert "?" not in output
        assert "correct horse" not in output
    for record in caplog.records:
        assert_no_student_data(record.getMessage())


# --- settings ---------------------------------------------------------------------

LOG_KEYS = ("DEBUG", "SECRET_KEY", "LOG_FORMAT", "SENTRY_DSN", "SENTRY_RELEASE")


def run_with_settings(code: str, **env: str) -> subprocess.CompletedProcess:
    """Code run in a fresh process with only these of the keys under test set."""
    return django_process(
        code, unset=LOG_KEYS, empty=("LOG_FORMAT", "SENTRY_DSN", "SENTRY_RELEASE"), **env
    )


CONSOLE_FORMATTER = """
import logging
from django.conf import settings
[handler] = logging.getLogger().handlers
print(settings.LOG_FORMAT, type(handler.formatter).__name__)
"""


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DEBUG": "off", "SECRET_KEY": "test-only-key-" * 4}, "json JsonFormatter"),
        ({"DEBUG": "on"}, "text Formatter"),
        (
            {"DEBUG": "off", "SECRET_KEY": "test-only-key-" * 4, "LOG_FORMAT": "text"},
            "text Formatter",
        ),
        ({"DEBUG": "on", "LOG_FORMAT": "json"}, "json JsonFormatter"),
    ],
)
def test_it_logs_json_in_production_and_text_in_development(env, expected):
    result = run_with_settings(CONSOLE_FORMATTER, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_it_refuses_an_unknown_log_format():
    result = run_with_settings("", LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "LOG_FORMAT must be json or text" in result.stderr


# --- Sentry -----------------------------------------------------------------------


def test_it_does_not_start_sentry_without_a_dsn():
    assert settings.SENTRY_DSN == ""
    assert not sentry_sdk.get_client().is_active()
    result = run_with_settings(
        "import sentry_sdk\nprint(sentry_sdk.get_client().is_active())", SENTRY_DSN=""
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# A desk request that fails while adding a student, sent through the WSGI application as
# gunicorn would (Sentry reads the URL and headers there), with a query string, cookies
# and the student's details in its body. The events Sentry would send are printed.
SENTRY_DESK_ERROR = """
import io
import json
import sys
from unittest import mock
from urllib.parse import urlencode

import sentry_sdk
from sentry_sdk.transport import Transport
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.test import Client
from django.test.utils import setup_test_environment

from accounts.models import User
from queueing.models import EnquiryType, Team, Visit

events = []


class Capture(Transport):
    def capture_envelope(self, envelope):
        event = envelope.get_event() or envelope.get_transaction_event()
        if event is not None:
            events.append(event)


client = sentry_sdk.get_client()
client.transport = Capture(client.options)
setup_test_environment()
call_command("migrate", verbosity=0)
leader = User.objects.create_user(username="leader", first_name="Lee", email="lee@example.edu")
leader.groups.add(Group.objects.get(name="Student leader"))
browser = Client()
browser.force_login(leader)
csrf = "k" * 32
body = urlencode({
    "csrfmiddlewaretoken": csrf,
    "student_name": "Zoë Secretname",
    "student_number": "21234567",
    "unit_code": "CITS3200",
    "team": Team.objects.get(slug="studysmarter").pk,
    "enquiry_type": EnquiryType.objects.get(name="Essay").pk,
}).encode()
environ = {
    "REQUEST_METHOD": "POST",
    "PATH_INFO": "/desk/visits/add/",
    "QUERY_STRING": "student_number=21234567",
    "CONTENT_TYPE": "application/x-www-form-urlencoded",
    "CONTENT_LENGTH": str(len(body)),
    "SERVER_NAME": "testserver",
    "SERVER_PORT": "80",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "10.0.0.7",
    "HTTP_HOST": "testserver",
    "HTTP_COOKIE": (
        f"sessionid={browser.cookies['sessionid'].value}; csrftoken={csrf}; "
        "tracking=cookie-value-xyz"
    ),
    "HTTP_X_REQUEST_ID": "trace-sentry-abcdef",
    "HTTP_REFERER": "http://testserver/desk/?q=21234567",
    "HTTP_X_FORWARDED_FOR": "10.0.0.8",
    "wsgi.input": io.BytesIO(body),
    "wsgi.errors": sys.stderr,
    "wsgi.url_scheme": "http",
    "wsgi.version": (1, 0),
    "wsgi.multithread": False,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
}
statuses = []
with mock.patch.object(Visit, "add", side_effect=RuntimeError("could not add 21234567")):
    b"".join(get_wsgi_application()(environ, lambda status, headers, *a: statuses.append(status)))
sentry_sdk.flush()
print(json.dumps({
    "status": statuses[0],
    "user_id": leader.pk,
    "options": {
        key: client.options[key]
        for key in (
            "environment", "release", "traces_sample_rate", "send_default_pii",
            "include_local_variables", "max_request_body_size",
        )
    },
    "scrubber": client.options["before_send"].__qualname__,
    "events": events,
}, default=str))
"""


def test_it_sends_sentry_no_student_data_from_a_failing_desk_request():
    result = run_with_settings(
        SENTRY_DESK_ERROR,
        SENTRY_DSN="https://public@sentry.invalid/1",
        SENTRY_RELEASE="resq@1.2.3",
        SENTRY_TRACES_SAMPLE_RATE="0",
        DATABASE_URL="sqlite://:memory:",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["status"].startswith("500")
    assert report["options"] == {
        "environment": "production",
        "release": "resq@1.2.3",
        "traces_sample_rate": 0.0,
        "send_default_pii": False,
        "include_local_variables": False,
        "max_request_body_size": "never",
    }
    assert report["scrubber"] == "scrub_event"
    events = report["events"]
    assert events, "the error reached Sentry"
    [error] = [event for event in events if event.get("exception")]
    assert error["exception"]["values"][-1]["type"] == "RuntimeError"
    assert error["request"]["method"] == "POST"
    assert error["request"]["url"] == "http://testserver/desk/visits/add/"
    assert error["tags"]["request_id"] == "trace-sentry-abcdef"
    assert error["user"] == {"id": report["user_id"]}
    sent = json.dumps(events)
    assert_no_student_data(sent)
    for leak in ("cookie-value-xyz", "sessionid", "csrftoken", "lee@example.edu"):
        assert leak not in sent


def test_it_scrubs_personal_data_from_an_event():
    event = {
        "message": "no visit for student 21234567",
        "logentry": {
            "message": "lookup %s",
            "params": ["21234567"],
            "formatted": "lookup 21234567",
        },
        "request": {
            "method": "POST",
            "url": "https://resq.example.edu/desk/visits/add/?student_number=21234567",
            "query_string": "student_number=21234567",
            "data": {"student_name": "Zoë Secretname", "student_number": "21234567"},
            "cookies": {"sessionid": "abc", "csrftoken": "def"},
            "env": {"REMOTE_ADDR": "10.0.0.7"},
            "headers": {
                "Cookie": "sessionid=abc",
                "Referer": "https://resq.example.edu/desk/?q=21234567",
                "Hx-Current-Url": "https://resq.example.edu/desk/?q=21234567",
                "X-Csrftoken": "def",
                "Content-Type": "application/x-www-form-urlencoded",
                "Hx-Request": "true",
                "X-Request-Id": "trace-abcdef12",
            },
        },
        "user": {"id": 7, "username": "lee", "email": "lee@example.edu", "ip_address": "10.0.0.7"},
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": "bad student number 21234567",
                    "stacktrace": {
                        "frames": [
                            {
                                "function": "add_visit",
                                "vars": {"student_name": "Zoë Secretname", "n": "21234567"},
                            }
                        ]
                    },
                }
            ]
        },
        "threads": {"values": [{"stacktrace": {"frames": [{"vars": {"name": "Zoë Secretname"}}]}}]},
        "breadcrumbs": {
            "values": [
                {
                    "category": "query",
                    "message": 'SELECT … WHERE "student_number" = %s',
                    "data": {"db.params": ["21234567"]},
                },
                {
                    "category": "django.request",
                    "level": "warning",
                    "message": "Not Found: /desk/",
                    "data": {"request": "<WSGIRequest: GET '/desk/?q=21234567'>"},
                },
            ]
        },
        "extra": {"request": "<WSGIRequest: POST '/desk/?q=21234567'>", "status_code": 500},
        "spans": [{"op": "db", "data": {"db.params": ["Zoë Secretname"], "db.system": "sqlite"}}],
    }
    scrubbed = scrub_event(event, {})
    assert scrubbed["request"] == {
        "method": "POST",
        "url": "https://resq.example.edu/desk/visits/add/",
        "headers": {
            "Content-Type": "application/x-www-form-urlencoded",
            "Hx-Request": "true",
            "X-Request-Id": "trace-abcdef12",
        },
    }
    assert scrubbed["user"] == {"id": 7}
    assert scrubbed["extra"] == {"status_code": 500}
    assert scrubbed["exception"]["values"][0]["value"] == "bad student number [redacted]"
    assert scrubbed["breadcrumbs"]["values"][0] == {
        "category": "query",
        "message": 'SELECT … WHERE "student_number" = %s',
    }
    assert scrubbed["spans"][0]["data"] == {"db.system": "sqlite"}
    text = json.dumps(scrubbed)
    assert_no_student_data(text)
    for leak in ("sessionid", "csrftoken", "lee", "10.0.0.7", "?"):
        assert leak not in text


def test_it_drops_a_user_without_an_id_from_an_event():
    assert "user" not in scrub_event({"user": {"ip_address": "10.0.0.7"}}, {})


def test_it_tags_an_event_with_the_request_and_its_user(leader):
    assert scrub_event({}, {}) == {}
    token = current_request.set(SimpleNamespace(request_id="trace-tag-abcdef", user=leader))
    try:
        assert scrub_event({}, {}) == {
            "user": {"id": leader.pk},
            "tags": {"request_id": "trace-tag-abcdef"},
        }
    finally:
        current_request.reset(token)
