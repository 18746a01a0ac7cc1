"""The desk page and its actions, as the student leader uses them."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from queueing.models import Board, EnquiryType, StaffingChange, Team, Visit, VisitEvent
from queueing.tests.factories import VisitFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def librarian():
    return Team.objects.get(slug="librarian")


def add_data(**overrides):
    data = {
        "student_name": "Zoë Ng",
        "student_number": "21234567",
        "unit_code": "cits3200",
        "team": Team.objects.get(slug="studysmarter").pk,
        "enquiry_type": EnquiryType.objects.get(name="Essay").pk,
    }
    data.update(overrides)
    return data


# --- the page ---------------------------------------------------------------------


def test_it_shows_the_board_in_the_services_words(leader_client):
    response = leader_client.get(reverse("queueing:desk"))
    assert response.status_code == 200
    for words in [
        "ADD TO QUEUE",
        "Current Sessions",
        "STUDYSmarter Queue",
        "Librarian Queue",
        "STUDYSmarter Team Available",
        "Librarians Available",
    ]:
        assert words in response.text


def test_it_ties_every_add_form_label_to_its_input(leader_client):
    response = leader_client.get(reverse("queueing:desk"))
    for label, field in [
        ("Student Name", "student_name"),
        ("Student Number", "student_number"),
        ("Unit Code", "unit_code"),
        ("Team", "team"),
        ("Enquiry Type", "enquiry_type"),
    ]:
        assert f'<label for="id_{field}">{label}</label>' in response.text
    assert 'name="student_name"' in response.text and "autofocus" in response.text


def test_it_is_never_cached(leader_client):
    response = leader_client.get(reverse("queueing:desk"))
    assert "no-store" in response["Cache-Control"]


def test_it_lists_waiting_students_in_arrival_order_per_team(leader_client, librarian):
    now = timezone.now()
    VisitFactory(student_name="Second Arrival", arrived_at=now - timedelta(minutes=5))
    VisitFactory(student_name="First Arrival", arrived_at=now - timedelta(minutes=15))
    VisitFactory(student_name="Library Student", team=librarian)
    text = leader_client.get(reverse("queueing:desk")).text
    studysmarter_queue = text[text.index("STUDYSmarter Queue") : text.index("Librarian Queue")]
    assert studysmarter_queue.index("First Arrival") < studysmarter_queue.index("Second Arrival")
    assert "Library Student" not in studysmarter_queue
    assert "Library Student" in text[text.index("Librarian Queue") :]


def test_it_colours_long_waits(leader_client):
    VisitFactory(arrived_at=timezone.now() - timedelta(minutes=21))
    text = leader_client.get(reverse("queueing:desk")).text
    assert "timer level-20" in text
    assert "21:0" in text


def test_it_says_so_when_nobody_waits(leader_client):
    text = leader_client.get(reverse("queueing:desk")).text
    assert text.count("Nobody waiting.") == 2
    assert "No sessions running." in text


def fill_queue(size: int) -> None:
    """`size` students waiting, split between the two teams, beside one in a session and
    one just removed; the board moved on."""
    Team.objects.filter(slug="studysmarter").update(available_staff=2)
    VisitFactory().start_session(by=_any_user())
    VisitFactory().remove(by=_any_user(), outcome=Visit.Outcome.NO_SHOW)
    teams = [Team.objects.get(slug="studysmarter"), Team.objects.get(slug="librarian")]
    essay = EnquiryType.objects.get(name="Essay")
    now = timezone.now()
    Visit.objects.bulk_create(
        Visit(
            student_name=f"Student {n}",
            student_number=f"{22100000 + n}",
            team=teams[n % 2],
            enquiry_type=essay,
            arrived_at=now - timedelta(seconds=size - n),
        )
        for n in range(size)
    )
    Board.bump()


def count_queries(request) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = request()
    assert response.status_code in (200, 302)
    return len(queries)


@pytest.mark.parametrize("size", [0, 20, 400])
def test_it_answers_the_page_in_the_same_queries_whatever_the_queue(leader_client, size):
    fill_queue(size)

    def page():
        return leader_client.get(reverse("queueing:desk"))

    # Session, user, permissions, version; teams, visits and check-ins to render a new
    # version's board; the visits and staffing of four weeks that wait estimates draw
    # from (once an hour); the add form's teams and enquiry types, read for its key and
    # to render it.
    assert count_queries(page) == 13
    # The version's board and form are cached: the login check and the version.
    assert count_queries(page) == 4
    Board.bump()
    # A new version: its board, and the choices that find the form rendered before.
    assert count_queries(page) == 9


def test_it_renders_a_changed_board_in_seven_queries_whatever_the_queue(leader_client):
    def poll_queries():
        Board.bump()
        with CaptureQueriesContext(connection) as queries:
            response = leader_client.get(reverse("queueing:poll"), {"v": "-1"})
        assert response.status_code == 200
        return len(queries)

    poll_queries()  # and what wait estimates draw from, read once an hour
    few = poll_queries()
    VisitFactory.create_batch(40)
    # Session, user, version, permissions, teams, visits, check-ins.
    assert few == poll_queries() <= 7


def test_it_renders_each_board_version_once_for_every_screen(client, leader, other_leader):
    VisitFactory(student_name="Zoë Ng")
    Board.bump()
    client.force_login(leader)
    first = client.get(reverse("queueing:poll"), {"v": "-1"})
    client.force_login(other_leader)
    with CaptureQueriesContext(connection) as queries:
        second = client.get(reverse("queueing:poll"), {"v": "-1"})
    assert second.content == first.content
    assert "Zoë Ng" in second.text
    assert "csrfmiddlewaretoken" not in second.text
    # Session, user, version, permissions: no team or visit query, no rendering.
    assert len(queries) == 4
    assert second["X-Server-Now"]


def test_it_never_serves_an_old_board_for_a_new_version(leader_client, leader):
    visit = VisitFactory(student_name="Zoë Ng")
    leader_client.get(reverse("queueing:poll"), {"v": "-1"})
    visit.remove(by=leader, outcome=Visit.Outcome.CANCELLED)
    response = leader_client.get(reverse("queueing:poll"), {"v": "-1"})
    queue = response.text[response.text.index("STUDYSmarter Queue") :]
    assert "Zoë Ng" not in queue[: queue.index("Librarian Queue")]


def _any_user():
    from accounts.models import User

    return User.objects.first()


# --- adding -----------------------------------------------------------------------


def test_it_adds_a_student_and_returns_to_the_desk(leader_client, leader):
    response = leader_client.post(reverse("queueing:add"), add_data(unit_code=" cits 3200 "))
    assert response.status_code == 302
    assert response["Location"] == reverse("queueing:desk")
    visit = Visit.objects.get()
    assert visit.student_name == "Zoë Ng"
    assert visit.unit_code == "CITS3200"
    assert visit.added_by == leader
    assert visit.status == Visit.Status.WAITING
    assert visit.events.get().action == VisitEvent.Action.ADDED
    page = leader_client.get(reverse("queueing:desk")).text
    assert "Zoë Ng added to the STUDYSmarter Queue as S-001." in page


def test_it_answers_htmx_with_a_fresh_form_the_board_and_the_message(leader_client, htmx_headers):
    before = Board.current_version()
    response = leader_client.post(reverse("queueing:add"), add_data(), headers=htmx_headers)
    assert response.status_code == 200
    text = response.text
    assert text.lstrip().startswith('<form id="add-form"')
    # The form is swapped in place; the board (taken by the form's hx-select-oob) and
    # the message go out of band.
    assert 'hx-select-oob="#board"' in text[: text.index(">")]
    assert '<section id="board"' in text
    assert (
        'id="messages" class="messages" role="status" aria-live="polite" hx-swap-oob="true"' in text
    )
    assert "Zoë Ng added" in text
    # The fresh form is empty and puts the cursor back in Student Name.
    form = text[: text.index("</form>")]
    assert 'value="Zoë Ng"' not in form
    assert 'name="student_name"' in form and "autofocus" in form
    assert "<html" not in text
    assert int(response["X-Board-Version"]) == before + 1


@pytest.mark.parametrize("size", [0, 20, 400])
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_it_adds_in_the_same_queries_whatever_the_queue(leader_client, htmx_headers, size, htmx):
    fill_queue(size)
    leader_client.get(reverse("queueing:desk"))
    data = add_data()

    queries = count_queries(
        lambda: leader_client.post(
            reverse("queueing:add"), data, headers=htmx_headers if htmx else {}
        )
    )

    # Session, user, permissions; the form's team and enquiry type and the duplicate
    # check; then in one transaction (a savepoint here, inside the test's) the version
    # bump, the team's ticket codes of the day, the visit and its event (see Visit.add:
    # no team lock).
    plain = 12
    # The new board (version, teams, visits, check-ins) and the fresh form's two choice
    # lists.
    assert queries == (plain + 6 if htmx else plain)
    assert Visit.objects.filter(student_number="21234567").exists()


def test_it_shows_inline_errors_and_keeps_what_was_typed(leader_client, htmx_headers):
    response = leader_client.post(
        reverse("queueing:add"),
        add_data(student_number="1234", student_name="Zoë Ng"),
        headers=htmx_headers,
    )
    assert response.status_code == 200
    assert "Enter the Student Number as 8 digits" in response.text
    assert 'value="Zoë Ng"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert 'id="board"' not in response.text
    assert not Visit.objects.exists()


def test_it_warns_about_a_student_already_waiting(leader_client, htmx_headers):
    VisitFactory(student_name="Zoë Ng", student_number="21234567")
    response = leader_client.post(reverse("queueing:add"), add_data(), headers=htmx_headers)
    assert "is already waiting in the STUDYSmarter Queue" in response.text
    assert "Add anyway" in response.text
    assert Visit.objects.count() == 1

    response = leader_client.post(
        reverse("queueing:add"), add_data(confirm_duplicate="on"), headers=htmx_headers
    )
    assert "Zoë Ng added" in response.text
    assert Visit.objects.count() == 2


def test_it_offers_the_name_recorded_for_a_returning_student(leader_client, htmx_headers):
    VisitFactory(student_name="Old Name", student_number="21234567")
    VisitFactory(student_name="Zoë Ng", student_number="21234567")
    response = leader_client.post(
        reverse("queueing:student_lookup"), {"student_number": "21234567"}, headers=htmx_headers
    )
    assert "Seen before as <strong>Zoë Ng</strong>" in response.text
    assert 'data-fill-name="Zoë Ng"' in response.text
    unknown = leader_client.post(
        reverse("queueing:student_lookup"), {"student_number": "29999999"}, headers=htmx_headers
    )
    assert "Seen before" not in unknown.text
    partial = leader_client.post(
        reverse("queueing:student_lookup"), {"student_number": "2123"}, headers=htmx_headers
    )
    assert "Seen before" not in partial.text


def test_it_refuses_look_ups_beyond_thirty_a_minute(leader_client, htmx_headers):
    VisitFactory(student_name="Zoë Ng", student_number="21234567")
    url = reverse("queueing:student_lookup")
    for number in range(21000000, 21000030):
        response = leader_client.post(url, {"student_number": number}, headers=htmx_headers)
        assert response.status_code == 200
    refused = leader_client.post(url, {"student_number": "21234567"}, headers=htmx_headers)
    assert refused.status_code == 429
    assert "Zoë Ng" not in refused.text


# --- transitions ------------------------------------------------------------------


def test_it_starts_a_session(leader_client, leader, studysmarter, htmx_headers):
    visit = VisitFactory(student_name="Zoë Ng")
    response = leader_client.post(reverse("queueing:start", args=[visit.pk]), headers=htmx_headers)
    assert response.status_code == 200
    assert "Session started for Zoë Ng." in response.text
    sessions = response.text[response.text.index("Current Sessions") :]
    assert "Zoë Ng" in sessions[: sessions.index("STUDYSmarter Queue")]
    visit.refresh_from_db()
    assert visit.status == Visit.Status.IN_SESSION
    assert visit.started_by == leader


def test_it_refuses_a_start_beyond_the_staff_available_and_offers_one_more(
    leader_client, studysmarter, htmx_headers
):
    studysmarter.available_staff = 1
    studysmarter.save()
    busy = VisitFactory()
    busy.start_session(by=busy.added_by or _any_user() or None)
    waiting = VisitFactory(student_name="Zoë Ng")
    response = leader_client.post(
        reverse("queueing:start", args=[waiting.pk]), headers=htmx_headers
    )
    assert "The only STUDYSmarter staff member available is in a session." in response.text
    # The offer names the student it will start.
    assert "Add a staff member and start Zoë Ng" in response.text
    assert reverse("queueing:start", args=[waiting.pk]) in response.text
    waiting.refresh_from_db()
    assert waiting.status == Visit.Status.WAITING

    response = leader_client.post(
        reverse("queueing:start", args=[waiting.pk]), {"add_staff": "1"}, headers=htmx_headers
    )
    assert "Session started for Zoë Ng." in response.text
    studysmarter.refresh_from_db()
    waiting.refresh_from_db()
    assert studysmarter.available_staff == 2
    assert waiting.status == Visit.Status.IN_SESSION
    assert StaffingChange.objects.filter(team=studysmarter, available=2, delta=1).exists()


def test_it_tells_the_second_screen_who_started_the_student(
    client, leader, other_leader, studysmarter, htmx_headers
):
    visit = VisitFactory(student_name="Zoë Ng")
    visit.start_session(by=other_leader)
    client.force_login(leader)
    response = client.post(reverse("queueing:start", args=[visit.pk]), headers=htmx_headers)
    assert response.status_code == 200
    assert "Zoë Ng is already in a session, started by Sam." in response.text
    assert VisitEvent.objects.filter(visit=visit, action="started").count() == 1


def test_it_finishes_and_undoes_the_finish(leader_client, leader, studysmarter, htmx_headers):
    visit = VisitFactory(student_name="Zoë Ng")
    visit.start_session(by=leader)
    response = leader_client.post(reverse("queueing:finish", args=[visit.pk]), headers=htmx_headers)
    assert "Session finished for Zoë Ng." in response.text
    assert "Just finished or removed" in response.text
    visit.refresh_from_db()
    assert (visit.status, visit.outcome, visit.ended_by) == ("finished", "finished", leader)

    response = leader_client.post(
        reverse("queueing:undo_end", args=[visit.pk]), headers=htmx_headers
    )
    assert "Zoë Ng&#x27;s session is running again." in response.text
    visit.refresh_from_db()
    assert (visit.status, visit.ended_at, visit.outcome) == ("in_session", None, "")


def test_it_puts_an_undone_start_back_in_the_same_place(leader_client, leader, studysmarter):
    now = timezone.now()
    first = VisitFactory(student_name="First Arrival", arrived_at=now - timedelta(minutes=20))
    VisitFactory(student_name="Second Arrival", arrived_at=now - timedelta(minutes=10))
    first.start_session(by=leader)
    leader_client.post(reverse("queueing:undo_start", args=[first.pk]))
    first.refresh_from_db()
    assert first.status == Visit.Status.WAITING
    assert first.arrived_at == now - timedelta(minutes=20)
    text = leader_client.get(reverse("queueing:desk")).text
    assert text.index("First Arrival") < text.index("Second Arrival")
    assert "in their original place" in text


def test_it_removes_with_a_reason_after_confirmation(leader_client, leader, htmx_headers):
    visit = VisitFactory(student_name="Zoë Ng")
    dialog = leader_client.get(reverse("queueing:remove", args=[visit.pk]), headers=htmx_headers)
    assert "<dialog" in dialog.text and "Left before being seen" in dialog.text
    assert "<html" not in dialog.text
    visit.refresh_from_db()
    assert visit.status == Visit.Status.WAITING

    response = leader_client.post(
        reverse("queueing:remove", args=[visit.pk]), {"outcome": "no_show"}, headers=htmx_headers
    )
    assert 'id="dialog" hx-swap-oob="true"' in response.text
    assert "removed from the STUDYSmarter Queue" in response.text
    visit.refresh_from_db()
    assert (visit.status, visit.outcome, visit.ended_by) == ("removed", "no_show", leader)


def test_it_keeps_the_remove_dialog_open_without_a_reason(leader_client, htmx_headers):
    visit = VisitFactory()
    response = leader_client.post(
        reverse("queueing:remove", args=[visit.pk]), {}, headers=htmx_headers
    )
    assert response["HX-Retarget"] == "#dialog"
    assert "Choose why the student is leaving the queue." in response.text
    visit.refresh_from_db()
    assert visit.status == Visit.Status.WAITING


def test_it_undoes_a_removal_within_the_window_only(leader_client, leader, settings):
    visit = VisitFactory()
    visit.remove(by=leader, outcome=Visit.Outcome.CANCELLED)
    leader_client.post(reverse("queueing:undo_end", args=[visit.pk]))
    visit.refresh_from_db()
    assert visit.status == Visit.Status.WAITING

    visit.remove(by=leader, outcome=Visit.Outcome.CANCELLED)
    Visit.objects.filter(pk=visit.pk).update(
        ended_at=timezone.now() - timedelta(seconds=settings.RESQ_UNDO_WINDOW_SECONDS + 1)
    )
    response = leader_client.post(reverse("queueing:undo_end", args=[visit.pk]))
    assert response.status_code == 404
    visit.refresh_from_db()
    assert visit.status == Visit.Status.REMOVED


def test_it_corrects_a_typo_and_records_it(leader_client, leader, htmx_headers):
    visit = VisitFactory(student_name="Zoe Gn", unit_code="CITS3200")
    response = leader_client.post(
        reverse("queueing:edit", args=[visit.pk]),
        add_data(student_name="Zoë Ng", student_number=visit.student_number),
        headers=htmx_headers,
    )
    assert "Zoë Ng&#x27;s details corrected." in response.text
    visit.refresh_from_db()
    assert visit.student_name == "Zoë Ng"
    event = visit.events.get(action=VisitEvent.Action.CORRECTED)
    assert event.by == leader
    assert event.detail["student_name"] == ["Zoe Gn", "Zoë Ng"]


def test_it_transfers_a_waiting_student_keeping_their_place(leader_client, leader, librarian):
    arrived = timezone.now() - timedelta(minutes=30)
    visit = VisitFactory(arrived_at=arrived)
    VisitFactory(team=librarian, arrived_at=timezone.now() - timedelta(minutes=5))
    leader_client.post(
        reverse("queueing:edit", args=[visit.pk]),
        add_data(
            student_name=visit.student_name,
            student_number=visit.student_number,
            unit_code=visit.unit_code,
            team=librarian.pk,
        ),
    )
    visit.refresh_from_db()
    assert visit.team == librarian
    assert visit.arrived_at == arrived
    event = visit.events.get(action=VisitEvent.Action.TRANSFERRED)
    assert event.detail["team"] == [Team.objects.get(slug="studysmarter").pk, librarian.pk]


def test_it_does_not_transfer_a_student_in_session(leader_client, leader, studysmarter, librarian):
    visit = VisitFactory()
    visit.start_session(by=leader)
    leader_client.post(
        reverse("queueing:edit", args=[visit.pk]),
        add_data(student_number=visit.student_number, team=librarian.pk),
    )
    visit.refresh_from_db()
    assert visit.team == studysmarter


def test_it_closes_the_queue_as_out_of_time(leader_client, leader, studysmarter, librarian):
    VisitFactory.create_batch(2)
    VisitFactory(team=librarian)
    running = VisitFactory()
    running.start_session(by=leader)
    response = leader_client.post(reverse("queueing:close"))
    assert response.status_code == 302
    assert Visit.objects.filter(status="removed", outcome="out_of_time").count() == 3
    running.refresh_from_db()
    assert running.status == Visit.Status.IN_SESSION
    assert VisitEvent.objects.filter(action=VisitEvent.Action.QUEUE_CLOSED).count() == 3
    assert "Queue closed: 3 waiting students marked out of time." in (
        leader_client.get(reverse("queueing:desk")).text
    )


# --- staffing ---------------------------------------------------------------------


def test_it_changes_staffing_and_keeps_the_history(leader_client, leader, librarian, htmx_headers):
    response = leader_client.post(
        reverse("queueing:staffing", args=["librarian"]), {"delta": "1"}, headers=htmx_headers
    )
    assert response.status_code == 200
    librarian.refresh_from_db()
    assert librarian.available_staff == 1
    change = StaffingChange.objects.get()
    assert (change.team, change.available, change.delta, change.by) == (librarian, 1, 1, leader)
    leader_client.post(reverse("queueing:staffing", args=["librarian"]), {"delta": "-1"})
    librarian.refresh_from_db()
    assert librarian.available_staff == 0
    assert StaffingChange.objects.count() == 2


def test_it_will_not_take_away_staff_who_are_in_a_session(leader_client, leader, studysmarter):
    studysmarter.available_staff = 1
    studysmarter.save()
    VisitFactory().start_session(by=leader)
    leader_client.post(reverse("queueing:staffing", args=["studysmarter"]), {"delta": "-1"})
    studysmarter.refresh_from_db()
    assert studysmarter.available_staff == 1
    assert "finish one before taking a staff member away" in (
        leader_client.get(reverse("queueing:desk")).text
    )


# --- live sync --------------------------------------------------------------------


def test_it_answers_an_unchanged_poll_with_204_and_one_query(leader_client):
    leader_client.get(reverse("queueing:desk"))
    version = Board.current_version()
    with CaptureQueriesContext(connection) as queries:
        response = leader_client.get(reverse("queueing:poll"), {"v": version})
    assert response.status_code == 204
    assert response.content == b""
    # Session and user for the login check, then the version: no permission lookup,
    # no rendering.
    assert len(queries) == 3


def test_it_sends_the_new_board_when_the_version_moved(leader_client, leader):
    version = Board.current_version()
    VisitFactory(student_name="Zoë Ng")
    Board.bump()
    response = leader_client.get(reverse("queueing:poll"), {"v": version})
    assert response.status_code == 200
    assert "Zoë Ng" in response.text
    assert int(response["X-Board-Version"]) == version + 1
    assert 'id="board"' in response.text and "<html" not in response.text


def test_it_shows_nothing_to_a_user_without_the_desk_on_a_changed_poll(client, coordinator):
    client.force_login(coordinator)
    VisitFactory(student_name="Zoë Ng")
    response = client.get(reverse("queueing:poll"), {"v": "-1"})
    assert response.status_code == 403
    assert "Zoë" not in response.text


def test_it_says_plainly_when_no_staff_are_left_to_take_away(leader_client, librarian):
    leader_client.post(reverse("queueing:staffing", args=["librarian"]), {"delta": "-1"})
    librarian.refresh_from_db()
    assert librarian.available_staff == 0
    assert not StaffingChange.objects.exists()
    assert "No Librarian staff are left to take away." in (
        leader_client.get(reverse("queueing:desk")).text
    )


def test_it_clears_an_earlier_message_when_an_add_fails(leader_client, htmx_headers):
    leader_client.post(reverse("queueing:add"), add_data(), headers=htmx_headers)
    response = leader_client.post(
        reverse("queueing:add"), add_data(student_name=""), headers=htmx_headers
    )
    assert "Enter the Student Name." in response.text
    messages_region = response.text[response.text.index('<div id="messages"') :]
    assert 'hx-swap-oob="true"' in messages_region[: messages_region.index(">")]
    assert "added to the" not in messages_region
    assert Visit.objects.count() == 1


def messages_region(response) -> str:
    """The messages above the board: out of band after an htmx board, or on the page
    a plain POST is sent back to."""
    text = response.content.decode()
    region = text[text.index('<div id="messages"') :]
    return region[: region.index('<section id="board"')] if "<html" in text else region


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_it_offers_undo_in_the_message_after_a_finish_or_a_removal(
    leader_client, leader, studysmarter, htmx_headers, htmx
):
    finished = VisitFactory(student_name="Zoë Ng")
    finished.start_session(by=leader)
    removed = VisitFactory(student_name="Bo Chen")
    headers = htmx_headers if htmx else {}
    for action, visit, data, button in [
        ("finish", finished, {}, "Undo finish for Zoë Ng"),
        ("remove", removed, {"outcome": "no_show"}, "Undo removal of Bo Chen"),
    ]:
        response = leader_client.post(
            reverse(f"queueing:{action}", args=[visit.pk]), data, headers=headers, follow=True
        )
        region = messages_region(response)
        visit.refresh_from_db()
        undo = reverse("queueing:undo_end", args=[visit.pk])
        # A real form (it works without JavaScript), offered until the window closes.
        assert f'method="post" action="{undo}" hx-post="{undo}"' in region
        assert f'data-undo-until="{visit.undo_until.isoformat()}"' in region
        assert f'aria-label="{button}"' in region
        assert 'name="csrfmiddlewaretoken"' in region


def test_it_offers_no_undo_when_the_finish_was_refused(leader_client, leader, htmx_headers):
    visit = VisitFactory(student_name="Zoë Ng")
    response = leader_client.post(reverse("queueing:finish", args=[visit.pk]), headers=htmx_headers)
    assert "Undo" not in messages_region(response)
