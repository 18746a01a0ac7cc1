"""Chart builders from literal data: what is plotted is what the table and CSV hold."""

import json
from datetime import date

from django.contrib.staticfiles import finders
from django.core.serializers.json import DjangoJSONEncoder

from reporting import charts


def days(*totals):
    return [
        {"day": date(2026, 8, 3 + i), "served": t, "removed": 0, "open": 0, "total": t}
        for i, t in enumerate(totals)
    ]


def test_it_stacks_visits_per_day_with_rows_equal_to_the_bars():
    chart = charts.visits_per_day_chart(
        [
            {"day": date(2026, 8, 3), "served": 4, "removed": 1, "open": 2, "total": 7},
            {"day": date(2026, 8, 4), "served": 0, "removed": 0, "open": 0, "total": 0},
        ]
    )
    data = chart.figure["data"]
    assert chart.figure["layout"]["barmode"] == "stack"
    assert [t["name"] for t in data] == ["Served", "Removed", "Open"]
    assert chart.rows == [[date(2026, 8, 3), 4, 1, 2], [date(2026, 8, 4), 0, 0, 0]]
    for column, trace in enumerate(data, start=1):
        assert list(trace["y"]) == [row[column] for row in chart.rows]
    assert not chart.empty


def test_it_marks_a_period_without_visits_empty():
    assert charts.visits_per_day_chart(days(0, 0, 0)).empty
    assert charts.popular_units_chart([]).empty
    assert charts.peak_hours_chart(
        {"weekdays": ["Mon"], "hours": [10, 11], "counts": [[0, 0]], "median_wait": [[None, None]]}
    ).empty
    assert charts.utilisation_chart(
        [{"team": "Librarian", "staffed_minutes": 0, "session_minutes": 0, "utilisation": None}]
    ).empty


def test_it_ranks_popular_units_largest_first_in_table_and_at_the_top_of_the_plot():
    chart = charts.popular_units_chart([("CITS3200", 9), ("ENGL1000", 4)])
    trace = chart.figure["data"][0]
    assert chart.rows == [["CITS3200", 9], ["ENGL1000", 4]]
    assert list(trace["y"]) == ["ENGL1000", "CITS3200"]  # Plotly draws bottom-up
    assert list(trace["x"]) == [4, 9]
    assert trace["orientation"] == "h"


def test_it_plots_the_wait_distribution_buckets_in_order():
    buckets = [("0–5", 3), ("5–10", 0), ("60+", 1)]
    chart = charts.wait_distribution_chart(buckets)
    assert list(chart.figure["data"][0]["x"]) == ["0–5", "5–10", "60+"]
    assert chart.rows == [["0–5", 3], ["5–10", 0], ["60+", 1]]


def test_it_draws_peak_hours_as_a_weekday_by_hour_heatmap():
    chart = charts.peak_hours_chart(
        {
            "weekdays": ["Mon", "Tue"],
            "hours": [10, 11],
            "counts": [[5, 2], [0, 1]],
            "median_wait": [[4.0, 3.0], [None, 9.0]],
        }
    )
    trace = chart.figure["data"][0]
    assert trace["type"] == "heatmap"
    assert list(trace["x"]) == ["10:00", "11:00"]
    assert [list(r) for r in trace["z"]] == [[5, 2], [0, 1]]
    assert chart.headers == ["Weekday", "10:00", "11:00"]
    assert chart.rows == [["Mon", 5, 2], ["Tue", 0, 1]]


def test_it_compares_the_weekly_trend_with_the_previous_term():
    chart = charts.weekly_trend_chart(
        [(1, 10), (2, 12)],
        [(1, 8), (2, 9), (3, 11)],
        current_name="Semester 2 2026",
        previous_name="Semester 1 2026",
    )
    current, previous = chart.figure["data"]
    assert list(current["y"]) == [10, 12, None]
    assert list(previous["y"]) == [8, 9, 11]
    assert chart.rows == [[1, 10, 8], [2, 12, 9], [3, None, 11]]


def test_it_draws_the_trend_alone_without_a_previous_term():
    chart = charts.weekly_trend_chart([(1, 3)], [], current_name="S1", previous_name=None)
    assert len(chart.figure["data"]) == 1
    assert chart.headers == ["Week of term", "S1"]


def test_it_names_terms_in_the_legend_as_typed():
    chart = charts.weekly_trend_chart(
        [(1, 3)], [(1, 2)], current_name="<i>S2</i> & co", previous_name="<b>S1</b>"
    )
    assert [trace["name"] for trace in chart.figure["data"]] == [
        "&lt;i&gt;S2&lt;/i&gt; &amp; co",
        "&lt;b&gt;S1&lt;/b&gt;",
    ]
    assert chart.headers == ["Week of term", "<i>S2</i> & co", "<b>S1</b>"]


def test_it_shows_utilisation_as_the_plotted_percentage():
    chart = charts.utilisation_chart(
        [
            {
                "team": "STUDYSmarter",
                "staffed_minutes": 240,
                "session_minutes": 180,
                "utilisation": 0.75,
            },
            {"team": "Librarian", "staffed_minutes": 0, "session_minutes": 0, "utilisation": None},
        ]
    )
    assert chart.rows == [["STUDYSmarter", 75.0], ["Librarian", None]]
    assert list(chart.figure["data"][0]["y"]) == [75.0, None]


def test_it_keeps_figures_small_and_serialisable():
    chart = charts.outcomes_chart([("Finished", 3), ("No-show", 1)])
    payload = json.dumps(chart.figure, cls=DjangoJSONEncoder)
    assert chart.figure["layout"]["template"]["data"] is not None
    assert len(payload) < 2000  # no 7 kB default template per chart
    assert chart.dom_id == "figure-outcomes"


def test_it_quotes_csv_cells_that_could_be_formulas():
    assert charts.csv_cell('=HYPERLINK("http://x","y")') == '\'=HYPERLINK("http://x","y")'
    assert charts.csv_cell("+61") == "'+61"
    assert charts.csv_cell("-1") == "'-1"
    assert charts.csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert charts.csv_cell("CITS3200") == "CITS3200"
    assert charts.csv_cell(-3) == -3
    assert charts.csv_cell(None) == ""
    assert charts.csv_cell(date(2026, 8, 3)) == "2026-08-03"


def test_it_knows_the_id_that_stops_plotly_injecting_maplibre_styles():
    # Without this id on the page plotly.js adds a <style> the CSP refuses.
    bundle = finders.find("plotly/plotly.min.js")
    with open(bundle, encoding="utf-8") as f:
        source = f.read()
    assert f'getElementById("{charts.PLOTLY_MAPLIBRE_STYLE_ID}")' in source
    assert 'n.matches(".no-inline-styles")' in source
