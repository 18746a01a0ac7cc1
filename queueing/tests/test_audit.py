"""Audit: who did what, and when, to every visit (its history) and in admin (the admin's
log), shown to managers; and no student's name or number in the application log."""

import json
import logging

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.tests.factories import UserFactory
from accounts.tests.helpers import PASSWORD, log_in, pass_two_factor
from queueing.models import EnquiryType, Team, Visit, VisitEvent
from resq.logging import RequestIdFilter

pytestmark = pytest.mark.django_db

STUDENT_NAME = "Zoë Secretname"
STUDENT_NUMBER = "21234567"
OTHER_NAME = "Quentin Hiddenfield"
OTHER_NUMBER = "29876543"
#: Any of these in a log record is a leak, however it is encoded.
SECRETS = (
    "Zoë",
    "Zo\\u00eb",
    "Zo\\xeb",
    "Secretname",
    STUDENT_NUMBER,
    "Quentin",
    "Hiddenfield",
    OTHER_NUMBER,
)


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    pass_two_factor(client, user)
    return client


# --- every visit's history, on its admin page ---------------------------------------------


def test_it_shows_who_did_what_to_a_visit_and_when(manager, leader, other_leader):
    visit = Visit.add(
        by=leader,
        student_name="Ana Audit",
        student_number="21111111",
        unit_code="",
        team=Team.objects.get(slug="studysmarter"),
        enquiry_type=EnquiryType.objects.get(name="Essay"),
    )
    Team.objects.filter(slug="studysmarter").update(available_staff=1)
    visit.start_session(by=other_leader)
    visit.finish(by=leader)

    response = admin_client(manager).get(reverse("admin:queueing_visit_change", args=[visit.pk]))

    assert response.status_code == 200
    text = response.text
    history = text[text.index("History") :]
    for action, who in (
        ("Added to queue", "Lee"),
        ("Session started", "Sam"),
        ("Session finished", "Lee"),
    ):
        assert action in history
        assert who in history
    when = timezone.localtime(VisitEvent.objects.filter(visit=visit).first().at)
    assert f"{when:%H:%M}" in history
    # Read-only: no form fields for the events, no way to add or delete one.
    assert 'name="events-0-action"' not in text
    assert "Add another history event" not in text
    assert "events-0-DELETE" not in text


# --- the admin's log ----------------------------------------------------------------------


@pytest.fixture
def logged(manager):
    """A manager renames a team in admin; Django logs it."""
    client = admin_client(manager)
    team = Team.objects.get(slug="librarian")
    response = client.post(
        reverse("admin:queueing_team_change", args=[team.pk]),
        {
            "name": "Library",
            "slug": team.slug,
            "available_label": team.available_label,
            "display_order": team.display_order,
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    return LogEntry.objects.get(object_id=str(team.pk), content_type__model="team")


def test_it_logs_who_changed_what_in_admin(logged, manager):
    assert logged.user == manager
    assert logged.action_flag == CHANGE
    assert logged.object_repr == "Library"
    assert "Name" in logged.get_change_message()


def test_it_shows_managers_the_admin_log(logged, manager):
    client = admin_client(manager)

    listing = client.get(reverse("admin:admin_logentry_changelist"))
    entry = client.get(reverse("admin:admin_logentry_change", args=[logged.pk]))

    assert listing.status_code == 200
    assert "Library" in listing.text
    assert "Changed" in listing.text
    assert "Max" in listing.text or "manager" in listing.text
    assert entry.status_code == 200
    assert "Changed Name" in entry.text
    # A link to the record that was changed.
    assert reverse("admin:queueing_team_change", args=[logged.object_id]) in entry.text
    # The index lists it for managers.
    assert reverse("admin:admin_logentry_changelist") in client.get(reverse("admin:index")).text


def test_nobody_can_add_change_or_delete_log_entries(logged, manager):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    for user in (manager, root):
        client = admin_client(user)

        add = client.get(reverse("admin:admin_logentry_add"))
        delete = client.post(
            reverse("admin:admin_logentry_delete", args=[logged.pk]), {"post": "yes"}
        )
        change = client.post(
            reverse("admin:admin_logentry_change", args=[logged.pk]),
            {"change_message": "nothing happened"},
        )

        assert add.status_code == 403
        assert delete.status_code == 403
        # The change page is read-only: a POST changes nothing.
        assert change.status_code == 403
    logged.refresh_from_db()
    assert LogEntry.objects.filter(pk=logged.pk).exists()
    assert "Name" in logged.get_change_message()


def test_it_hides_the_admin_log_from_staff_without_the_audit_permission(logged):
    clerk = UserFactory(username="clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_term"))
    client = admin_client(clerk)

    assert client.get(reverse("admin:admin_logentry_changelist")).status_code == 403
    assert reverse("admin:admin_logentry_changelist") not in client.get(reverse("admin:index")).text


def test_it_shows_django_s_own_permission_holders_the_log(logged):
    auditor = UserFactory(username="auditor", is_staff=True)
    auditor.user_permissions.add(
        Permission.objects.get(codename="view_logentry", content_type__app_label="admin")
    )

    response = admin_client(auditor).get(reverse("admin:admin_logentry_changelist"))

    assert response.status_code == 200
    assert "Library" in response.text


def test_it_lists_additions_and_deletions_without_a_broken_link(manager):
    team = Team.objects.create(name="Maths", slug="maths")
    content_type = ContentType.objects.get_for_model(Team)
    for flag in (ADDITION, DELETION):
        LogEntry.objects.create(
            user=manager, content_type=content_type, object_id=str(team.pk),
            object_repr="Maths", action_flag=flag, change_message="[]",
        )  # fmt: skip

    response = admin_client(manager).get(reverse("admin:admin_logentry_changelist"))

    assert response.status_code == 200
    assert "Added" in response.text
    assert "Deleted" in response.text


def test_it_lists_the_log_in_a_fixed_number_of_queries(manager, django_assert_max_num_queries):
    content_type = ContentType.objects.get_for_model(Team)
    for n in range(30):
        LogEntry.objects.create(
            user=UserFactory(), content_type=content_type, object_id=str(n),
            object_repr=f"Team {n}", action_flag=CHANGE, change_message="[]",
        )  # fmt: skip
    client = admin_client(manager)

    with django_assert_max_num_queries(20):
        response = client.get(reverse("admin:admin_logentry_changelist"))

    assert response.status_code == 200


# --- no student data in the application log --------------------------------------------------


class Everything(logging.Handler):
    """Keeps every record, to look at each one's message, arguments and extra fields."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def formatter(name: str) -> logging.Formatter:
    from django.conf import settings

    config = dict(settings.LOGGING["formatters"][name])
    if "()" in config:
        return import_string(config.pop("()"))(**config)
    return logging.Formatter(config["format"], defaults=config.get("defaults"))


def everything_in(record: logging.LogRecord) -> str:
    """The record as every formatter and every field would show it."""
    parts = [record.getMessage(), repr(record.args), repr(record.msg)]
    parts += [f"{key}={value!r}" for key, value in vars(record).items()]
    RequestIdFilter().filter(record)
    for name in ("json", "text"):
        parts.append(formatter(name).format(record))
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(str(part) for part in parts)


@pytest.fixture
def every_record(caplog):
    """Every record that reaches the root logger at DEBUG, with the levels LOGGING sets
    for Django's own loggers: those levels are part of the protection (see below)."""
    caplog.set_level(logging.DEBUG)
    handler = Everything()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)


def test_django_s_chattiest_loggers_stay_quiet_at_debug(every_record):
    # At DEBUG, django.template logs each missing variable with the template's whole
    # context (a board's visits: names and numbers), and django.db.backends each query
    # with its parameters. LOGGING keeps "django" at INFO whatever LOG_LEVEL says.
    for name in ("django.template", "django.db.backends", "django.request"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name


def test_it_never_logs_a_students_name_or_number(client, leader, every_record, settings):
    # SQL parameters are logged only with DEBUG on; this test is about ResQ's own lines.
    settings.DEBUG = False
    studysmarter = Team.objects.get(slug="studysmarter")
    librarian = Team.objects.get(slug="librarian")
    Team.objects.filter(pk=studysmarter.pk).update(available_staff=2)
    essay = EnquiryType.objects.get(name="Essay")
    htmx = {"HX-Request": "true", "HX-Current-URL": "http://testserver/desk/"}

    # A failed login, then a real one, through the login page.
    assert log_in(client, leader.username, "not the password").status_code == 200
    assert log_in(client, leader.username, PASSWORD).status_code == 302
    # Add the student (plain POST), and another over htmx.
    add = {
        "student_name": STUDENT_NAME,
        "student_number": STUDENT_NUMBER,
        "unit_code": "CITS3200",
        "team": studysmarter.pk,
        "enquiry_type": essay.pk,
    }
    assert client.post(reverse("queueing:add"), add).status_code == 302
    other = {**add, "student_name": OTHER_NAME, "student_number": OTHER_NUMBER}
    assert client.post(reverse("queueing:add"), other, headers=htmx).status_code == 200
    # The duplicate warning names the student back to the desk.
    assert STUDENT_NAME in client.post(reverse("queueing:add"), add, headers=htmx).text
    # An invalid add: the number echoed in the form.
    bad = {**add, "student_name": "<script>"}
    assert client.post(reverse("queueing:add"), bad).status_code == 200
    visit = Visit.objects.get(student_number=STUDENT_NUMBER)
    another = Visit.objects.get(student_number=OTHER_NUMBER)
    lookup = client.post(
        reverse("queueing:student_lookup"), {"student_number": STUDENT_NUMBER}, headers=htmx
    )
    assert STUDENT_NAME in lookup.text
    assert client.get(reverse("queueing:desk")).status_code == 200
    assert client.get(reverse("queueing:poll"), {"v": -1}).status_code == 200
    # Edit (transfer) the other student, then remove them.
    edit = reverse("queueing:edit", args=[another.pk])
    assert client.get(edit, headers=htmx).status_code == 200
    changed = {**other, "student_name": "Quentin Hiddenfield-Jones", "team": librarian.pk}
    assert client.post(edit, changed, headers=htmx).status_code == 200
    remove = reverse("queueing:remove", args=[another.pk])
    assert client.post(remove, {"outcome": "no_show"}, headers=htmx).status_code == 200
    # Start and finish the first; a second start loses ("already in a session").
    assert client.post(reverse("queueing:start", args=[visit.pk]), headers=htmx).status_code == 200
    assert client.post(reverse("queueing:start", args=[visit.pk])).status_code == 302
    assert client.post(reverse("queueing:finish", args=[visit.pk])).status_code == 302
    # A third student waits until the queue closes.
    third = {**add, "student_number": "21234568"}
    assert (
        client.post(reverse("queueing:add"), {**third, "confirm_duplicate": "on"}).status_code
        == 302
    )
    assert client.post(reverse("queueing:close"), headers=htmx).status_code == 200
    # A student number typed into a query string (never logged).
    client.get(reverse("queueing:desk"), {"q": STUDENT_NUMBER, "name": STUDENT_NAME})

    visit.refresh_from_db()
    another.refresh_from_db()
    assert visit.status == Visit.Status.FINISHED
    assert another.status == Visit.Status.REMOVED
    assert not Visit.objects.filter(status=Visit.Status.WAITING).exists()
    assert len(every_record) >= 15, "the flow should have logged each request"
    for record in every_record:
        text = everything_in(record)
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} in a {record.name} record: {text[:500]}"


def test_it_would_notice_a_leak(every_record):
    # The check above must be able to fail: a record with a name in its extra fields.
    logging.getLogger("resq.test").info("visit added", extra={"who": STUDENT_NAME})

    [record] = [r for r in every_record if r.name == "resq.test"]
    assert "Zoë" in everything_in(record)
    assert "Secretname" in json.dumps(json.loads(formatter("json").format(record)))
