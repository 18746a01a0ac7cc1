from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from itertools import product

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.tests.helpers import pass_two_factor
from queueing.models import Board, EnquiryType, StaffingChange, Team, Visit, VisitEvent
from queueing.tests.factories import EnquiryTypeFactory, TeamFactory, VisitFactory, db_state

pytestmark = pytest.mark.django_db


class _FormData(HTMLParser):
    """What a browser would submit from the form with the given id, as rendered."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "image", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            default = "on" if kind == "checkbox" else ""
            self.data.setdefault(name, []).append(attrs.get("value") or default)
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in attrs:
            self.data[self._select].append(attrs.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = [""]

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][-1] += data


def form_data(response, form_id: str) -> dict[str, list[str] | str]:
    parser = _FormData(form_id)
    parser.feed(response.text)
    return dict(parser.data)


def local_split(value: datetime | None) -> tuple[str, str]:
    if value is None:
        return "", ""
    local = timezone.localtime(value)
    return local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S")


def with_times(data: dict, **times: datetime | None) -> dict:
    for name, value in times.items():
        data[f"{name}_0"], data[f"{name}_1"] = local_split(value)
    return data


@pytest.fixture
def board():
    Board.objects.get_or_create(pk=1)
    return lambda: Board.current_version()


def change_url(visit: Visit) -> str:
    return reverse("admin:queueing_visit_change", args=[visit.pk])


def edit_form(client, visit: Visit) -> dict:
    response = client.get(change_url(visit))
    assert response.status_code == 200
    return form_data(response, "visit_form")


# --- the visit list ----------------------------------------------------------------


def test_it_lists_visits_with_local_times_and_durations(manager_client):
    arrived = datetime(2026, 3, 2, 2, 15, tzinfo=UTC)  # 10:15 in Perth
    VisitFactory(
        student_name="Zoë Ng",
        unit_code="CITS3200",
        arrived_at=arrived,
        started_at=arrived + timedelta(minutes=12, seconds=30),
        ended_at=arrived + timedelta(minutes=40),
        status=Visit.Status.FINISHED,
        outcome=Visit.Outcome.FINISHED,
    )
    response = manager_client.get(reverse("admin:queueing_visit_changelist"))
    assert response.status_code == 200
    [row] = response.context["cl"].result_list
    model_admin = response.context["cl"].model_admin
    assert model_admin.arrived(row) == "Mon 2 Mar 2026, 10:15"
    assert (model_admin.wait_minutes(row), model_admin.session_minutes(row)) == (12, 27)
    for text in ["Zoë Ng", "CITS3200", "STUDYSmarter", "Essay", "Wait (min)", "Session (min)"]:
        assert text in response.text


def test_it_counts_the_wait_of_a_waiting_student_up_to_now(manager_client):
    VisitFactory(arrived_at=timezone.now() - timedelta(minutes=25))
    response = manager_client.get(reverse("admin:queueing_visit_changelist"))
    [row] = response.context["cl"].result_list
    model_admin = response.context["cl"].model_admin
    assert (model_admin.wait_minutes(row), model_admin.session_minutes(row)) == (25, None)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "CITS1001"}, {"Ada"}),
        ({"q": "21999"}, {"Bo"}),
        ({"q": "cai"}, {"Cai"}),
        ({"status__exact": "finished"}, {"Bo"}),
        ({"outcome__exact": "no_show"}, {"Cai"}),
        ({"team__id__exact": "librarian"}, {"Cai"}),
        ({"enquiry_type__id__exact": "grammar"}, {"Bo"}),
        ({"arrived_at__year": "2025"}, {"Ada"}),
    ],
)
def test_it_filters_and_searches_visits(manager_client, query, expected):
    librarian = Team.objects.get(slug="librarian")
    grammar = EnquiryType.objects.get(name="Grammar")
    now = timezone.now()
    VisitFactory(student_name="Ada", unit_code="CITS1001", arrived_at=now.replace(year=2025))
    VisitFactory(
        student_name="Bo",
        student_number="21999000",
        enquiry_type=grammar,
        status=Visit.Status.FINISHED,
        outcome=Visit.Outcome.FINISHED,
        started_at=now,
        ended_at=now,
    )
    VisitFactory(
        student_name="Cai",
        team=librarian,
        status=Visit.Status.REMOVED,
        outcome=Visit.Outcome.NO_SHOW,
        ended_at=now,
    )
    ids = {"librarian": librarian.pk, "grammar": grammar.pk}
    query = {key: ids.get(value, value) for key, value in query.items()}
    response = manager_client.get(reverse("admin:queueing_visit_changelist"), query)
    assert response.status_code == 200
    assert {v.student_name for v in response.context["cl"].result_list} == expected


def test_it_filters_visits_by_arrival_day_in_local_time(manager_client):
    # 23:30 UTC on 1 March is 07:30 on 2 March in Perth.
    VisitFactory(student_name="Early", arrived_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    VisitFactory(student_name="Day before", arrived_at=datetime(2026, 3, 1, 10, 0, tzinfo=UTC))
    response = manager_client.get(
        reverse("admin:queueing_visit_changelist"),
        {"arrived_at__day": "2", "arrived_at__month": "3", "arrived_at__year": "2026"},
    )
    assert response.status_code == 200
    assert [v.student_name for v in response.context["cl"].result_list] == ["Early"]


@pytest.mark.parametrize("visits", [3, 30])
def test_it_lists_visits_in_a_fixed_number_of_queries(
    manager_client, django_assert_max_num_queries, visits
):
    librarian = Team.objects.get(slug="librarian")
    for n in range(visits):
        VisitFactory(team=librarian if n % 2 else Team.objects.get(slug="studysmarter"))
    # One of them is the two-factor check that admin needs.
    with django_assert_max_num_queries(11):
        response = manager_client.get(reverse("admin:queueing_visit_changelist"))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == visits


def test_it_does_not_offer_adding_visits_in_admin(manager_client):
    response = manager_client.get(reverse("admin:queueing_visit_add"))
    assert response.status_code == 403
    assert not Visit.objects.exists()


# --- the visit's history -------------------------------------------------------------


def test_it_shows_the_visit_history_read_only(manager_client, leader):
    visit = Visit.add(
        by=leader,
        student_name="Zoë Ng",
        student_number="21234567",
        team=Team.objects.get(slug="studysmarter"),
        enquiry_type=EnquiryType.objects.get(name="Essay"),
    )
    visit.start_session(by=leader, add_staff=True)
    response = manager_client.get(change_url(visit))
    assert response.status_code == 200
    [inline] = response.context["inline_admin_formsets"]
    assert inline.opts.model is VisitEvent
    assert not (
        inline.has_add_permission or inline.has_change_permission or inline.has_delete_permission
    )
    for text in ["Added to queue", "Session started", "Waiting → In session", "Lee"]:
        assert text in response.text
    assert "events-0-DELETE" not in response.text
    assert "Add another history event" not in response.text
    assert not admin.site.is_registered(VisitEvent)
    assert not admin.site.is_registered(Board)


# --- corrections ---------------------------------------------------------------------


def test_it_records_a_managers_correction_and_bumps_the_board(manager_client, manager, board):
    visit = VisitFactory(student_name="Zoe Ng", unit_code="CITS3200")
    data = edit_form(manager_client, visit)
    version = board()
    data.update(student_name="Zoë Ng", unit_code="cits 3001", enquiry_type=["2"])
    response = manager_client.post(change_url(visit), data)
    assert response.status_code == 302
    visit.refresh_from_db()
    assert (visit.student_name, visit.unit_code, visit.enquiry_type_id) == ("Zoë Ng", "CITS3001", 2)
    event = VisitEvent.objects.get(visit=visit)
    assert (event.action, event.by, event.from_status, event.to_status) == (
        "corrected",
        manager,
        "waiting",
        "waiting",
    )
    assert event.detail == {
        "student_name": ["Zoe Ng", "Zoë Ng"],
        "unit_code": ["CITS3200", "CITS3001"],
        "enquiry_type": [1, 2],
    }
    assert board() == version + 1
    history = manager_client.get(change_url(visit)).text
    assert "Student name: Zoe Ng → Zoë Ng" in history
    assert "Enquiry type: Essay → Grammar" in history


def test_it_records_nothing_when_nothing_changed(manager_client, board):
    visit = VisitFactory(arrived_at=timezone.now() - timedelta(seconds=90.123456))
    version = board()
    response = manager_client.post(change_url(visit), edit_form(manager_client, visit))
    assert response.status_code == 302
    assert not VisitEvent.objects.exists()
    assert board() == version
    arrived = visit.arrived_at
    visit.refresh_from_db()
    assert visit.arrived_at == arrived


def test_it_corrects_a_status_with_its_outcome_and_times(manager_client, manager, leader):
    arrived = timezone.now() - timedelta(hours=1)
    visit = VisitFactory(
        arrived_at=arrived,
        status=Visit.Status.REMOVED,
        outcome=Visit.Outcome.NO_SHOW,
        ended_at=arrived + timedelta(minutes=30),
        ended_by=leader,
    )
    data = with_times(
        edit_form(manager_client, visit),
        started_at=arrived + timedelta(minutes=5),
        ended_at=arrived + timedelta(minutes=30),
    )
    data.update(status="finished", outcome="finished")
    response = manager_client.post(change_url(visit), data)
    assert response.status_code == 302
    visit.refresh_from_db()
    assert (visit.status, visit.outcome, visit.ended_by) == ("finished", "finished", leader)
    assert visit.started_at == (arrived + timedelta(minutes=5)).replace(microsecond=0)
    event = VisitEvent.objects.get(visit=visit)
    assert (event.from_status, event.to_status) == ("removed", "finished")
    assert set(event.detail) == {"status", "outcome", "started_at"}


def test_it_clears_who_ended_a_session_with_its_end(manager_client, leader):
    Team.objects.filter(slug="studysmarter").update(available_staff=1)
    started = timezone.now() - timedelta(minutes=10)
    visit = VisitFactory(
        arrived_at=started,
        status=Visit.Status.FINISHED,
        outcome=Visit.Outcome.FINISHED,
        started_at=started,
        started_by=leader,
        ended_at=started + timedelta(minutes=5),
        ended_by=leader,
    )
    data = with_times(edit_form(manager_client, visit), ended_at=None)
    data.update(status="in_session", outcome="")
    response = manager_client.post(change_url(visit), data)
    assert response.status_code == 302
    visit.refresh_from_db()
    assert (visit.status, visit.ended_at, visit.ended_by, visit.started_by) == (
        "in_session",
        None,
        None,
        leader,
    )


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {"status": "finished"},
            ["A finished session needs its start time.", "A finished session needs its end time."],
        ),
        ({"status": "removed", "outcome": "finished", "ended": True}, ["needs a reason"]),
        ({"outcome": "no_show"}, ["A waiting student has no outcome yet"]),
        ({"status": "in_session", "ended": True}, ["A session in progress has not ended"]),
    ],
)
def test_it_refuses_an_inconsistent_edit_with_a_form_error(manager_client, board, changes, errors):
    Team.objects.filter(slug="studysmarter").update(available_staff=5)
    visit = VisitFactory(arrived_at=timezone.now() - timedelta(minutes=30))
    data = edit_form(manager_client, visit)
    if changes.pop("ended", False):
        with_times(data, started_at=timezone.now() - timedelta(minutes=20))
        with_times(data, ended_at=timezone.now() - timedelta(minutes=5))
    data.update(changes)
    version = board()
    response = manager_client.post(change_url(visit), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert "needs the outcome and times to match" in response.text
    for error in errors:
        assert error in response.text
    visit.refresh_from_db()
    assert (visit.status, visit.outcome, visit.started_at, visit.ended_at) == (
        "waiting",
        "",
        None,
        None,
    )
    assert not VisitEvent.objects.exists()
    assert board() == version


def test_it_refuses_times_out_of_order(manager_client):
    arrived = timezone.now() - timedelta(hours=1)
    visit = VisitFactory(arrived_at=arrived)
    data = with_times(
        edit_form(manager_client, visit),
        started_at=arrived + timedelta(minutes=20),
        ended_at=arrived + timedelta(minutes=10),
    )
    data.update(status="finished", outcome="finished")
    response = manager_client.post(change_url(visit), data)
    assert response.status_code == 200
    assert "A session cannot end before it started." in response.text
    visit.refresh_from_db()
    assert visit.status == "waiting"


@pytest.mark.parametrize(
    ("field", "typed", "error"),
    [
        (
            "student_name",
            "=1+1",
            "Student Name can hold letters, spaces, hyphens and apostrophes only.",
        ),
        ("student_number", "1234", "Enter the Student Number as 8 digits, e.g. 21234567."),
        ("unit_code", "CITS３２００", "Enter a Unit Code like CITS3200, or leave it empty."),
    ],
)
def test_it_holds_a_correction_to_the_desks_rules_for_student_details(
    manager_client, field, typed, error
):
    visit = VisitFactory()
    data = edit_form(manager_client, visit)
    data[field] = typed
    before = db_state()

    response = manager_client.post(change_url(visit), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field] == [error]
    assert db_state() == before


def test_it_corrects_an_imported_visit_without_rewriting_what_was_kept_as_written(
    manager_client,
):
    # The old system's import keeps names, numbers and unit codes the desk refuses.
    visit = VisitFactory(student_name="+61 trick", student_number="=A1+1", unit_code="cits 32")
    data = edit_form(manager_client, visit)
    data["enquiry_type"] = EnquiryType.objects.exclude(pk=visit.enquiry_type_id).first().pk

    response = manager_client.post(change_url(visit), data)

    assert response.status_code == 302
    visit.refresh_from_db()
    kept = (visit.student_name, visit.student_number, visit.unit_code)
    assert (visit.enquiry_type_id, kept) == (
        data["enquiry_type"],
        ("+61 trick", "=A1+1", "cits 32"),
    )
    data = edit_form(manager_client, visit) | {"student_name": "=2+2"}
    errors = manager_client.post(change_url(visit), data).context["adminform"].form.errors
    assert list(errors) == ["student_name"]


def test_it_refuses_a_session_beyond_the_teams_staff(manager_client):
    Team.objects.filter(slug="studysmarter").update(available_staff=0)
    visit = VisitFactory(arrived_at=timezone.now() - timedelta(minutes=10))
    data = with_times(edit_form(manager_client, visit), started_at=timezone.now())
    data.update(status="in_session")
    response = manager_client.post(change_url(visit), data)
    assert response.status_code == 200
    assert "No STUDYSmarter staff are available. Add a staff member on the desk first." in (
        response.text
    )
    visit.refresh_from_db()
    assert visit.status == "waiting"


def test_it_refuses_a_correction_when_the_desk_moved_the_visit_meanwhile(
    manager_client, other_leader
):
    visit = VisitFactory()
    data = edit_form(manager_client, visit)
    visit.start_session(by=other_leader, add_staff=True)
    data.update(student_name="Someone Else")
    response = manager_client.post(change_url(visit), data)
    assert response.status_code == 200
    assert "This visit changed while you were editing it (Session started by Sam" in response.text
    visit.refresh_from_db()
    assert (visit.status, visit.started_by) == ("in_session", other_leader)
    assert visit.student_name != "Someone Else"
    assert not VisitEvent.objects.filter(action="corrected").exists()


def test_it_explains_exactly_what_the_database_constraint_refuses():
    constraint = next(c for c in Visit._meta.constraints if c.name == "visit_state_consistent")
    now = timezone.now()
    team, enquiry_type = Team.objects.first(), EnquiryType.objects.first()
    outcomes = ["", *Visit.Outcome.values]
    for status, started, ended, outcome in product(
        Visit.Status.values, [None, now], [None, now], outcomes
    ):
        visit = Visit(
            team=team,
            enquiry_type=enquiry_type,
            status=status,
            started_at=started,
            ended_at=ended,
            outcome=outcome,
        )
        try:
            constraint.validate(Visit, visit)
            allowed = True
        except ValidationError:
            allowed = False
        assert allowed == (not visit.state_problems()), (status, started, ended, outcome)


def test_it_bumps_the_board_when_a_visit_is_deleted(manager_client, board):
    visit = VisitFactory()
    version = board()
    response = manager_client.post(
        reverse("admin:queueing_visit_delete", args=[visit.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Visit.objects.exists()
    assert board() == version + 1


# --- teams and enquiry types ---------------------------------------------------------


def _action(client, model: str, action: str, *objs):
    return client.post(
        reverse(f"admin:queueing_{model}_changelist"),
        {"action": action, "_selected_action": [obj.pk for obj in objs]},
    )


def test_it_deactivates_and_activates_teams(manager_client, board):
    team = TeamFactory(name="Maths", slug="maths")
    version = board()
    response = _action(manager_client, "team", "deactivate", team)
    assert response.status_code == 302
    team.refresh_from_db()
    assert not team.is_active
    assert board() == version + 1
    response = _action(manager_client, "team", "activate", team)
    assert response.status_code == 302
    team.refresh_from_db()
    assert team.is_active
    assert board() == version + 2


def test_it_keeps_a_team_with_waiting_students_active(manager_client, board):
    busy = Team.objects.get(slug="studysmarter")
    idle = TeamFactory(name="Maths", slug="maths")
    VisitFactory(team=busy)
    response = _action(manager_client, "team", "deactivate", busy, idle)
    assert response.status_code == 302
    page = manager_client.get(response["Location"])
    assert "Still active, with students waiting or in a session: STUDYSmarter." in page.text
    assert set(Team.objects.filter(is_active=True).values_list("slug", flat=True)) == {
        "studysmarter",
        "librarian",
    }


def test_it_deactivates_and_activates_enquiry_types(manager_client):
    essay = EnquiryType.objects.get(name="Essay")
    VisitFactory(enquiry_type=essay)
    response = _action(manager_client, "enquirytype", "deactivate", essay)
    assert response.status_code == 302
    essay.refresh_from_db()
    assert not essay.is_active
    response = _action(manager_client, "enquirytype", "activate", essay)
    assert response.status_code == 302
    essay.refresh_from_db()
    assert essay.is_active


def test_it_orders_and_deactivates_teams_in_the_list(manager_client, board):
    url = reverse("admin:queueing_team_changelist")
    data = form_data(manager_client.get(url), "changelist-form")
    librarian = Team.objects.get(slug="librarian")
    row = next(
        k[: -len("-id")] for k, v in data.items() if k.endswith("-id") and v == [str(librarian.pk)]
    )
    data[f"{row}-display_order"] = "0"
    data.pop(f"{row}-is_active")
    data["_save"] = "Save"
    version = board()
    response = manager_client.post(url, data)
    assert response.status_code == 302
    librarian.refresh_from_db()
    assert (librarian.display_order, librarian.is_active) == (0, False)
    assert board() > version


def test_it_refuses_to_deactivate_a_busy_team_in_the_list(manager_client):
    url = reverse("admin:queueing_team_changelist")
    team = Team.objects.get(slug="studysmarter")
    VisitFactory(team=team)
    data = form_data(manager_client.get(url), "changelist-form")
    row = next(
        k[: -len("-id")] for k, v in data.items() if k.endswith("-id") and v == [str(team.pk)]
    )
    data.pop(f"{row}-is_active")
    data["_save"] = "Save"
    response = manager_client.post(url, data)
    assert response.status_code == 200
    assert "STUDYSmarter has 1 student waiting or in a session." in response.text
    team.refresh_from_db()
    assert team.is_active


@pytest.mark.parametrize(
    ("model", "get"),
    [
        ("team", lambda: Team.objects.get(slug="studysmarter")),
        ("enquirytype", lambda: EnquiryType.objects.get(name="Essay")),
    ],
)
def test_it_refuses_to_delete_what_visits_refer_to(manager_client, model, get):
    obj = get()
    VisitFactory()
    url = reverse(f"admin:queueing_{model}_delete", args=[obj.pk])
    response = manager_client.get(url)
    assert response.status_code == 200
    assert "would require deleting the following protected related objects" in response.text
    response = manager_client.post(url, {"post": "yes"})
    assert response.status_code == 200
    assert type(obj).objects.filter(pk=obj.pk).exists()
    response = _action(manager_client, model, "delete_selected", obj)
    assert response.status_code == 200
    assert "protected related objects" in response.text
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_it_lists_the_visits_that_keep_a_staffed_team(manager_client, leader):
    team = Team.objects.get(slug="studysmarter")
    team.change_staffing(+1, by=leader)
    VisitFactory(student_name="Zoë Ng", team=team)
    url = reverse("admin:queueing_team_delete", args=[team.pk])
    response = manager_client.get(url)
    assert response.status_code == 200
    assert "would require deleting the following protected related objects" in response.text
    assert "Zoë Ng" in response.text
    assert "have permission to delete" not in response.text
    assert manager_client.post(url, {"post": "yes"}).status_code == 200
    assert Team.objects.filter(pk=team.pk).exists()
    assert StaffingChange.objects.filter(team=team).exists()


def test_it_deletes_a_team_that_never_served_anyone_with_its_staffing(
    manager_client, leader, board
):
    team = TeamFactory(name="Maths", slug="maths", available_staff=0)
    team.change_staffing(+1, by=leader)
    version = board()
    url = reverse("admin:queueing_team_delete", args=[team.pk])
    assert "Staffing change" in manager_client.get(url).text
    response = manager_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Team.objects.filter(pk=team.pk).exists()
    assert not StaffingChange.objects.exists()
    assert board() == version + 1


def test_it_deletes_an_unused_enquiry_type(manager_client, board):
    unused = EnquiryTypeFactory(name="Typo")
    version = board()
    url = reverse("admin:queueing_enquirytype_delete", args=[unused.pk])
    response = manager_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not EnquiryType.objects.filter(pk=unused.pk).exists()
    assert board() == version + 1


# --- staffing history ----------------------------------------------------------------


def test_it_shows_the_staffing_history_read_only(manager_client, leader):
    team = Team.objects.get(slug="librarian")
    team.change_staffing(+1, by=leader)
    change = StaffingChange.objects.get()
    response = manager_client.get(reverse("admin:queueing_staffingchange_changelist"))
    assert response.status_code == 200
    assert "Librarian" in response.text
    assert manager_client.get(reverse("admin:queueing_staffingchange_add")).status_code == 403
    url = reverse("admin:queueing_staffingchange_change", args=[change.pk])
    assert manager_client.get(url).status_code == 200
    assert manager_client.post(url, {"available": "9", "delta": "9"}).status_code == 403
    delete_url = reverse("admin:queueing_staffingchange_delete", args=[change.pk])
    assert manager_client.post(delete_url, {"post": "yes"}).status_code == 403
    change.refresh_from_db()
    assert (change.available, change.delta) == (1, 1)


@pytest.mark.parametrize("changes", [2, 20])
def test_it_lists_the_staffing_history_in_a_fixed_number_of_queries(
    manager_client, leader, other_leader, django_assert_max_num_queries, changes
):
    teams = list(Team.objects.all())
    for n in range(changes):
        teams[n % 2].change_staffing(+1, by=leader if n % 3 else other_leader)
    # One of them is the two-factor check that admin needs.
    with django_assert_max_num_queries(10):
        response = manager_client.get(reverse("admin:queueing_staffingchange_changelist"))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == changes


def test_it_filters_the_staffing_history_by_team(manager_client, leader):
    librarian = Team.objects.get(slug="librarian")
    librarian.change_staffing(+1, by=leader)
    Team.objects.get(slug="studysmarter").change_staffing(+1, by=leader)
    response = manager_client.get(
        reverse("admin:queueing_staffingchange_changelist"), {"team__id__exact": librarian.pk}
    )
    assert response.status_code == 200
    assert [c.team for c in response.context["cl"].result_list] == [librarian]


# --- who may use admin ---------------------------------------------------------------


def test_it_names_the_site(manager_client):
    response = manager_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "ResQ administration" in response.text


@pytest.mark.parametrize("user", ["leader", "coordinator"])
def test_it_refuses_admin_to_staff_without_staff_status(client, request, user):
    # Signed in already, so a login page would only loop back here: a plain refusal.
    client.force_login(request.getfixturevalue(user))
    response = client.get(reverse("admin:queueing_visit_changelist"))
    assert response.status_code == 403
    assert "Student" not in response.text


def test_it_lets_a_staff_coordinator_read_but_not_change_visits(client, coordinator):
    coordinator.is_staff = True
    coordinator.save()
    client.force_login(coordinator)
    pass_two_factor(client, coordinator)
    visit = VisitFactory(student_name="Zoë Ng")
    response = client.get(change_url(visit))
    assert response.status_code == 200
    assert 'name="_save"' not in response.text
    assert "seen_event" not in response.text
    response = client.post(change_url(visit), {"student_name": "Someone Else"})
    assert response.status_code == 403
    visit.refresh_from_db()
    assert visit.student_name == "Zoë Ng"
    assert not VisitEvent.objects.exists()
