"""Bad input at the desk: every refusal says what to fix, and writes nothing.

Each test checks what the user sees, then that the database is exactly as before:
visits (every column), events, staffing and the board version. A plain POST and an
htmx request answer differently (a page or a redirect, against a fragment with the
messages region out of band), so both are checked where they differ.
"""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from queueing.models import MAX_STAFF, EnquiryType, Team, TransitionError, Visit
from queueing.tests.factories import EnquiryTypeFactory, TeamFactory, VisitFactory, db_state

pytestmark = pytest.mark.django_db

NUMBER_FORMAT = "Enter the Student Number as 8 digits, e.g. 21234567."
NAME_FORMAT = "Student Name can hold letters, spaces, hyphens and apostrophes only."
UNIT_CODE_FORMAT = "Enter a Unit Code like CITS3200, or leave it empty."
TEAM_CHOICE = "Choose one of the teams listed."
ENQUIRY_TYPE_CHOICE = "Choose one of the enquiry types listed."
STAFFING_BUTTONS = "Use the − and + buttons to change staffing."

VISIT_ACTIONS = ["start", "finish", "undo_start", "undo_end", "remove", "edit"]
POST_ONLY = ["add", "start", "finish", "undo_start", "undo_end", "staffing", "student_lookup"]
GET_ONLY = ["desk", "poll"]


@pytest.fixture
def team() -> Team:
    return Team.objects.get(slug="studysmarter")


@pytest.fixture
def essay() -> EnquiryType:
    return EnquiryType.objects.get(name="Essay")


@pytest.fixture
def other_client(other_leader) -> Client:
    client = Client()
    client.force_login(other_leader)
    return client


@pytest.fixture
def form_data(team, essay) -> dict:
    return {
        "student_name": "Zoë Ng",
        "student_number": "21234567",
        "unit_code": "CITS3200",
        "team": str(team.pk),
        "enquiry_type": str(essay.pk),
    }


def staff(team: Team, count: int) -> None:
    Team.objects.filter(pk=team.pk).update(available_staff=count)
    team.refresh_from_db()


def shows(response, text: str) -> bool:
    return escape(text) in response.content.decode()


def add(client, data: dict, *, htmx: bool = False):
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(reverse("queueing:add"), data, headers=headers)


def assert_form_refused(response, *, htmx: bool, errors: list[str]) -> None:
    """The add form again with its errors: the form alone for htmx, the page otherwise."""
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="add-form"' in body
    if htmx:
        assert 'id="board"' not in body
        assert "<html" not in body
    else:
        assert 'id="board"' in body
    for error in errors:
        assert shows(response, error), error


def oob_messages(response) -> str:
    """The messages region an htmx action sends out of band beside the board."""
    body = response.content.decode()
    match = re.search(r'<div id="messages"[^>]*hx-swap-oob="true"[^>]*>(.*?)</div>\s*$', body, re.S)
    assert match, "no out-of-band #messages region"
    return match[1]


def act(client, action: str, *, htmx: bool, data: dict | None = None, **kwargs):
    """POST an action; return the HTML where its message shows."""
    url = reverse(f"queueing:{action}", kwargs=kwargs)
    if htmx:
        response = client.post(url, data or {}, headers={"HX-Request": "true"})
        assert response.status_code == 200
        assert 'id="board"' in response.content.decode()
        return oob_messages(response)
    response = client.post(url, data or {}, follow=True)
    assert response.redirect_chain == [(reverse("queueing:desk"), 302)]
    return response.content.decode()


both = pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])


# --- the add form -----------------------------------------------------------------


@both
def test_it_refuses_an_empty_form(leader_client, htmx):
    before = db_state()

    response = add(leader_client, {}, htmx=htmx)

    assert_form_refused(
        response,
        htmx=htmx,
        errors=[
            "Enter the Student Name.",
            "Enter the Student Number.",
            "Choose a Team.",
            "Choose an Enquiry Type.",
        ],
    )
    assert db_state() == before


@both
def test_it_refuses_fields_of_blanks_only(leader_client, form_data, htmx):
    before = db_state()

    response = add(
        leader_client, {**form_data, "student_name": "   ", "student_number": " \t "}, htmx=htmx
    )

    assert_form_refused(
        response, htmx=htmx, errors=["Enter the Student Name.", "Enter the Student Number."]
    )
    assert db_state() == before


@both
def test_it_refuses_a_name_longer_than_100_characters(leader_client, form_data, htmx):
    before = db_state()

    response = add(leader_client, {**form_data, "student_name": "A" * 101}, htmx=htmx)

    assert_form_refused(
        response, htmx=htmx, errors=["Ensure this value has at most 100 characters (it has 101)."]
    )
    assert db_state() == before


def test_it_accepts_a_name_of_exactly_100_characters(leader_client, form_data):
    response = add(leader_client, {**form_data, "student_name": "A" * 100})

    assert response.status_code == 302
    assert Visit.objects.get().student_name == "A" * 100


@both
def test_it_refuses_a_student_number_longer_than_the_field(leader_client, form_data, htmx):
    before = db_state()

    response = add(leader_client, {**form_data, "student_number": "1" * 21}, htmx=htmx)

    assert_form_refused(
        response, htmx=htmx, errors=["Ensure this value has at most 20 characters (it has 21)."]
    )
    assert db_state() == before


@both
@pytest.mark.parametrize(
    "number",
    ["1234", "abcdefgh", "123456789", "2123-4567", "2123456x", "-2123456", "2.12e+07", "0x1A2B3C"],
)
def test_it_refuses_a_wrongly_formatted_student_number(leader_client, form_data, number, htmx):
    before = db_state()

    response = add(leader_client, {**form_data, "student_number": number}, htmx=htmx)

    assert_form_refused(response, htmx=htmx, errors=[NUMBER_FORMAT])
    assert db_state() == before


@both
@pytest.mark.parametrize(
    "number",
    ["２１２３４５６７", "٢١٢٣٤٥٦٧"],
    ids=["full-width", "arabic-indic"],
)
def test_it_refuses_digits_other_than_0_to_9(leader_client, form_data, number, htmx):
    # Decision: a student number is the eight ASCII digits printed on the student card.
    # Other digits are refused with the usual message rather than silently converted.
    before = db_state()

    response = add(leader_client, {**form_data, "student_number": number}, htmx=htmx)

    assert_form_refused(response, htmx=htmx, errors=[NUMBER_FORMAT])
    assert db_state() == before


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("21234567", "21234567"), ("2123 4567", "21234567"), (" 00123456 ", "00123456")],
)
def test_it_keeps_the_student_number_as_text(leader_client, form_data, typed, stored):
    response = add(leader_client, {**form_data, "student_number": typed})

    assert response.status_code == 302
    assert Visit.objects.get().student_number == stored


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("CITS 3200", "CITS3200"), ("cits3200", "CITS3200"), (" econ1101 ", "ECON1101"), ("", "")],
)
def test_it_normalises_the_unit_code(leader_client, form_data, typed, stored):
    response = add(leader_client, {**form_data, "unit_code": typed})

    assert response.status_code == 302
    assert Visit.objects.get().unit_code == stored


@both
@pytest.mark.parametrize("code", ["!!!", "<b>", "CITS", "3200", "C1TS3200", "=1+1", "CITS32000000"])
def test_it_refuses_a_unit_code_in_the_wrong_format(leader_client, form_data, code, htmx):
    before = db_state()

    response = add(leader_client, {**form_data, "unit_code": code}, htmx=htmx)

    assert_form_refused(response, htmx=htmx, errors=[UNIT_CODE_FORMAT])
    assert db_state() == before


def test_it_refuses_a_unit_code_with_full_width_digits(leader_client, form_data):
    before = db_state()

    response = add(leader_client, {**form_data, "unit_code": "CITS３２００"})

    assert_form_refused(response, htmx=False, errors=[UNIT_CODE_FORMAT])
    assert db_state() == before


@both
@pytest.mark.parametrize("forged", ["999999", "abc", "-1", "1.5", "1 OR 1=1"])
def test_it_refuses_a_forged_team(leader_client, form_data, forged, htmx):
    before = db_state()

    response = add(leader_client, {**form_data, "team": forged}, htmx=htmx)

    assert_form_refused(response, htmx=htmx, errors=[TEAM_CHOICE])
    assert db_state() == before


@both
def test_it_refuses_an_inactive_team(leader_client, form_data, htmx):
    retired = TeamFactory(name="Maths", slug="maths", is_active=False)
    before = db_state()

    response = add(leader_client, {**form_data, "team": str(retired.pk)}, htmx=htmx)

    assert_form_refused(response, htmx=htmx, errors=[TEAM_CHOICE])
    assert db_state() == before


@both
@pytest.mark.parametrize("forged", ["999999", "abc", "", "inactive"])
def test_it_refuses_a_forged_enquiry_type(leader_client, form_data, forged, htmx):
    if forged == "inactive":
        forged = str(EnquiryTypeFactory(name="Retired", is_active=False).pk)
    before = db_state()

    response = add(leader_client, {**form_data, "enquiry_type": forged}, htmx=htmx)

    expected = "Choose an Enquiry Type." if forged == "" else ENQUIRY_TYPE_CHOICE
    assert_form_refused(response, htmx=htmx, errors=[expected])
    assert db_state() == before


@both
@pytest.mark.parametrize(
    "name",
    [
        "<script>alert(1)</script>",
        "<b>Bob</b>",
        "Bob<",
        "Bob>",
        '"><img src=x onerror=alert(1)>',
        '=HYPERLINK("http://evil.example")',
        "+61 400 000 000",
        "@SUM(A1)",
        "-Bob",
        "Bob 2",
        "Bob_Smith",
        "Bob; DROP TABLE",
    ],
)
def test_it_refuses_markup_and_formulas_in_a_name(leader_client, form_data, name, htmx):
    before = db_state()

    response = add(leader_client, {**form_data, "student_name": name}, htmx=htmx)

    assert_form_refused(response, htmx=htmx, errors=[NAME_FORMAT])
    # What was typed comes back to fix, escaped: never as live markup.
    assert name not in response.content.decode() or "<" not in name
    assert db_state() == before


@both
@pytest.mark.parametrize(
    "name",
    ["O'Brien", "Zoë Ng", "José Álvarez-Peña", "Nguyễn Văn An", "김민준", "محمد", "J. Smith"],
)
def test_it_accepts_real_names_and_shows_them_escaped(leader_client, form_data, name, htmx):
    response = add(leader_client, {**form_data, "student_name": name}, htmx=htmx)

    assert response.status_code == (200 if htmx else 302)
    desk = leader_client.get(reverse("queueing:desk")).content.decode()
    assert f'<th scope="row">{escape(name)}</th>' in desk
    if "'" in name:
        assert name not in desk
    visit = Visit.objects.get()
    assert visit.student_name == name
    assert visit.events.get().action == "added"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("प्रिया शर्मा", "प्रिया शर्मा"), ("Zoe\u0308 Ng", "Zoë Ng")],
    ids=["devanagari", "decomposed"],
)
def test_it_accepts_names_with_combining_marks(leader_client, form_data, typed, stored):
    response = add(leader_client, {**form_data, "student_name": typed})

    assert response.status_code == 302
    assert Visit.objects.get().student_name == stored


def test_it_escapes_markup_already_in_the_database(leader_client):
    # Admin or an import might have let one through: the board still shows text.
    VisitFactory(student_name="<script>alert(1)</script>")

    response = leader_client.get(reverse("queueing:desk"))

    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


@both
def test_it_refuses_null_characters(leader_client, form_data, htmx):
    before = db_state()

    response = add(
        leader_client,
        {**form_data, "student_name": "Zo\x00ë", "student_number": "2123\x004567"},
        htmx=htmx,
    )

    assert_form_refused(response, htmx=htmx, errors=["Null characters are not allowed."])
    assert db_state() == before


def test_it_keeps_the_rules_for_student_details_on_the_visit_itself(leader):
    """Every form that writes a visit, the desk's and admin's, reaches them there."""
    visit = VisitFactory.build(
        student_name="=1+1", student_number="２１２３４５６７", unit_code="!!!", added_by=leader
    )

    with pytest.raises(ValidationError) as refused:
        visit.full_clean()

    assert refused.value.message_dict == {
        "student_name": [NAME_FORMAT],
        "student_number": [NUMBER_FORMAT],
        "unit_code": [UNIT_CODE_FORMAT],
    }


# --- duplicates -------------------------------------------------------------------


@both
def test_it_warns_about_a_student_already_waiting_and_writes_nothing(
    leader_client, form_data, htmx
):
    VisitFactory(student_name="Zoë Ng", student_number="21234567")
    before = db_state()

    response = add(leader_client, {**form_data, "student_number": "2123 4567"}, htmx=htmx)

    assert_form_refused(
        response,
        htmx=htmx,
        errors=[
            "Zoë Ng (21234567) is already waiting in the STUDYSmarter Queue. "
            "Add them again only if this is a second, separate enquiry."
        ],
    )
    assert 'name="confirm_duplicate" value="on"' in response.content.decode()
    assert ">Add anyway</button>" in response.content.decode()
    assert db_state() == before


def test_it_warns_about_a_student_in_a_session(leader_client, other_leader, form_data, team):
    staff(team, 1)
    visit = VisitFactory(student_name="Zoë Ng", student_number="21234567")
    visit.start_session(by=other_leader)
    before = db_state()

    response = add(leader_client, form_data)

    assert_form_refused(
        response,
        htmx=False,
        errors=["Zoë Ng (21234567) is already in a session with STUDYSmarter."],
    )
    assert db_state() == before


@both
def test_it_adds_a_duplicate_on_add_anyway(leader_client, form_data, htmx):
    first = VisitFactory(student_name="Zoë Ng", student_number="21234567")

    response = add(leader_client, {**form_data, "confirm_duplicate": "on"}, htmx=htmx)

    assert response.status_code == (200 if htmx else 302)
    second = Visit.objects.exclude(pk=first.pk).get()
    assert second.student_number == first.student_number
    assert second.events.count() == 1


def test_it_does_not_warn_about_a_student_seen_earlier(leader_client, leader, form_data):
    VisitFactory(student_number="21234567").remove(by=leader, outcome="cancelled")

    response = add(leader_client, form_data)

    assert response.status_code == 302
    assert Visit.objects.filter(status="waiting").count() == 1


# --- stale actions: another screen got there first ----------------------------------


@both
def test_it_names_who_started_a_visit_already(leader_client, other_leader, team, htmx):
    staff(team, 2)
    visit = VisitFactory(student_name="Zoë Ng")
    visit.start_session(by=other_leader)
    before = db_state()

    shown = act(leader_client, "start", htmx=htmx, pk=visit.pk)

    assert escape("Zoë Ng is already in a session, started by Sam.") in shown
    assert db_state() == before


@both
def test_it_refuses_to_finish_a_removed_visit(leader_client, other_leader, htmx):
    visit = VisitFactory(student_name="Zoë Ng")
    visit.remove(by=other_leader, outcome="no_show")
    before = db_state()

    shown = act(leader_client, "finish", htmx=htmx, pk=visit.pk)

    assert escape("Zoë Ng was already removed from the queue by Sam.") in shown
    assert db_state() == before


@both
def test_it_refuses_to_finish_a_waiting_visit(leader_client, htmx):
    visit = VisitFactory(student_name="Zoë Ng")
    before = db_state()

    shown = act(leader_client, "finish", htmx=htmx, pk=visit.pk)

    assert escape("Zoë Ng is waiting in the STUDYSmarter Queue now.") in shown
    assert db_state() == before


@both
def test_it_refuses_to_start_a_finished_visit(leader_client, other_leader, team, htmx):
    staff(team, 1)
    visit = VisitFactory(student_name="Zoë Ng")
    visit.start_session(by=other_leader)
    visit.finish(by=other_leader)
    before = db_state()

    shown = act(leader_client, "start", htmx=htmx, pk=visit.pk)

    assert escape("Zoë Ng's session was already finished by Sam.") in shown
    assert db_state() == before


@both
def test_it_refuses_to_remove_a_visit_in_a_session(leader_client, other_leader, team, htmx):
    staff(team, 1)
    visit = VisitFactory(student_name="Zoë Ng")
    visit.start_session(by=other_leader)
    before = db_state()

    shown = act(leader_client, "remove", htmx=htmx, data={"outcome": "cancelled"}, pk=visit.pk)

    assert escape("Zoë Ng is already in a session, started by Sam.") in shown
    assert db_state() == before


@both
def test_it_refuses_to_undo_a_start_that_was_never_made(leader_client, htmx):
    visit = VisitFactory(student_name="Zoë Ng")
    before = db_state()

    shown = act(leader_client, "undo_start", htmx=htmx, pk=visit.pk)

    assert escape("Zoë Ng is waiting in the STUDYSmarter Queue now.") in shown
    assert db_state() == before


@both
def test_it_refuses_to_undo_the_end_of_a_waiting_visit(leader_client, htmx):
    visit = VisitFactory(student_name="Zoë Ng")
    before = db_state()

    shown = act(leader_client, "undo_end", htmx=htmx, pk=visit.pk)

    assert escape("Zoë Ng is waiting in the STUDYSmarter Queue now.") in shown
    assert db_state() == before


@pytest.mark.parametrize("ending", ["finish", "remove"])
def test_it_refuses_an_undo_once_the_window_has_closed(other_leader, team, ending):
    # The desk answers 404 for a visit past its window (it is off the board); one
    # loaded just before the window closed is refused by the conditional write.
    staff(team, 1)
    visit = VisitFactory(student_name="Zoë Ng")
    if ending == "finish":
        visit.start_session(by=other_leader)
        visit.finish(by=other_leader)
    else:
        visit.remove(by=other_leader, outcome="cancelled")
    loaded = Visit.objects.get(pk=visit.pk)
    window = timedelta(seconds=settings.RESQ_UNDO_WINDOW_SECONDS)
    Visit.objects.filter(pk=visit.pk).update(
        ended_at=visit.ended_at - window - timedelta(seconds=1)
    )
    before = db_state()

    with pytest.raises(TransitionError):
        loaded.undo_end(by=other_leader)

    assert db_state() == before


def test_it_still_undoes_just_inside_the_undo_window(leader_client, other_leader):
    visit = VisitFactory(student_name="Zoë Ng")
    visit.remove(by=other_leader, outcome="cancelled")
    window = timedelta(seconds=settings.RESQ_UNDO_WINDOW_SECONDS)
    Visit.objects.filter(pk=visit.pk).update(
        ended_at=visit.ended_at - window + timedelta(seconds=5)
    )

    shown = act(leader_client, "undo_end", htmx=False, pk=visit.pk)

    assert escape("Zoë Ng is back in the STUDYSmarter Queue.") in shown
    visit.refresh_from_db()
    assert (visit.status, visit.ended_at, visit.outcome) == ("waiting", None, "")


@both
def test_it_refuses_a_start_when_every_staff_member_is_busy(
    leader_client, other_leader, team, htmx
):
    staff(team, 1)
    VisitFactory().start_session(by=other_leader)
    visit = VisitFactory(student_name="Zoë Ng")
    before = db_state()

    shown = act(leader_client, "start", htmx=htmx, pk=visit.pk)

    assert (
        escape(
            "The only STUDYSmarter staff member available is in a session. "
            "Add a staff member to start another."
        )
        in shown
    )
    # The message offers the way out: one more staff member, and start.
    assert 'name="add_staff" value="1"' in shown
    assert reverse("queueing:start", kwargs={"pk": visit.pk}) in shown
    assert db_state() == before


@both
def test_it_refuses_a_start_when_the_team_has_no_staff(leader_client, team, htmx):
    staff(team, 0)
    visit = VisitFactory(student_name="Zoë Ng")
    before = db_state()

    shown = act(leader_client, "start", htmx=htmx, pk=visit.pk)

    assert "No STUDYSmarter staff are available. Add a staff member to start." in shown
    assert db_state() == before


def test_it_refuses_add_staff_and_start_at_the_staff_limit(leader_client, other_leader, team):
    staff(team, MAX_STAFF)
    for _ in range(MAX_STAFF):
        VisitFactory().start_session(by=other_leader)
    visit = VisitFactory(student_name="Zoë Ng")
    before = db_state()

    shown = act(leader_client, "start", htmx=True, data={"add_staff": "1"}, pk=visit.pk)

    assert f"STUDYSmarter cannot have more than {MAX_STAFF} staff." in shown
    assert db_state() == before


# --- remove and edit dialogs --------------------------------------------------------


@both
@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        ("", "Choose why the student is leaving the queue."),
        ("finished", "Choose one of the reasons listed."),
        ("bogus", "Choose one of the reasons listed."),
        ("<script>", "Choose one of the reasons listed."),
    ],
)
def test_it_refuses_a_removal_without_a_listed_reason(leader_client, outcome, error, htmx):
    visit = VisitFactory(student_name="Zoë Ng")
    before = db_state()
    headers = {"HX-Request": "true"} if htmx else {}

    response = leader_client.post(
        reverse("queueing:remove", kwargs={"pk": visit.pk}), {"outcome": outcome}, headers=headers
    )

    assert response.status_code == 200
    assert shows(response, error)
    assert "<dialog" in response.text
    if htmx:
        # The dialog re-renders in place, not over the board.
        assert response["HX-Retarget"] == "#dialog"
        assert response["HX-Reswap"] == "innerHTML"
        assert 'id="board"' not in response.text
    assert db_state() == before


@both
def test_it_refuses_a_correction_with_bad_details(leader_client, essay, htmx):
    visit = VisitFactory(student_name="Zoë Ng")
    before = db_state()
    headers = {"HX-Request": "true"} if htmx else {}

    response = leader_client.post(
        reverse("queueing:edit", kwargs={"pk": visit.pk}),
        {
            "student_name": "<script>alert(1)</script>",
            "student_number": "1234",
            "unit_code": "!!!",
            "team": "999999",
            "enquiry_type": str(essay.pk),
        },
        headers=headers,
    )

    assert response.status_code == 200
    for error in (NAME_FORMAT, NUMBER_FORMAT, UNIT_CODE_FORMAT, TEAM_CHOICE):
        assert shows(response, error), error
    assert "<script>alert(1)</script>" not in response.text
    if htmx:
        assert response["HX-Retarget"] == "#dialog"
    assert db_state() == before


def test_it_ignores_a_forged_team_for_a_visit_in_a_session(leader_client, other_leader, team):
    staff(team, 1)
    visit = VisitFactory(student_name="Zoë Ng", student_number="21234567", unit_code="CITS3200")
    visit.start_session(by=other_leader)
    librarian = Team.objects.get(slug="librarian")
    before = db_state()

    shown = act(
        leader_client,
        "edit",
        htmx=True,
        data={
            "student_name": "Zoë Ng",
            "student_number": "21234567",
            "unit_code": "CITS3200",
            "team": str(librarian.pk),
            "enquiry_type": str(visit.enquiry_type_id),
        },
        pk=visit.pk,
    )

    assert "Nothing was changed." in shown
    assert db_state() == before


# --- unknown ids --------------------------------------------------------------------


@pytest.mark.parametrize("pk", [999999, 0, 2**63, 10**30], ids=["missing", "zero", "2**63", "huge"])
@pytest.mark.parametrize("action", VISIT_ACTIONS)
def test_it_answers_404_for_an_unknown_visit(leader_client, htmx_headers, action, pk):
    VisitFactory()
    before = db_state()
    url = reverse(f"queueing:{action}", kwargs={"pk": pk})

    answers = [
        leader_client.post(url, {"outcome": "cancelled"}).status_code,
        leader_client.post(url, {"outcome": "cancelled"}, headers=htmx_headers).status_code,
    ]
    if action in ("remove", "edit"):
        answers.append(leader_client.get(url).status_code)

    assert answers == [404] * len(answers)
    assert db_state() == before


def without_per_response_secrets(response) -> str:
    # Each page has a fresh CSRF token and CSP nonce; nothing else may differ.
    body = response.content.decode()
    return re.sub(r'nonce="[^"]+"|\b[A-Za-z0-9]{64}\b', "SECRET", body)


@pytest.mark.parametrize("ending", ["finish", "remove"])
@pytest.mark.parametrize("action", VISIT_ACTIONS)
def test_it_answers_a_visit_off_the_board_as_an_unknown_one(
    leader_client, other_leader, team, essay, htmx_headers, action, ending
):
    staff(team, 1)
    visit = VisitFactory(student_name="Zoë Ng", student_number="21234567")
    if ending == "finish":
        visit.start_session(by=other_leader)
        visit.finish(by=other_leader)
    else:
        visit.remove(by=other_leader, outcome="cancelled")
    window = timedelta(seconds=settings.RESQ_UNDO_WINDOW_SECONDS)
    Visit.objects.filter(pk=visit.pk).update(ended_at=visit.ended_at - window - timedelta(days=90))
    before = db_state()
    # Valid for every action, so that nothing but the visit's age can refuse it.
    data = {
        "outcome": "cancelled",
        "student_name": "Eve Mallory",
        "student_number": "21234567",
        "unit_code": "",
        "team": str(team.pk),
        "enquiry_type": str(essay.pk),
    }
    methods = ["post", "get"] if action in ("remove", "edit") else ["post"]

    for method in methods:
        for headers in ({}, htmx_headers):
            answers = [
                getattr(leader_client, method)(
                    reverse(f"queueing:{action}", kwargs={"pk": pk}), data, headers=headers
                )
                for pk in (visit.pk, 999999)
            ]
            assert [answer.status_code for answer in answers] == [404, 404]
            old, unknown = map(without_per_response_secrets, answers)
            assert old == unknown
            assert "Zoë Ng" not in old and "21234567" not in old
    assert db_state() == before


@pytest.mark.parametrize("slug", ["no-such-team", "maths"])
def test_it_answers_404_for_an_unknown_or_inactive_team(leader_client, slug):
    TeamFactory(name="Maths", slug="maths", is_active=False)
    before = db_state()

    response = leader_client.post(reverse("queueing:staffing", kwargs={"slug": slug}), {"delta": 1})

    assert response.status_code == 404
    assert db_state() == before


# --- staffing -----------------------------------------------------------------------


@both
@pytest.mark.parametrize("delta", ["2", "-2", "0", "abc", "", "+1", "1.0", "1e0", "--1", None])
def test_it_refuses_a_staffing_change_other_than_one(leader_client, team, delta, htmx):
    staff(team, 3)
    before = db_state()

    data = {} if delta is None else {"delta": delta}
    shown = act(leader_client, "staffing", htmx=htmx, data=data, slug=team.slug)

    assert escape(STAFFING_BUTTONS) in shown
    assert db_state() == before


@both
def test_it_refuses_fewer_staff_than_sessions_running(leader_client, other_leader, team, htmx):
    staff(team, 1)
    VisitFactory().start_session(by=other_leader)
    before = db_state()

    shown = act(leader_client, "staffing", htmx=htmx, data={"delta": "-1"}, slug=team.slug)

    assert (
        escape("STUDYSmarter has 1 session running; finish one before taking a staff member away.")
        in shown
    )
    assert db_state() == before


def test_it_refuses_fewer_than_no_staff(leader_client, team):
    staff(team, 0)
    before = db_state()

    shown = act(leader_client, "staffing", htmx=True, data={"delta": "-1"}, slug=team.slug)

    assert 'class="alert error"' in shown
    assert db_state() == before


def test_it_refuses_more_than_the_staff_limit(leader_client, team):
    staff(team, MAX_STAFF)
    before = db_state()

    shown = act(leader_client, "staffing", htmx=True, data={"delta": "1"}, slug=team.slug)

    assert f"STUDYSmarter cannot have more than {MAX_STAFF} staff." in shown
    assert db_state() == before


# --- wrong methods ------------------------------------------------------------------


def _url(name: str) -> str:
    kwargs = {}
    if name in ("start", "finish", "undo_start", "undo_end", "remove", "edit"):
        kwargs = {"pk": Visit.objects.get().pk}
    elif name == "staffing":
        kwargs = {"slug": "studysmarter"}
    return reverse(f"queueing:{name}", kwargs=kwargs)


@pytest.mark.parametrize("name", POST_ONLY)
def test_it_refuses_get_on_post_only_endpoints(leader_client, htmx_headers, name):
    VisitFactory()
    before = db_state()
    url = _url(name)

    plain = leader_client.get(url, {"delta": "1", "student_number": "21234567"})
    htmx = leader_client.get(url, headers=htmx_headers)

    assert (plain.status_code, htmx.status_code) == (405, 405)
    assert plain["Allow"] == "POST"
    assert db_state() == before


@pytest.mark.parametrize("name", GET_ONLY)
def test_it_refuses_post_on_get_only_endpoints(leader_client, name):
    VisitFactory()
    before = db_state()

    response = leader_client.post(_url(name))

    assert response.status_code == 405
    assert db_state() == before


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize("name", ["remove", "edit", "close"])
def test_it_refuses_other_methods_on_dialogs(leader_client, name, method):
    VisitFactory()
    before = db_state()

    response = getattr(leader_client, method)(_url(name))

    assert response.status_code == 405
    assert db_state() == before


def test_it_closes_nothing_on_get(leader_client):
    VisitFactory()
    before = db_state()

    response = leader_client.get(reverse("queueing:close"))

    assert response.status_code == 200
    assert "<dialog" in response.text
    assert db_state() == before
