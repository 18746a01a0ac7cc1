"""The students' side: ticket codes, the room's display, check-in from a phone, a
student's own page and the emails they ask for."""

from __future__ import annotations

import io
import re
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from queueing import notices
from queueing.management.commands.anonymise_old_visits import forget_contact_details
from queueing.models import (
    Board,
    CheckIn,
    Display,
    EnquiryType,
    StudentNotice,
    Team,
    Visit,
)
from queueing.tests.factories import VisitFactory, finished_visit

pytestmark = pytest.mark.django_db


@pytest.fixture
def screen():
    return Display.objects.create(name="Entrance TV")


@pytest.fixture
def student():
    """A phone: no login, its own cookies."""
    return Client()


def checkin_data(screen: Display, **changes) -> dict:
    return {
        "room_code": screen.room_code(),
        "student_name": "Ada Lovelace",
        "student_number": "21234567",
        "unit_code": "cits 3200",
        "team": Team.objects.get(slug="studysmarter").pk,
        "enquiry_type": EnquiryType.objects.get(name="Essay").pk,
        **changes,
    }


def check_in(student: Client, screen: Display, **changes):
    return student.post(
        reverse("students:checkin", args=[screen.checkin_token]), checkin_data(screen, **changes)
    )


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


# --- ticket codes ----------------------------------------------------------------------


def test_each_team_numbers_its_tickets_through_the_day(leader, studysmarter):
    librarians = Team.objects.get(slug="librarian")
    essay = EnquiryType.objects.get(name="Essay")
    yesterday = timezone.now() - timedelta(days=1)
    VisitFactory(ticket="S-040", arrived_at=yesterday)  # another day's codes do not count

    def add(team: Team, number: str) -> str:
        fields = {"student_name": "A B", "student_number": number, "enquiry_type": essay}
        return Visit.add(by=leader, team=team, **fields).ticket

    assert [add(studysmarter, "21000001"), add(studysmarter, "21000002")] == ["S-001", "S-002"]
    assert add(librarians, "21000003") == "L-001"
    studysmarter.ticket_letter = "W"
    studysmarter.save()
    assert add(studysmarter, "21000004") == "W-001"


def test_the_desk_tells_the_leader_the_new_students_code(leader_client, studysmarter):
    response = leader_client.post(
        reverse("queueing:add"),
        {
            "student_name": "Ada Lovelace",
            "student_number": "21234567",
            "team": studysmarter.pk,
            "enquiry_type": EnquiryType.objects.get(name="Essay").pk,
        },
        follow=True,
    )
    assert "Ada Lovelace added to the STUDYSmarter Queue as S-001." in text(response)
    assert "Show Ada Lovelace their page (QR)" in text(response)
    visit = Visit.objects.get()
    dialog = leader_client.get(reverse("queueing:pass", args=[visit.pk]))
    assert reverse("students:place", args=[visit.student_key]) in dialog.content.decode()


def test_the_desk_can_ask_for_a_students_emails(leader_client, settings):
    settings.RESQ_STUDENT_EMAIL_PATTERN = "{number}@student.example.edu"
    visit = VisitFactory(ticket="S-001", student_key="k" * 43, student_number="21234567")
    url = reverse("queueing:pass", args=[visit.pk])
    assert "21234567@student.example.edu" in leader_client.get(url).text  # offered

    refused = leader_client.post(url, {"notify_email": "ada@"})
    assert "Enter a whole email address" in text(refused)
    leader_client.post(url, {"notify_email": "ada@example.edu"})
    visit.refresh_from_db()
    assert visit.notify_email == "ada@example.edu"
    # Already at the head of the line: the next board says so by email.
    leader_client.get(reverse("queueing:desk"))
    assert StudentNotice.objects.get().kind == StudentNotice.Kind.NEXT


# --- the room's display ----------------------------------------------------------------


def test_the_display_shows_codes_and_counts_and_never_a_students_details(student, screen):
    waiting = VisitFactory(student_name="Zed Quigley", ticket="S-007", unit_code="QWER1234")
    VisitFactory(student_name="Yan Pei", ticket="S-006", status=Visit.Status.IN_SESSION,
                 started_at=timezone.now())  # fmt: skip

    page = student.get(reverse("students:display", args=[screen.token]))

    shown = text(page)
    assert "S-007" in shown
    assert "S-006 → please go to the STUDYSmarter desk" in shown  # called, just now
    assert re.search(r"STUDYSmarter 1 waiting", shown)
    assert screen.room_code() in shown
    for private in ("Zed", "Quigley", "Yan Pei", waiting.student_number, "QWER1234", "Essay"):
        assert private not in page.content.decode()


def test_a_revoked_or_made_up_display_address_is_not_found(student, screen):
    url = reverse("students:display", args=[screen.token])
    assert student.get(url).status_code == 200
    screen.is_active = False
    screen.save()
    assert student.get(url).status_code == 404
    assert student.get(reverse("students:display", args=["x" * 43])).status_code == 404
    assert student.get(reverse("students:checkin", args=[screen.checkin_token])).status_code == 404


def test_the_displays_poll_is_empty_until_the_board_or_the_room_code_changes(
    student, screen, frozen
):
    url = reverse("students:display_poll", args=[screen.token])
    version = Board.current_version()
    assert student.get(url, {"v": version, "c": screen.room_code()}).status_code == 204
    assert student.get(url, {"v": version, "c": "OLD1"}).status_code == 200
    VisitFactory(ticket="S-001")
    Board.bump()
    changed = student.get(url, {"v": version, "c": screen.room_code()})
    assert changed.status_code == 200
    assert "S-001" in text(changed)
    assert changed["X-Board-Version"] == str(version + 1)


def test_the_room_code_changes_and_the_one_before_is_still_taken(screen, settings):
    settings.RESQ_ROOM_CODE_SECONDS = 300
    now = timezone.now()
    code = screen.room_code(at=now)
    assert re.fullmatch(r"[A-Z]{4}", code)
    later = now + timedelta(seconds=300)
    assert screen.room_code(at=later) != code
    assert screen.room_code_matches(code.lower(), at=later)
    assert not screen.room_code_matches(code, at=later + timedelta(seconds=300))
    # Each display has its own: one screen's code does not check in at another.
    assert not Display.objects.create(name="Library").room_code_matches(code, at=now)


# --- check-in --------------------------------------------------------------------------


def test_a_check_in_waits_on_the_desk_and_is_accepted_in_its_place(
    student, screen, leader_client, studysmarter, frozen
):
    earlier = VisitFactory(arrived_at=frozen - timedelta(minutes=5))
    response = check_in(student, screen)
    entry = CheckIn.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("students:place", args=[entry.key])
    assert (entry.unit_code, entry.notify_email) == ("CITS3200", "")
    assert "Ada Lovelace" in text(leader_client.get(reverse("queueing:desk")))

    later = VisitFactory(arrived_at=frozen + timedelta(minutes=1))
    leader_client.post(reverse("queueing:accept_checkin", args=[entry.pk]), {"team": ""})

    visit = Visit.objects.get(student_number="21234567")
    assert visit.arrived_at == entry.created_at
    assert visit.student_key == entry.key
    waiting = list(Visit.objects.waiting().order_by("arrived_at", "pk"))
    assert waiting == [earlier, visit, later]
    entry.refresh_from_db()
    assert (entry.status, entry.visit) == (CheckIn.Status.ACCEPTED, visit)
    page = student.get(response["Location"])
    assert "You are number 2 in line" in text(page)
    assert visit.ticket in text(page)


def test_a_check_in_without_a_team_is_accepted_into_the_team_the_leader_picks(
    student, screen, leader_client
):
    check_in(student, screen, team="")
    entry = CheckIn.objects.get()
    url = reverse("queueing:accept_checkin", args=[entry.pk])

    refused = leader_client.post(url, {"team": ""}, follow=True)
    assert "Choose a team for Ada Lovelace." in text(refused)
    assert not Visit.objects.exists()

    librarians = Team.objects.get(slug="librarian")
    leader_client.post(url, {"team": librarians.pk})
    assert Visit.objects.get().team == librarians


def test_the_desk_can_dismiss_a_check_in_and_the_student_is_told(student, screen, leader_client):
    page = check_in(student, screen)["Location"]
    entry = CheckIn.objects.get()
    leader_client.post(reverse("queueing:dismiss_checkin", args=[entry.pk]))
    assert "Please see the desk" in text(student.get(page))
    # Handled: gone from the desk's list, and not to be accepted by a second screen.
    url = reverse("queueing:accept_checkin", args=[entry.pk])
    assert leader_client.post(url).status_code == 404
    assert not Visit.objects.exists()


def test_a_setting_accepts_check_ins_straight_into_their_queue(student, screen, settings):
    settings.RESQ_CHECKIN_AUTO_ACCEPT = True
    check_in(student, screen)
    check_in(student, screen, student_number="21234568", team="")
    assert Visit.objects.get().student_number == "21234567"
    assert CheckIn.objects.get(status=CheckIn.Status.PENDING).student_number == "21234568"


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"room_code": "AAAA"}, "That room code is not the one on the screen now."),
        ({"room_code": ""}, "Enter the room code shown on the screen."),
        ({"student_name": "<script>alert(1)</script>"}, "Student name"),
        ({"student_number": "=1+2"}, "8 digits"),
        ({"wants_email": "on", "notify_email": ""}, "Enter the email address to send them to."),
        ({"team": "999"}, "Choose one of the options listed."),
    ],
    ids=["wrong-code", "no-code", "markup", "formula", "email", "team"],
)
def test_a_bad_check_in_writes_nothing_and_says_why(student, screen, changes, said):
    response = check_in(student, screen, **changes)
    assert response.status_code == 400
    assert said.lower() in text(response).lower()
    assert "Nothing was saved yet" in text(response)
    assert not CheckIn.objects.exists()
    assert Board.current_version() == 0


def test_someone_already_in_line_cannot_check_in_again_and_learns_nothing_more(student, screen):
    VisitFactory(student_name="Zed Quigley", student_number="21234567")
    response = check_in(student, screen)
    assert "already checked in or in a queue" in text(response)
    assert "Zed" not in response.content.decode()
    assert not CheckIn.objects.exists()
    # Without the room's code, not even that: numbers cannot be tried from outside.
    outside = check_in(student, screen, room_code="AAAA")
    assert "already" not in text(outside)


def test_a_check_in_for_a_team_gone_since_waits_for_the_leader_to_choose(
    student, screen, leader_client
):
    check_in(student, screen)
    Team.objects.filter(slug="studysmarter").update(is_active=False)
    entry = CheckIn.objects.get()
    desk = leader_client.get(reverse("queueing:desk")).text
    assert '<option value="">Choose a team</option>' in desk
    refused = leader_client.post(reverse("queueing:accept_checkin", args=[entry.pk]), follow=True)
    assert "Choose a team for Ada Lovelace." in text(refused)
    assert not Visit.objects.exists()


def test_an_address_that_is_not_a_secret_is_not_found(student):
    for path in ("/display/%00abc/", "/checkin/a'b/", "/me/" + "k" * 200 + "/"):
        assert student.get(path).status_code == 404


def test_a_flood_from_one_address_is_refused_and_writes_nothing_more(student, screen):
    for n in range(30):
        check_in(student, screen, student_number=f"{22000000 + n}", room_code="AAAA")
    response = check_in(student, screen, student_number="22100000")
    assert response.status_code == 429
    assert "Too many check-ins from this network" in text(response)
    assert not CheckIn.objects.exists()


def test_one_number_checking_in_again_and_again_is_refused(student, screen, leader):
    for _ in range(3):
        check_in(student, screen)
        CheckIn.objects.get(status=CheckIn.Status.PENDING).dismiss(by=leader)
    response = check_in(student, screen)
    assert response.status_code == 429
    assert "checked in several times in the last hour" in text(response)
    assert CheckIn.objects.count() == 3


def test_a_check_in_needs_the_forms_csrf_token(screen):
    phone = Client(enforce_csrf_checks=True)
    url = reverse("students:checkin", args=[screen.checkin_token])
    assert phone.post(url, checkin_data(screen)).status_code == 403
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', phone.get(url).text)[1]
    data = checkin_data(screen, csrfmiddlewaretoken=token)
    assert phone.post(url, data).status_code == 302


def test_a_university_address_is_made_from_the_number(student, screen, settings):
    settings.RESQ_STUDENT_EMAIL_PATTERN = "{number}@student.example.edu"
    check_in(student, screen, wants_email="on", notify_email="")
    assert CheckIn.objects.get().notify_email == "21234567@student.example.edu"


# --- the student's own page ------------------------------------------------------------


def test_the_students_page_polls_cheaply_and_says_when_their_session_starts(
    student, leader, studysmarter
):
    ahead = VisitFactory()
    visit = Visit.add(
        by=leader, student_name="Ada Lovelace", student_number="21234567",
        team=studysmarter, enquiry_type=EnquiryType.objects.get(name="Essay"),
    )  # fmt: skip
    page = student.get(reverse("students:place", args=[visit.student_key]))
    assert "You are number 2 in line" in text(page)
    assert "Ada" not in page.content.decode()  # the page shows the code, not the name
    poll = reverse("students:place_poll", args=[visit.student_key])
    version, digest = page["X-Board-Version"], page.context["digest"]
    assert student.get(poll, {"v": version, "s": digest}).status_code == 204

    VisitFactory()  # behind them: the board moves, their page does not
    Board.bump()
    unchanged = student.get(poll, {"v": version, "s": digest})
    assert unchanged.status_code == 204
    assert unchanged["X-Board-Version"] != version

    ahead.start_session(by=leader)
    assert "You're next" in text(student.get(poll, {"v": version, "s": digest}))
    visit.start_session(by=leader)
    called = student.get(poll, {"v": version, "s": digest})
    assert "Your session is starting: please come to the desk." in text(called)


def test_a_student_can_leave_the_queue_from_their_page(student, leader, studysmarter):
    visit = VisitFactory(student_key="k" * 43)
    student.post(reverse("students:leave", args=[visit.student_key]))
    visit.refresh_from_db()
    assert (visit.status, visit.outcome, visit.ended_by) == ("removed", "cancelled", None)
    page = student.get(reverse("students:place", args=[visit.student_key]))
    assert "You left the queue." in text(page)


def test_a_students_page_is_gone_once_their_visit_is_long_over(student):
    visit = VisitFactory(
        student_key="k" * 43, status=Visit.Status.FINISHED, outcome=Visit.Outcome.FINISHED,
        arrived_at=timezone.now() - timedelta(hours=4),
        started_at=timezone.now() - timedelta(hours=3, minutes=50),
        ended_at=timezone.now() - timedelta(hours=3),
    )  # fmt: skip
    assert student.get(reverse("students:place", args=[visit.student_key])).status_code == 404
    assert student.get(reverse("students:place", args=["k" * 42])).status_code == 404


# --- emails ----------------------------------------------------------------------------


def test_emails_go_to_a_real_smtp_server_once_each(leader, studysmarter, smtp_inbox, settings):
    settings.RESQ_SITE_URL = "https://resq.example.edu"
    visit = VisitFactory(ticket="S-003", student_key="k" * 43, notify_email="ada@example.edu")
    notices.queue([visit.pk], StudentNotice.Kind.NEXT)
    notices.forget_in_process()  # another process's board, at the head too: no more
    notices.queue([visit.pk], StudentNotice.Kind.NEXT)

    assert notices.send_due() == 1
    assert notices.send_due() == 0
    [message] = smtp_inbox.messages()
    assert message["To"] == "ada@example.edu"
    assert message["Subject"] == "You're next: S-003 at STUDYSmarter"
    body = message.get_content()
    assert "https://resq.example.edu/me/" + "k" * 43 + "/" in body
    assert StudentNotice.objects.get().status == StudentNotice.Status.SENT


def test_starting_a_session_queues_the_starting_email_for_after_the_commit(
    leader, studysmarter, django_capture_on_commit_callbacks, monkeypatch
):
    visit = VisitFactory(ticket="S-003", notify_email="ada@example.edu")
    sent = []
    monkeypatch.setattr(notices, "send_soon", lambda: sent.append("kick"))
    with django_capture_on_commit_callbacks(execute=True):
        visit.start_session(by=leader)
    assert StudentNotice.objects.get().kind == StudentNotice.Kind.STARTED
    assert sent == ["kick"]


def test_the_head_of_a_queue_is_emailed_when_the_desk_shows_them_next(leader_client):
    first = VisitFactory(notify_email="ada@example.edu")
    VisitFactory(notify_email="bo@example.edu")
    leader_client.get(reverse("queueing:desk"))
    assert list(StudentNotice.objects.values_list("visit", "kind")) == [(first.pk, "next")]


def test_a_mail_server_that_refuses_is_tried_again_then_given_up(leader, settings):
    from resq.tests.smtp import free_port, smtp_mailer

    settings.MAILERS = smtp_mailer(free_port())  # nothing listens there
    visit = VisitFactory(ticket="S-003", notify_email="ada@example.edu")
    notices.queue([visit.pk], StudentNotice.Kind.NEXT)
    now = timezone.now()
    for minute in (0, 1, 3, 7, 15):  # each wait twice the one before
        assert notices.send_due(now=now + timedelta(minutes=minute, seconds=1)) == 0
    notice = StudentNotice.objects.get()
    assert (notice.status, notice.attempts) == (StudentNotice.Status.FAILED, 5)
    assert notice.last_error == "ConnectionRefusedError"


def test_a_notice_no_longer_true_is_not_sent(leader, smtp_inbox):
    visit = VisitFactory(ticket="S-003", notify_email="ada@example.edu")
    notices.queue([visit.pk], StudentNotice.Kind.NEXT)
    visit.remove(by=leader, outcome=Visit.Outcome.CANCELLED)
    notices.send_due()
    assert smtp_inbox.envelopes == []
    assert StudentNotice.objects.get().status == StudentNotice.Status.FAILED


# --- retention -------------------------------------------------------------------------


def test_the_night_forgets_check_ins_addresses_and_keys_of_days_gone(student, screen):
    check_in(student, screen, wants_email="on", notify_email="ada@example.edu")
    old = timezone.now() - timedelta(days=1, hours=1)
    CheckIn.objects.update(created_at=old)
    gone = finished_visit(old, waited=5, minutes=20, student_key="k" * 43, notify_email="b@x.edu")
    overnight = VisitFactory(student_key="o" * 43, notify_email="o@example.edu", arrived_at=old)
    today = VisitFactory(student_key="t" * 43, notify_email="cy@example.edu")

    forget_contact_details()

    assert not CheckIn.objects.exists()
    gone.refresh_from_db()
    today.refresh_from_db()
    assert (gone.student_key, gone.notify_email) == ("", "")
    overnight.refresh_from_db()
    assert (today.student_key, today.notify_email) == ("t" * 43, "cy@example.edu")
    assert overnight.student_key == "o" * 43  # still waiting: their page still works


def test_the_schedulers_job_sends_what_is_due(leader, smtp_inbox):
    visit = VisitFactory(ticket="S-003", notify_email="ada@example.edu")
    notices.queue([visit.pk], StudentNotice.Kind.NEXT)
    out = io.StringIO()
    call_command("send_student_emails", stdout=out)
    assert out.getvalue() == "Sent 1 email(s) to students.\n"
    assert len(smtp_inbox.envelopes) == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_app_sends_in_the_background_once_the_change_commits(leader, smtp_inbox):
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("the sender's thread has a connection of its own: not to an in-memory db")
    visit = VisitFactory(ticket="S-003", notify_email="ada@example.edu")
    Team.objects.filter(pk=visit.team_id).update(available_staff=1)
    visit.start_session(by=leader)
    deadline = time.monotonic() + 10
    while not smtp_inbox.envelopes and time.monotonic() < deadline:
        time.sleep(0.05)
    [message] = smtp_inbox.messages()
    assert message["Subject"] == "Please come to the desk: S-003"


def test_a_refusal_is_recorded_without_the_students_address(leader, settings):
    from aiosmtpd.controller import Controller

    from resq.tests.smtp import free_port, smtp_mailer

    class Refusing:
        async def handle_RCPT(self, server, session, envelope, address, options):
            return f"550 <{address}> no such mailbox"

    controller = Controller(Refusing(), hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.MAILERS = smtp_mailer(controller.port)
    try:
        visit = VisitFactory(ticket="S-003", notify_email="ada@example.edu")
        notices.queue([visit.pk], StudentNotice.Kind.NEXT)
        notices.send_due()
    finally:
        controller.stop()
    assert StudentNotice.objects.get().last_error == "SMTPRecipientsRefused (550)"
