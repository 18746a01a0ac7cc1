from datetime import datetime

from django import template
from django.utils import timezone

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


@register.filter
def staffing_full_visit(message) -> int | None:
    """The visit a "team is full" message was about, to offer "+1 and start"."""
    tags = getattr(message, "extra_tags", "") or ""
    if "staffing-full" not in tags.split():
        return None
    for tag in tags.split():
        if tag.startswith("visit-") and tag[6:].isdigit():
            return int(tag[6:])
    return None
