from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

if TYPE_CHECKING:
    from queueing.estimates import Shown
    from queueing.models import Visit

register = template.Library()


@register.filter
def elapsed(since: datetime | None, now: datetime | None = None) -> str:
    """Minutes and seconds since a time, as the desk's timers show them (12:05)."""
    if since is None:
        return ""
    seconds = max(0, int(((now or timezone.now()) - since).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{seconds:02d}"
    return f"{minutes}:{seconds:02d}"


@register.filter
def wait_level(since: datetime | None, now: datetime | None = None) -> int:
    """0, 10, 20 or 30: the colour band of a timer (the JS keeps it moving)."""
    if since is None:
        return 0
    minutes = ((now or timezone.now()) - since).total_seconds() / 60
    return next((level for level in (30, 20, 10) if minutes >= level), 0)


# The board is rendered once per version and shared by every screen, so what differs
# between answers is left as a slot and filled as each answer goes out: each form's
# CSRF input (the page has one, htmx sends the token in a header) and each timer's
# text and colour (the page without JavaScript shows them as of its request). A
# waiting row's place in line is a slot too, filled as the board is put together from
# cached rows. A slot is a tag no student's data can produce: what is typed reaches
# the board escaped.
CSRF_SLOT = "<csrf-slot></csrf-slot>"
PLACE_SLOT = "<place-slot></place-slot>"
TIMER = '<span class="timer level-{level}" data-since="{since}">{text}</span>'
TIMER_SLOT = re.compile(r'<timer-slot since="([^"]+)"></timer-slot>')
# A waiting row's wait estimate: a range of times, which the browser counts down to
# like a timer (`estimate_markup`).
ESTIMATE_SLOT = "<estimate-slot></estimate-slot>"
ESTIMATE_NONE = mark_safe(
    '<span class="estimate none" title="No estimate yet: no adviser on duty, or no '
    'session of this team in the last four weeks">—</span>'
)


@register.simple_tag
def timer(since: datetime) -> str:
    """A timer's slot; `fill_slots` writes the timer as of the answer's time."""
    return format_html('<timer-slot since="{}"></timer-slot>', since.isoformat())


@functools.lru_cache(maxsize=4096)
def _moment(iso: str) -> datetime:
    # A board's times are the same on every answer until its version changes.
    return datetime.fromisoformat(iso)


def fill_slots(board: str, *, csrf_input: str, now: datetime) -> str:
    """The board with its slots filled: the CSRF input ("" for htmx) and the timers
    against `now`."""

    def fill(slot: re.Match) -> str:
        since = _moment(slot[1])
        return TIMER.format(level=wait_level(since, now), since=slot[1], text=elapsed(since, now))

    return TIMER_SLOT.sub(fill, board.replace(CSRF_SLOT, csrf_input))


def in_place(row: str, place: int, estimate: str = "") -> str:
    """A waiting row with its place in line and its wait estimate (`estimate_markup`).
    The cached row leaves both out, so that starting the student at the head of the
    line re-renders no one behind them."""
    return row.replace(PLACE_SLOT, str(place), 1).replace(ESTIMATE_SLOT, estimate, 1)


@register.simple_tag
def estimate_markup(shown: Shown | None, now: datetime) -> str:
    """An estimate as its board shows it, in words as of the board's render: the
    browser counts them down from the times it carries, and a page without JavaScript
    says them as of the last change (a board is made once per version, not per
    answer)."""
    if shown is None:
        return ESTIMATE_NONE
    # A busy desk renders boards seconds apart, each with every waiting student's
    # estimate: their words are kept for a few seconds (the browser's own count takes
    # over as the board arrives), not worked out again for each row of each board.
    key = (shown.attrs, int(now.timestamp()) // WORDS_KEPT_SECONDS)
    markup = _estimate_markup.get(key)
    if markup is None:
        if len(_estimate_markup) >= WORDS_KEPT:
            _estimate_markup.clear()
        text = estimate_text(shown.low_at, shown.high_at, now)
        # Our own times and words: nothing in it is typed by anyone.
        markup = _estimate_markup[key] = mark_safe(  # noqa: S308
            f'<span class="estimate" {shown.attrs}>{text}</span>'
        )
    return markup


WORDS_KEPT_SECONDS = 10
WORDS_KEPT = 5000
_estimate_markup: dict[tuple[str, int], str] = {}


def forget_in_process() -> None:
    _estimate_markup.clear()


def estimate_text(low_at: datetime, high_at: datetime, now: datetime) -> str:
    """When a session should start, in coarse steps of minutes from now (the JS says the
    same): whole minutes up to 10, fives beyond; "any moment" once the range has passed.
    Words that stand alone: on a narrow screen the row has no column heading."""
    low = (low_at - now).total_seconds() / 60
    high = (high_at - now).total_seconds() / 60
    if high < 1:
        return "starts any moment"
    step = 1 if high <= 10 else 5
    low = max(0, math.floor(low / step) * step)
    high = max(math.ceil(high / step) * step, low + step)
    return f"starts within {high} min" if low == 0 else f"starts in {low}–{high} min"


# A message can carry an offer about the visit it tells of: "start" (one more staff
# member, and start the student) or "undo-finish" / "undo-removal". Messages keep
# only their text and tags across the redirect after a plain POST, so the offer
# travels in the tags: kind, visit id, name (quoted: tags are split on spaces) and,
# for an undo, when its window closes.
OFFER_KINDS = ("start", "undo-finish", "undo-removal", "pass")


@dataclass(frozen=True)
class Offer:
    kind: str
    visit_id: int
    student_name: str
    until: str = ""

    @property
    def is_undo(self) -> bool:
        return self.kind.startswith("undo-")


def offer_tags(kind: str, visit: Visit) -> str:
    """The extra_tags of a message that offers `kind` for `visit`."""
    if kind not in OFFER_KINDS:
        raise ValueError(f"Unknown offer: {kind}")
    tags = [f"offer-{kind}", f"visit-{visit.pk}", f"name-{quote(visit.student_name)}"]
    if kind in ("undo-finish", "undo-removal") and visit.undo_until is not None:
        tags.append(f"until-{visit.undo_until.isoformat()}")
    return " ".join(tags)


@register.filter
def message_offer(message) -> Offer | None:
    """The offer a message carries (see offer_tags), if any."""
    fields = {}
    for tag in (getattr(message, "extra_tags", "") or "").split():
        key, _, value = tag.partition("-")
        if key == "offer" and value in OFFER_KINDS:
            fields["kind"] = value
        elif key == "visit" and value.isdigit():
            fields["visit_id"] = int(value)
        elif key == "name":
            fields["student_name"] = unquote(value)
        elif key == "until":
            fields["until"] = value
    if not {"kind", "visit_id", "student_name"} <= fields.keys():
        return None
    return Offer(**fields)
