import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from queueing.models import EnquiryType, Visit
from queueing.tests.factories import TeamFactory, VisitFactory
from reporting.models import Term, TermBreak

pytestmark = pytest.mark.django_db

URL = "/reports/"


@pytest.fixture
def coordinator_client(client, coordinator):
    client.force_login(coordinator)
    return client


@pytest.fixture
def semester():
    term = Term.objects.create(
        name="Semester 2 2026", first_day=date(2026, 7, 27), last_day=date(2026, 11, 6)
    )
    TermBreak.objects.create(term=term, first_day=date(2026, 9, 28), last_day=date(2026, 10, 2))
    Term.objects.create(
        name="Semester 1 2026", first_day=date(2026, 2, 23), last_day=date(2026, 6, 5)
    )
    return term


def finished_visit(arrived: datetime, **kwargs) -> Visit:
    return VisitFactory(
        arrived_at=arrived,
        started_at=arrived + timedelta(minutes=12),
        ended_at=arrived + timedelta(minutes=30),
        status=Visit.Status.FINISHED,
        outcome=Visit.Outcome.FINISHED,
        **kwargs,
    )


def visits_in_week_of_3_aug(n: int) -> None:
    # 02:00 UTC is 10:00 in Perth.
    for i in range(n):
        finished_visit(datetime(2026, 8, 3 + i % 5, 2, i % 50, tzinfo=UTC))


def figures(response) -> dict[str, dict]:
    html = response.content.decode()
    found = re.findall(
        r'<script id="figure-([a-z-]+)" type="application/json">(.*?)</script>', html
    )
    return {name: json.loads(payload) for name, payload in found}


def test_it_shows_coordinators_the_dashboard_with_charts(coordinator_client):
    visits_in_week_of_3_aug(5)

    response = coordinator_client.get(URL, {"view": "week", "day": "2026-08-05"})

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert "Week of Mon 3 Aug 2026" in html
    assert 'data-figure-id="figure-visits-per-day"' in html
    assert "plotly/plotly.min.js" in html
    plotted = figures(response)
    assert set(plotted) >= {
        "visits-per-day",
        "popular-units",
        "team-comparison",
        "wait-distribution",
        "peak-hours",
        "outcomes",
    }
    served = plotted["visits-per-day"]["data"][0]
    assert served["y"] == [1, 1, 1, 1, 1, 0, 0]
    assert "<script>" not in html  # figures reach the page only through json_script


def test_it_shows_managers_the_dashboard(client, manager):
    client.force_login(manager)
    assert client.get(URL).status_code == 200


def test_it_links_data_analytics_in_the_navigation(coordinator_client):
    html = coordinator_client.get(URL).content.decode()
    assert 'href="/reports/" aria-current="page">Data Analytics</a>' in html


def test_it_forbids_student_leaders(leader_client):
    assert leader_client.get(URL).status_code == 403
    assert leader_client.get(reverse("reporting:chart_csv", args=["outcomes"])).status_code == 403


def test_it_hides_the_link_from_student_leaders(leader_client):
    assert "Data Analytics" not in leader_client.get("/desk/").content.decode()


def test_it_sends_anonymous_users_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_it_refuses_post(coordinator_client):
    assert coordinator_client.post(URL).status_code == 405


def test_it_answers_htmx_with_only_the_charts(coordinator_client, htmx_headers):
    response = coordinator_client.get(
        URL, {"view": "week", "day": "2026-08-05"}, headers=htmx_headers
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="charts"')
    assert "<html" not in html
    assert "Week of Mon 3 Aug 2026" in html
    assert "HX-Request" in response["Vary"]


def test_it_says_plainly_when_a_period_is_empty(coordinator_client):
    html = coordinator_client.get(URL, {"view": "week", "day": "2031-01-01"}).content.decode()

    assert "No visits in this period." in html
    assert 'data-figure-id="figure-visits-per-day"' not in html


def test_it_shows_headlines_with_change_against_the_previous_week(coordinator_client):
    visits_in_week_of_3_aug(4)
    finished_visit(datetime(2026, 7, 28, 2, 0, tzinfo=UTC))

    response = coordinator_client.get(URL, {"day": "2026-08-03"})

    visits = response.context["headlines"][0]
    assert (visits["label"], visits["value"], visits["previous"]) == ("Visits", "4", "1")
    # Told as the weekly page and the daily email tell it: arrow, amount, word, percent.
    assert visits["change"].text == "▲ 3 more (+300 %)"
    waits = {h["label"]: h for h in response.context["headlines"]}["Median wait"]
    assert (waits["value"], waits["change"].text) == ("12 min", "= no change")
    html = response.content.decode()
    assert "Changes are against Mon 27 Jul 2026 – Sun 2 Aug 2026." in html
    assert "▲ 3 more (+300 %)" in html


def test_a_term_is_compared_with_the_term_before_it(coordinator_client, semester):
    visits_in_week_of_3_aug(1_234)
    for day in range(3):  # Semester 1 2026, which began on 23 February
        finished_visit(datetime(2026, 3, 2 + day, 2, 0, tzinfo=UTC))
    finished_visit(datetime(2026, 7, 20, 2, 0, tzinfo=UTC))  # between the terms

    response = coordinator_client.get(URL, {"view": "term", "term": semester.pk})

    visits = response.context["headlines"][0]
    assert (visits["value"], visits["previous"]) == ("1,234", "3")
    assert visits["change"].text == "▲ 1,231 more (+41,033 %)"
    html = response.content.decode()
    assert "Changes are against Semester 1 2026 (Mon 23 Feb 2026 – Fri 5 Jun 2026)." in html


def test_one_week_of_a_term_is_compared_with_the_week_before(coordinator_client, semester):
    visits_in_week_of_3_aug(2)
    finished_visit(datetime(2026, 7, 28, 2, 0, tzinfo=UTC))

    response = coordinator_client.get(URL, {"view": "term", "term": semester.pk, "term_week": 2})

    assert response.context["headlines"][0]["change"].text == "▲ 1 more (+100 %)"
    assert "Changes are against Mon 27 Jul 2026 – Sun 2 Aug 2026." in response.content.decode()


def test_it_plots_the_weekly_trend_against_the_previous_term(coordinator_client, semester):
    visits_in_week_of_3_aug(3)

    response = coordinator_client.get(URL, {"view": "term", "term": semester.pk})

    trend = next(c for c in response.context["charts"] if c.name == "weekly-trend")
    assert trend.headers == ["Week of term", "Semester 2 2026", "Semester 1 2026"]
    assert trend.rows[1] == [2, 3, 0]
    assert figures(response)["weekly-trend"]["data"][0]["y"][1] == 3


def test_it_exports_exactly_the_plotted_numbers_as_csv(coordinator_client):
    visits_in_week_of_3_aug(5)
    params = {"view": "week", "day": "2026-08-05"}
    plotted = figures(coordinator_client.get(URL, params))["visits-per-day"]["data"]

    response = coordinator_client.get(
        reverse("reporting:chart_csv", args=["visits-per-day"]), params
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "resq-visits-per-day-2026-08-03-to-2026-08-09.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Day", "Served", "Removed", "Open"]
    assert [r[0] for r in rows[1:]] == [f"2026-08-{d:02d}" for d in range(3, 10)]
    for column, trace in enumerate(plotted, start=1):
        assert [int(r[column]) for r in rows[1:]] == trace["y"]


def test_it_neutralises_formulas_in_csv(coordinator_client):
    team = TeamFactory(name='=HYPERLINK("http://evil.example","Click")', slug="evil")
    finished_visit(datetime(2026, 8, 3, 2, 0, tzinfo=UTC), team=team)

    response = coordinator_client.get(
        reverse("reporting:chart_csv", args=["team-comparison"]), {"day": "2026-08-03"}
    )

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert ['\'=HYPERLINK("http://evil.example","Click")', "1"] in rows


def test_it_answers_an_unknown_chart_csv_with_404(coordinator_client):
    assert coordinator_client.get("/reports/charts/nope.csv").status_code == 404


def test_it_names_the_team_in_the_csv_filename(coordinator_client):
    response = coordinator_client.get(
        reverse("reporting:chart_csv", args=["outcomes"]),
        {"view": "range", "start": "2026-08-01", "end": "2026-08-31", "team": "librarian"},
    )
    assert "resq-outcomes-librarian-2026-08-01-to-2026-08-31.csv" in response["Content-Disposition"]


#: Session, user, permissions, teams, terms; then the figures. A term's own view reads
#: its weekly trend from the visits per day it has already counted; any other view
#: counts the term's days once more. Pinned so that a new chart or a lost shared
#: result is a decision, not an accident. The wait estimates' check is one query.
DASHBOARD_QUERIES = 21


@pytest.mark.parametrize(
    ("params", "queries"),
    [
        ({"view": "week", "day": "2026-08-05"}, DASHBOARD_QUERIES + 1),
        (
            {"view": "range", "start": "2026-07-01", "end": "2026-08-31", "team": "studysmarter"},
            DASHBOARD_QUERIES + 1,
        ),
        ({"view": "term"}, DASHBOARD_QUERIES),
    ],
)
def test_it_uses_a_fixed_number_of_queries(coordinator_client, semester, params, queries):
    visits_in_week_of_3_aug(5)
    with CaptureQueriesContext(connection) as few:
        coordinator_client.get(URL, params)
    visits_in_week_of_3_aug(45)
    with CaptureQueriesContext(connection) as many:
        response = coordinator_client.get(URL, params)

    assert response.status_code == 200
    assert len(many) == len(few)
    assert len(many) == queries, [q["sql"][:80] for q in many]


@pytest.mark.parametrize(
    "query",
    [
        "day=2026-02-30",
        "view=range&start=2026-08-31&end=2026-08-01",
        "view=range&start=1970-01-01&end=2026-01-01",
        "view=range&start=0001-01-01&end=9999-12-31",
        "view=term&term=999&term_week=99",
        "team=%27%3B+DROP+TABLE+queueing_visit%3B--",
        "view=%3Cscript%3Ealert(1)%3C%2Fscript%3E&day=%3Cscript%3E",
        "day=2026-08-05&day=nonsense",
        "term_week=-1&view=term",
        "start=%00&view=range",
    ],
)
def test_it_never_fails_on_bad_input(coordinator_client, semester, query):
    response = coordinator_client.get(f"{URL}?{query}")
    csv_response = coordinator_client.get(f"/reports/charts/outcomes.csv?{query}")

    assert response.status_code == 200
    assert csv_response.status_code == 200
    assert "<script>alert" not in response.content.decode()
    assert Visit.objects.model._meta.db_table in connection.introspection.table_names()


def test_it_links_to_the_printable_week_of_the_period(client, coordinator):
    client.force_login(coordinator)
    response = client.get(
        "/reports/", {"view": "range", "start": "2026-08-03", "end": "2026-08-14"}
    )
    assert response.status_code == 200
    assert '/reports/week/?day=2026-08-14"' in response.text


def test_it_shows_which_faculties_and_enquiry_types_bring_students_in(coordinator_client):
    referencing = EnquiryType.objects.get(name="Referencing")
    finished_visit(datetime(2026, 8, 3, 2, 0, tzinfo=UTC), unit_code="CITS3200")
    finished_visit(datetime(2026, 8, 4, 2, 0, tzinfo=UTC), unit_code="CITS1401")
    finished_visit(
        datetime(2026, 8, 5, 2, 0, tzinfo=UTC), unit_code="LAWS1111", enquiry_type=referencing
    )
    params = {"view": "week", "day": "2026-08-05"}

    plotted = figures(coordinator_client.get(URL, params))
    faculties = plotted["popular-faculties"]["data"][0]
    assert dict(zip(faculties["y"], faculties["x"], strict=True)) == {"CITS": 2, "LAWS": 1}

    response = coordinator_client.get(
        reverse("reporting:chart_csv", args=["enquiry-types"]), params
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [["Enquiry type", "Visits"], ["Essay", "2"], ["Referencing", "1"]]


def test_it_shows_at_which_hours_the_wait_was_worst(coordinator_client):
    # 02:00 and 03:00 UTC are 10:00 and 11:00 in Perth; waits of 12 minutes.
    finished_visit(datetime(2026, 8, 3, 2, 0, tzinfo=UTC))
    finished_visit(datetime(2026, 8, 4, 3, 0, tzinfo=UTC))
    params = {"view": "week", "day": "2026-08-05"}

    median = figures(coordinator_client.get(URL, params))["wait-by-hour"]["data"][0]
    assert median["x"] == ["10:00", "11:00"]
    assert median["y"] == [12.0, 12.0]

    response = coordinator_client.get(reverse("reporting:chart_csv", args=["wait-by-hour"]), params)
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Hour", "Median wait (min)", "90th percentile wait (min)"]
    assert rows[1:] == [["10:00", "12.0", "12.0"], ["11:00", "12.0", "12.0"]]


def test_it_shows_staff_typed_names_as_text_in_charts_and_tables(coordinator_client):
    link = '<a href="https://evil.example">click</a>'
    team = TeamFactory(name="<b>Bold</b>", slug="bold")
    enquiry = EnquiryType.objects.create(name=link)
    finished_visit(datetime(2026, 8, 3, 2, 0, tzinfo=UTC), team=team, enquiry_type=enquiry)
    params = {"view": "week", "day": "2026-08-05"}

    response = coordinator_client.get(URL, params)

    plotted = json.dumps(figures(response))
    # plotly.js draws <a href> and <b> in labels, legends and hover text as markup.
    assert "<a " not in plotted and "<b>" not in plotted
    assert "&lt;b&gt;Bold&lt;/b&gt;" in json.dumps(figures(response)["team-comparison"])
    html = response.content.decode()
    # The data tables show the names as typed: escaped once, for HTML.
    assert '<th scope="row">&lt;b&gt;Bold&lt;/b&gt;</th>' in html
    assert "&amp;lt;" not in html
    csv_response = coordinator_client.get(
        reverse("reporting:chart_csv", args=["enquiry-types"]), params
    )
    rows = list(csv.reader(io.StringIO(csv_response.content.decode())))
    assert [link, "1"] in rows


# --- like with like (issue 13) ------------------------------------------------------

PERTH = ZoneInfo("Australia/Perth")


@pytest.fixture
def monday_morning(settings, monkeypatch):
    """Today is Monday 7 December 2026, 11:00 in Perth: the week has barely begun."""
    settings.TIME_ZONE = "Australia/Perth"
    now = datetime(2026, 12, 7, 11, 0, tzinfo=PERTH)
    monkeypatch.setattr("django.utils.timezone.now", lambda: now.astimezone(UTC))
    return now


def test_it_compares_an_unfinished_week_with_the_same_days_of_the_week_before(
    coordinator_client, monday_morning
):
    # Last week: ten on its Monday, eleven more on the days this week has not reached.
    last_monday = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # 10:00 in Perth
    for i in range(10):
        finished_visit(last_monday + timedelta(minutes=i))
    for i in range(11):
        finished_visit(last_monday + timedelta(days=1 + i % 6))
    finished_visit(datetime(2026, 12, 7, 1, 0, tzinfo=UTC))
    finished_visit(datetime(2026, 12, 7, 1, 30, tzinfo=UTC))

    response = coordinator_client.get(URL)

    visits = response.context["headlines"][0]
    # Monday's 2 against last Monday's 10, not against last week's 21.
    assert (visits["value"], visits["previous"]) == ("2", "10")
    assert (
        "Changes are against the same days of the previous week (Mon 30 Nov 2026), "
        "as this week runs only to today." in response.content.decode()
    )


def test_it_names_the_monday_of_the_printable_week(coordinator_client):
    html = coordinator_client.get(URL, {"view": "week", "day": "2026-08-05"}).content.decode()

    assert "Printable weekly summary for the week of Mon 3 Aug" in html


def test_it_offers_only_the_chosen_terms_teaching_weeks(coordinator_client, semester):
    response = coordinator_client.get(URL, {"view": "term", "term": semester.pk})

    select = re.search(r'<select name="term_week".*?</select>', response.text, re.S).group()
    options = re.findall(r"<option[^>]*>([^<]*)</option>", select)
    # 27 July to 6 November, less the study break: 14 teaching weeks.
    assert options[0] == "Whole term"
    assert options[1] == "Week 1 · Mon 27 Jul"
    assert options[-1] == "Week 14 · Mon 2 Nov"
    assert len(options) == 15


def test_it_exports_the_very_visits_the_dashboard_counts(coordinator_client):
    visits_in_week_of_3_aug(5)
    finished_visit(datetime(2026, 8, 10, 2, 0, tzinfo=UTC))  # the Monday after

    html = coordinator_client.get(URL, {"view": "week", "day": "2026-08-05"}).content.decode()

    link = re.search(r'href="(/reports/export/\?[^"]*)"[^>]*>Export these visits', html)
    assert link, "no link to export the week shown"
    export = coordinator_client.get(link.group(1).replace("&amp;", "&"))
    assert export.context["count"] == 5
