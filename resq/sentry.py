"""What an error report may carry: enough to find and fix the bug, no student data.

The SDK is already told not to collect personal data (`send_default_pii=False`), request
bodies or stack-frame locals (a desk view's locals hold the student's name and number).
`scrub_event` is the last word on every event and transaction all the same: it keeps
the request's method and path, the user's numeric id and a short list of harmless
headers, drops query strings, bodies, cookies and breadcrumb data, masks long digit runs
(student numbers) in messages, and tags the event with the request id so that a report
leads to the request's log lines.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .logging import current_request, user_id

SAFE_HEADERS = frozenset(
    {
        "accept",
        "content-length",
        "content-type",
        "host",
        "hx-request",
        "hx-target",
        "hx-trigger",
        "user-agent",
        "x-request-id",
    }
)
# Record attributes a log event may bring along as `extra`: those of the request line.
SAFE_EXTRA = frozenset(
    {"request_id", "user_id", "method", "route", "status", "status_code", "view", "duration_ms"}
)
UNSAFE_SPAN_DATA = frozenset({"db.params", "http.query", "url.query", "http.request.body"})
BREADCRUMB_FIELDS = ("type", "category", "level", "timestamp", "message")
# Student numbers are digits (eight at UWA): any run of six or more is masked.
LONG_DIGITS = re.compile(r"\d{6,}")
MASK = "[redacted]"

Event = dict[str, Any]


def scrub_event(event: Event, hint: dict | None = None) -> Event:
    """`before_send` and `before_send_transaction`: the event, stripped of personal data."""
    request = event.get("request")
    if isinstance(request, dict):
        event["request"] = _scrub_request(request)
    user = event.get("user")
    if isinstance(user, dict):
        if user.get("id") is not None:
            event["user"] = {"id": user["id"]}
        else:
            event.pop("user")
    if isinstance(event.get("extra"), dict):
        event["extra"] = {key: v for key, v in event["extra"].items() if key in SAFE_EXTRA}
    _scrub_messages(event)
    _scrub_exceptions(event)
    _scrub_breadcrumbs(event)
    for span in event.get("spans") or ():
        if isinstance(span, dict) and isinstance(span.get("data"), dict):
            span["data"] = {k: v for k, v in span["data"].items() if k not in UNSAFE_SPAN_DATA}
    served = current_request.get()
    if served is not None:
        # With personal data off the SDK sends no user; the numeric id is enough to
        # follow up, and the request id leads to the request's log lines.
        if "user" not in event and (uid := user_id(served)) is not None:
            event["user"] = {"id": uid}
        if getattr(served, "request_id", None):
            event.setdefault("tags", {})["request_id"] = served.request_id
    return event


def _scrub_request(request: dict) -> dict:
    scrubbed: dict[str, Any] = {}
    if request.get("method"):
        scrubbed["method"] = request["method"]
    if request.get("url"):
        scrubbed["url"] = without_query(str(request["url"]))
    headers = request.get("headers")
    if isinstance(headers, dict):
        scrubbed["headers"] = {
            name: value for name, value in headers.items() if name.lower() in SAFE_HEADERS
        }
    return scrubbed


def without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def mask(text: str) -> str:
    return LONG_DIGITS.sub(MASK, text)


def _scrub_messages(event: Event) -> None:
    if isinstance(event.get("message"), str):
        event["message"] = mask(event["message"])
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        for key in ("message", "formatted"):
            if isinstance(logentry.get(key), str):
                logentry[key] = mask(logentry[key])
        # The values a log message was formatted with are not needed to find a bug.
        logentry.pop("params", None)


def _scrub_exceptions(event: Event) -> None:
    exception = event.get("exception")
    values = exception.get("values") if isinstance(exception, dict) else None
    for value in values or ():
        if isinstance(value.get("value"), str):
            value["value"] = mask(value["value"])
        for frame in (value.get("stacktrace") or {}).get("frames") or ():
            frame.pop("vars", None)
    for thread in (event.get("threads") or {}).get("values") or ():
        for frame in (thread.get("stacktrace") or {}).get("frames") or ():
            frame.pop("vars", None)


def _scrub_breadcrumbs(event: Event) -> None:
    breadcrumbs = event.get("breadcrumbs")
    if isinstance(breadcrumbs, dict):
        values = breadcrumbs.get("values") or []
    elif isinstance(breadcrumbs, list):
        values = breadcrumbs
    else:
        return
    # Breadcrumb data holds SQL parameters, URLs with their query and log records'
    # extras; the message (a query with placeholders, a log line) is enough.
    scrubbed = []
    for crumb in values:
        if not isinstance(crumb, dict):
            continue
        kept = {key: crumb[key] for key in BREADCRUMB_FIELDS if key in crumb}
        if isinstance(kept.get("message"), str):
            kept["message"] = mask(kept["message"])
        scrubbed.append(kept)
    event["breadcrumbs"] = {"values": scrubbed}
