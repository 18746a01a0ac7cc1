"""Wait estimates on the desk: each waiting student's and a newcomer's per team, shown
as the board shows everything (once per version), and stored as shown."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from queueing import estimates
from queueing.models import Board, EnquiryType, Visit, WaitEstimate
from queueing.templatetags.desk import estimate_text
from queueing.tests.factories import VisitFactory, finished_visit
from queueing.views import CURRENT_ESTIMATE, ESTIMATE_FIELDS

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(studysmarter, frozen):
    """Two advisers in sessions that have run 10 and 5 minutes; sessions here last 20
    (the last four weeks say) and the desk calls a student at once."""
    for day in range(1, 21):
        finished_visit(frozen - timedelta(days=day), waited=0, minutes=20)
    for minutes in (10, 5):
        VisitFactory(
            arrived_at=frozen - timedelta(minutes=minutes),
            started_at=frozen - timedelta(minutes=minutes),
            status=Visit.Status.IN_SESSION,
        )
    Board.bump()
    return studysmarter


def queue(response) -> str:
    text = response.text
    return text[text.index('id="queue-studysmarter-heading"') : text.index("Librarian Queue")]


def estimate_of(queue_html: str, visit: Visit) -> str:
    row = queue_html[queue_html.index(f'id="visit-{visit.pk}"') :]
    shown = row[row.index('class="estimate') :]
    return shown[: shown.index("</span>")].rpartition(">")[2]


def test_it_shows_each_waiting_student_and_a_newcomer_when_their_session_should_start(
    leader_client, desk, frozen
):
    ana = VisitFactory(student_name="Ana", arrived_at=frozen - timedelta(minutes=4))
    ben = VisitFactory(student_name="Ben", arrived_at=frozen - timedelta(minutes=3))

    shown = queue(leader_client.get(reverse("queueing:desk")))

    # Ana gets the adviser free in 10 minutes, Ben the other in 15; a newcomer waits
    # for Ana's session to end, at 30.
    assert estimate_of(shown, ana) == "starts in 10–11 min"
    assert estimate_of(shown, ben) == "starts in 15–20 min"
    assert "2 waiting · someone joining now " in shown
    assert ">starts in 30–35 min</span>" in shown[: shown.index("</h3>")]
    assert list(
        WaitEstimate.objects.values_list("visit", "first", "ahead", "staff", "median_minutes")
    ) == [(ana.pk, True, 0, 2, 10.0), (ben.pk, True, 1, 2, 15.0)]


def test_it_estimates_again_when_a_place_in_line_changes_and_keeps_the_rest(
    leader_client, leader, desk, frozen
):
    ana = VisitFactory(student_name="Ana", arrived_at=frozen - timedelta(minutes=4))
    ben = VisitFactory(student_name="Ben", arrived_at=frozen - timedelta(minutes=3))
    leader_client.get(reverse("queueing:desk"))

    VisitFactory(student_name="Cleo")  # behind them: nobody's place changes
    leader_client.get(reverse("queueing:desk"))
    assert ana.estimates.count() == ben.estimates.count() == 1

    first_session = Visit.objects.filter(status=Visit.Status.IN_SESSION).earliest("started_at")
    first_session.finish(by=leader)
    ana.start_session(by=leader)
    shown = queue(leader_client.get(reverse("queueing:desk")))

    # Ben is first now: the adviser of the 5-minute session frees up in 15.
    assert estimate_of(shown, ben) == "starts in 15–20 min"
    assert list(ben.estimates.values_list("first", "current", "ahead", "median_minutes")) == [
        (True, False, 1, 15.0),
        (False, True, 0, 15.0),
    ]
    assert ana.estimates.count() == 1


def test_a_student_joining_is_given_the_estimate_shown_for_someone_joining_now(
    leader_client, desk, frozen, htmx_headers, monkeypatch
):
    VisitFactory(student_name="Ana", arrived_at=frozen - timedelta(minutes=4))
    heading = queue(leader_client.get(reverse("queueing:desk"))).partition("</h3>")[0]
    shown_to_newcomer = heading[heading.index("data-from=") : heading.index(">starts")]
    add = {"student_name": "Ben Ito", "student_number": "21234567", "team": desk.pk}
    add["enquiry_type"] = EnquiryType.objects.get(name="Essay").pk
    monkeypatch.setattr(timezone, "now", lambda: frozen + timedelta(minutes=1))

    with CaptureQueriesContext(connection) as queries:
        board = queue(leader_client.post(reverse("queueing:add"), add, headers=htmx_headers))

    ben = Visit.objects.get(student_name="Ben Ito")
    assert shown_to_newcomer in board[board.index(f'id="visit-{ben.pk}"') :]
    # Stored as shown: from Ben's joining, a minute after it was worked out.
    assert ben.estimates.get().made_at == frozen + timedelta(minutes=1)
    # Stored in one statement: nobody else's place changed.
    writes = [q["sql"] for q in queries if q["sql"].startswith(("INSERT", "UPDATE", "DELETE"))]
    assert len([sql for sql in writes if "queueing_waitestimate" in sql]) == 1


def test_it_simulates_a_line_again_only_when_more_than_its_end_changes(desk, frozen):
    ana, ben, cleo = (VisitFactory(student_name=name) for name in ("Ana", "Ben", "Cleo"))
    rows = Visit.objects.annotate(estimate=CURRENT_ESTIMATE).values_list(
        "pk", *ESTIMATE_FIELDS, named=True
    )

    def estimate(*line, drawn=lambda: ([10.0, 20.0, 30.0], [])):
        return estimates.queue_estimates(
            desk, [rows.get(pk=v.pk) for v in line], [], now=frozen, version=1, drawn=drawn
        )

    def simulated_again():
        raise AssertionError("simulated again")

    _, newcomer, _ = estimate(ana)
    # Ben joins: he is given the newcomer's place of the line already simulated.
    shown, _, made = estimate(ana, ben, drawn=simulated_again)
    assert shown[ben.pk] == newcomer and [e.visit_id for e in made] == [ana.pk, ben.pk]
    # Ana leaves the head of the line: everyone's place changes, so it is simulated again.
    with pytest.raises(AssertionError, match="simulated again"):
        estimate(ben, cleo, drawn=simulated_again)


def test_it_shows_no_estimate_without_an_adviser_and_one_when_staff_arrive(
    leader_client, studysmarter, frozen
):
    finished_visit(frozen - timedelta(days=1), waited=0, minutes=20)
    studysmarter.available_staff = 0
    studysmarter.save()
    ana = VisitFactory(student_name="Ana")

    shown = queue(leader_client.get(reverse("queueing:desk")))

    assert estimate_of(shown, ana) == "—"
    assert "joining now" not in shown
    assert not WaitEstimate.objects.exists()

    leader_client.post(reverse("queueing:staffing", args=["studysmarter"]), {"delta": 1})
    shown = queue(leader_client.get(reverse("queueing:desk")))

    assert estimate_of(shown, ana) == "starts any moment"
    assert "joining now <span" in shown


def test_it_stores_a_versions_estimates_once_when_two_screens_render_it(desk, frozen):
    ana = VisitFactory(student_name="Ana")

    def made() -> list[WaitEstimate]:
        """What a process rendering version 7 would store, as it read the board."""
        estimates.forget_in_process()
        rows = Visit.objects.annotate(estimate=CURRENT_ESTIMATE).values_list(
            "pk", *ESTIMATE_FIELDS, named=True
        )
        _, _, new = estimates.queue_estimates(
            desk, [rows.get(pk=ana.pk)], [], now=frozen, version=7, drawn=lambda: ([20.0], [])
        )
        return new

    # Both read the board before either stored its estimates.
    first, second = made(), made()
    estimates.save_estimates(first)
    estimates.save_estimates(second)

    assert list(ana.estimates.values_list("board_version", "first", "current")) == [(7, True, True)]


@pytest.mark.parametrize("size", [2, 40])
def test_it_estimates_the_whole_line_in_the_same_queries_whatever_its_length(
    leader_client, desk, frozen, size
):
    VisitFactory.create_batch(size, arrived_at=frozen - timedelta(minutes=1))
    leader_client.get(reverse("queueing:desk"))
    desk.available_staff = 3
    desk.save()
    Board.bump()  # every student's estimate changes

    with CaptureQueriesContext(connection) as queries:
        leader_client.get(reverse("queueing:desk"))

    # The new version's board (9 queries), then in one transaction (a savepoint here,
    # inside the test's) the estimates made not current and the new ones.
    assert len(queries) == 9 + 2 + 2
    assert WaitEstimate.objects.count() == 2 * size


@pytest.mark.parametrize(
    ("low", "high", "text"),
    [
        (-5, 0.5, "starts any moment"),
        (0, 4, "starts within 4 min"),
        (2.5, 7.2, "starts in 2–8 min"),
        (10, 10, "starts in 10–11 min"),
        (12, 27, "starts in 10–30 min"),
        (0, 45, "starts within 45 min"),
    ],
)
def test_it_says_an_estimate_in_coarse_minutes(frozen, low, high, text):
    at = frozen + timedelta(minutes=low), frozen + timedelta(minutes=high)
    assert estimate_text(*at, frozen) == text
