"""Small bar charts for the printable weekly sheet, drawn as inline SVG by the server.

The sheet must print without JavaScript and in greyscale, under a Content-Security-
Policy that forbids style attributes: this module only works out where each bar goes,
and the template draws it with SVG's own geometry attributes (x, y, width, height) and
classes. Every bar carries its number as text, and every series a pattern as well as a
shade, so nothing depends on colour. Screen readers get the same numbers as a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

#: The drawing's own units; the SVG scales to the width the page gives it.
WIDTH = 320
HEIGHT = 115
LABEL_ROOM = 14  # under the bars, for their names
VALUE_ROOM = 12  # over the tallest bar, for its number
#: Fills that stay apart printed in grey: solid dark, hatched, light, dotted; repeated
#: past four series (a desk has two or three teams).
SERIES_FILLS = 4


@dataclass(frozen=True)
class Segment:
    """One series' part of a bar: a rectangle, in drawing units."""

    series: int  # 1-based: which fill (class "series-N") the template uses
    value: int
    y: float
    height: float


@dataclass
class Column:
    label: str
    total: float
    x: float
    width: float
    segments: list[Segment] = field(default_factory=list)
    label_x: float = 0.0
    value_y: float = 0.0
    # Whether the label is drawn: with many narrow bars every other is, so none overlap.
    show_label: bool = True
    highlight: bool = False

    @property
    def total_text(self) -> str:
        return _number(self.total)


@dataclass
class Row:
    """A horizontal bar: a name at the left, the bar, its number at its end."""

    label: str
    value: float
    y: float
    width: float
    text_y: float
    value_x: float

    @property
    def value_text(self) -> str:
        return _number(self.value)


@dataclass
class Chart:
    """A drawing and, for the table that reads it out, its rows of numbers."""

    kind: str  # "columns" or "rows"
    height: float
    columns: list[Column] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    series: list[tuple[int, str]] = field(default_factory=list)  # (fill, name) for a legend
    baseline: float = 0.0
    bar_left: float = 0.0
    width: float = WIDTH

    @property
    def empty(self) -> bool:
        totals = [c.total for c in self.columns] + [r.value for r in self.rows]
        return not any(totals)


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def columns(
    labels: Sequence[str],
    stacks: Sequence[Sequence[int]],
    *,
    series: Sequence[str] = (),
    highlight: int | None = None,
    width: float = WIDTH,
    height: float = HEIGHT,
) -> Chart:
    """Vertical bars, one per label, each a stack of its series' values (bottom first).

    `highlight` is the index of a bar to mark (the busiest), drawn darker and named in
    the table; bars are scaled to the tallest, which always reaches the top."""
    count = max(len(labels), 1)
    slot = width / count
    bar = slot * 0.72
    baseline = height - LABEL_ROOM
    room = baseline - VALUE_ROOM
    tallest = max((sum(stack) for stack in stacks), default=0) or 1
    every = 1 if count <= 12 else 2
    chart = Chart(
        "columns",
        height,
        series=[(_fill(i), name) for i, name in enumerate(series)],
        baseline=baseline,
        width=width,
    )
    for i, (label, stack) in enumerate(zip(labels, stacks, strict=True)):
        x = i * slot + (slot - bar) / 2
        top = baseline
        segments = []
        for s, value in enumerate(stack):
            if not value:
                continue
            size = value / tallest * room
            top -= size
            segments.append(Segment(_fill(s), value, round(top, 2), round(size, 2)))
        chart.columns.append(
            Column(
                label=label,
                total=sum(stack),
                x=round(x, 2),
                width=round(bar, 2),
                segments=segments,
                label_x=round(i * slot + slot / 2, 2),
                value_y=round(top - 3, 2),
                show_label=i % every == 0,
                highlight=i == highlight,
            )
        )
    return chart


def rows(
    items: Sequence[tuple[str, float]], *, label_width: float = 70, width: float = WIDTH
) -> Chart:
    """Horizontal bars, one per (name, value), largest first as given."""
    step = 16
    height = max(len(items), 1) * step + 2
    room = width - label_width - 34  # the number after the longest bar
    longest = max((value for _, value in items), default=0) or 1
    chart = Chart("rows", height, bar_left=label_width, width=width)
    for i, (label, value) in enumerate(items):
        length = value / longest * room
        chart.rows.append(
            Row(
                label=label,
                value=value,
                y=i * step + 2,
                width=round(length, 2),
                text_y=i * step + 12,
                value_x=round(label_width + length + 4, 2),
            )
        )
    return chart


def _fill(index: int) -> int:
    return index % SERIES_FILLS + 1
