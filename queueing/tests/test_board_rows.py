"""The board is rendered once per version from rows rendered once per what they show,
and every answer fills in what differs between answers: CSRF inputs and timers."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from queueing import estimates, views
from queueing.models import Board, EnquiryType, Visit
from queueing.tests.factories import VisitFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def row_renders(monkeypatch):
    """The names of the row partials rendered, in order."""
    rendered = []
    render = views.render_to_string

    def counting(template_name, *args, **kwargs):
        if template_name.endswith("-row"):
            rendered.append(template_name.rpartition("#")[2])
        return render(template_name, *args, **kwargs)

    monkeypatch.setattr(views, "render_to_string", counting)
    return rendered


def test_it_accepts_a_plain_post_from_a_board_form_on_the_page(leader, studysmarter):
    visit = VisitFactory(student_name="Zoë Ng")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(leader)
    browser.get(reverse("queueing:desk"))
    # The second page takes its board from the cache, with this request's token.
    page = browser.get(reverse("queueing:desk")).text
    start = reverse("queueing:start", args=[visit.pk])
    form = page[page.index(f'action="{start}"') :]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form[: form.index("</form>")])

    response = browser.post(start, {"csrfmiddlewaretoken": token[1]})

    assert response.status_code == 302
    visit.refresh_from_db()
    assert visit.status == Visit.Status.IN_SESSION


def test_it_gives_each_page_an_add_form_with_its_own_token(leader, other_leader, studysmarter):
    data = {
        "student_name": "Ana Token",
        "team": studysmarter.pk,
        "enquiry_type": EnquiryType.objects.get(name="Essay").pk,
    }
    for number, user in enumerate([leader, other_leader]):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(user)
        # The second page takes the empty add form from the cache.
        page = browser.get(reverse("queueing:desk")).text
        form = page[page.index('<form id="add-form"') :]
        form = form[: form.index("</form>")]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)

        response = browser.post(
            reverse("queueing:add"),
            {**data, "student_number": f"2190000{number}", "csrfmiddlewaretoken": token[1]},
        )

        assert response.status_code == 302
    assert Visit.objects.count() == 2


def test_it_offers_the_enquiry_types_of_the_boards_version(leader_client):
    assert ">Essay</option>" in leader_client.get(reverse("queueing:desk")).text
    # As admin's save does: the change, and the board moved.
    EnquiryType.objects.filter(name="Essay").update(name="Essay plan")
    Board.bump()

    page = leader_client.get(reverse("queueing:desk")).text

    assert ">Essay plan</option>" in page and ">Essay</option>" not in page


def test_it_leaves_no_slot_in_any_answer(leader_client, leader, studysmarter, htmx_headers):
    VisitFactory(student_name="Zoë Ng")
    VisitFactory(student_name="Bo Chen").start_session(by=leader)
    VisitFactory(student_name="Al Li").remove(by=leader, outcome=Visit.Outcome.NO_SHOW)
    page = leader_client.get(reverse("queueing:desk")).text
    fragment = leader_client.get(reverse("queueing:poll"), {"v": "-1"}).text
    add = leader_client.post(
        reverse("queueing:add"),
        {
            "student_name": "Ana Slot",
            "student_number": "21999999",
            "team": studysmarter.pk,
            "enquiry_type": EnquiryType.objects.get(name="Essay").pk,
        },
        headers=htmx_headers,
    ).text
    for answer, timers in [(page, 2), (fragment, 2), (add, 3)]:
        assert "-slot" not in answer
        assert answer.count('class="timer level-0"') == timers
    # On the board: start, finish, undo start, undo (the recent row) and two staffing
    # forms for each of the two teams; around it, the add form, "Stay logged in" and
    # the header's "Log out".
    board = page[page.index('<section id="board"') :]
    assert board.count('name="csrfmiddlewaretoken"') == 4 + 4
    assert page.count('name="csrfmiddlewaretoken"') == 4 + 4 + 3
    assert "csrfmiddlewaretoken" not in fragment
    assert '<td>1</td>\n              <th scope="row">Zoë Ng</th>' in fragment


def test_it_shows_the_page_timers_as_of_each_request(leader_client, monkeypatch):
    arrived = timezone.now() - timedelta(minutes=5)
    VisitFactory(arrived_at=arrived)
    first = leader_client.get(reverse("queueing:desk")).text
    later = arrived + timedelta(minutes=21, seconds=3)
    monkeypatch.setattr(timezone, "now", lambda: later)

    second = leader_client.get(reverse("queueing:desk"))

    assert 'class="timer level-0"' in first
    assert second["X-Board-Version"] == str(Board.current_version())
    assert f'class="timer level-20" data-since="{arrived.isoformat()}">21:03<' in second.text
    assert f'data-server-now="{later.isoformat()}"' in second.text


def test_it_renders_only_the_rows_a_change_touched(
    leader_client, leader, studysmarter, row_renders
):
    visits = VisitFactory.create_batch(20)
    Board.bump()
    leader_client.get(reverse("queueing:poll"), {"v": "-1"})
    assert row_renders == ["waiting-row"] * 20
    row_renders.clear()

    # Everyone behind moves up a place: only the new session's row is rendered.
    visits[0].start_session(by=leader)
    board = leader_client.get(reverse("queueing:poll"), {"v": "-1"}).text
    assert row_renders == ["session-row"]
    for place, visit in enumerate(visits[1:], start=1):
        assert (
            f'<td>{place}</td>\n              <th scope="row">{escape(visit.student_name)}</th>'
            in board
        )
    row_renders.clear()

    leader_client.post(
        reverse("queueing:edit", args=[visits[5].pk]),
        {
            "student_name": "Ana Corrected",
            "student_number": visits[5].student_number,
            "unit_code": "",
            "team": visits[5].team_id,
            "enquiry_type": visits[5].enquiry_type_id,
        },
    )
    board = leader_client.get(reverse("queueing:poll"), {"v": "-1"}).text
    assert row_renders == ["waiting-row"]
    assert '<th scope="row">Ana Corrected</th>' in board
    assert f">{escape(visits[5].student_name)}<" not in board


def test_it_builds_the_same_board_from_reused_rows(leader_client, leader, studysmarter, frozen):
    visits = VisitFactory.create_batch(6, arrived_at=frozen - timedelta(minutes=12))
    visits[0].start_session(by=leader)
    leader_client.get(reverse("queueing:desk"))
    visits[1].remove(by=leader, outcome=Visit.Outcome.CANCELLED)
    visits[0].finish(by=leader)
    visits[2].start_session(by=leader)
    visits[3].correct(by=leader, unit_code="MATH1001")

    _, reused = views.board_html()
    _, reused_page = views.board_html(page=True)
    # What the estimates drew from is kept for the hour: the fresh board draws the same.
    drawn = views.caches["board"].get_many([estimates.history_key(studysmarter.pk, frozen)])
    views.caches["board"].clear()
    views.caches["board"].set_many(drawn)
    views.forget_rows_in_process()
    _, fresh = views.board_html()
    _, fresh_page = views.board_html(page=True)

    assert reused == fresh
    assert reused_page == fresh_page


def test_it_renders_rows_again_for_another_undo_window(leader_client, leader, frozen, settings):
    VisitFactory().remove(by=leader, outcome=Visit.Outcome.NO_SHOW)
    leader_client.get(reverse("queueing:poll"), {"v": "-1"})
    settings.RESQ_UNDO_WINDOW_SECONDS = 600
    Board.bump()

    board = leader_client.get(reverse("queueing:poll"), {"v": "-1"}).text

    assert f'data-undo-until="{(frozen + timedelta(minutes=10)).isoformat()}"' in board
