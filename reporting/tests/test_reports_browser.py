"""The weekly sheet and the dashboard's filters in Chromium: what prints, what axe finds,
and what the Week of term list offers as the term changes."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from queueing.models import EnquiryType, Team, Visit
from queueing.tests.factories import VisitFactory
from queueing.tests.test_accessibility import AXE_CONTEXT, Audit

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

pytest_plugins = ["queueing.tests.browser"]

PERTH = ZoneInfo("Australia/Perth")
# A process's first dashboard takes seconds (plotly builds its figure classes on first
# use), longer than the browser fixtures' default wait.
FIRST_DASHBOARD_MS = 20_000
UNITS = ["CITS1401", "ACCT1101", "ANHB1102", "CITS2200", "ECON1101", "LAWS1111", "PHYS1001"]


def busy_week(monday: date) -> None:
    """A full week for two teams: mornings busier, a few students removed, waits of up
    to an hour, seven units."""
    teams = list(Team.objects.filter(slug__in=["studysmarter", "librarian"]))
    types = list(EnquiryType.objects.all()[:5])
    for i in range(140):
        day = monday + timedelta(days=i % 6)
        hour = 9 + min((i * 7) % 11, (i * 3) % 8)
        arrived = datetime(day.year, day.month, day.day, hour, i % 60, tzinfo=PERTH)
        wait = timedelta(minutes=(i * 11) % 65)
        removed = i % 13 == 0
        VisitFactory(
            team=teams[(i // 6) % 3 == 0],
            enquiry_type=types[(i // 3) % len(types)],
            unit_code=UNITS[min(i % 11, len(UNITS) - 1)],
            arrived_at=arrived,
            started_at=None if removed else arrived + wait,
            ended_at=arrived + wait + timedelta(minutes=15),
            status=Visit.Status.REMOVED if removed else Visit.Status.FINISHED,
            outcome=Visit.Outcome.CANCELLED if removed else Visit.Outcome.FINISHED,
        )


def test_it_prints_the_weekly_sheet_with_its_charts_on_one_a4_page(open_page, coordinator, terms):
    busy_week(date(2026, 8, 3))
    page = open_page(f"{reverse('reporting:weekly')}?day=2026-08-05", user=coordinator)
    expect(page.get_by_role("heading", name="Arrivals by hour")).to_be_visible()
    expect(page.locator(".chart-days svg.bars rect.bar").first).to_be_visible()

    page.emulate_media(media="print")
    pdf = page.pdf(format="A4", prefer_css_page_size=True)

    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert pages == 1, f"the weekly sheet prints on {pages} pages"


def test_it_finds_nothing_on_the_weekly_sheet_and_the_dashboard(open_page, coordinator, terms):
    busy_week(date(2026, 8, 3))
    audit = Audit()
    page = open_page(
        f"{reverse('reporting:weekly')}?day=2026-08-05", user=coordinator, **AXE_CONTEXT
    )
    expect(page.get_by_role("heading", name="Visits per day, by team")).to_be_visible()
    audit(page, "weekly sheet with charts")

    page.goto(
        f"{reverse('reporting:dashboard')}?view=week&day=2026-08-05",
        wait_until="domcontentloaded",
        timeout=FIRST_DASHBOARD_MS,
    )
    expect(page.get_by_role("link", name=re.compile("Export these visits"))).to_be_visible()
    audit(page, "dashboard, a past week")
    audit.assert_clean()


def test_it_offers_the_weeks_of_the_term_chosen(open_page, coordinator, terms):
    first, second = terms
    page = open_page(reverse("reporting:data_dictionary"), user=coordinator)
    page.goto(
        f"{reverse('reporting:dashboard')}?view=term&term={second.pk}",
        wait_until="domcontentloaded",
        timeout=FIRST_DASHBOARD_MS,
    )
    weeks = page.get_by_label("Week of term")
    expect(weeks.locator("option")).to_have_count(1 + 14)

    # Semester 1: 23 February to 5 June, fifteen teaching weeks.
    page.get_by_role("combobox", name="Term:", exact=True).select_option(label=first.name)

    expect(page.get_by_role("heading", name=re.compile("Semester 1 2026"), level=2)).to_be_visible()
    expect(weeks.locator("option")).to_have_count(1 + 15)
    expect(weeks.locator("option").last).to_have_text("Week 15 · Mon 1 Jun")
