"""Structured logs that carry no student data.

`resq.middleware.RequestLogMiddleware` logs each request once: its id, the user's numeric
id, method, route (the URL pattern, never the path typed or the query string), status and
duration. The request id also reaches every other record logged while the request runs,
through `RequestIdFilter`, so one id finds everything a request did, in the logs and in an
error report.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING

from django.utils.functional import empty
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

if TYPE_CHECKING:
    from django.http import HttpRequest

# The request being served, for records and error reports made while it runs. Outside a
# request (start-up, management commands) there is none.
current_request: ContextVar[HttpRequest | None] = ContextVar("resq_request", default=None)

# An id handed on by the proxy is kept only if it looks like one (a UUID, a hex or
# base64url token): nothing that could break a log line, forge another or carry a payload.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{7,63}", flags=re.ASCII)


def request_id_from(header: str | None) -> str:
    """The incoming X-Request-ID if it is a sane token, else a fresh one."""
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


# What a request no URL pattern served is logged as (a 404, a static file, a redirect to
# https): its path is whatever was typed.
UNRESOLVED = "<unresolved>"


def route_of(request: HttpRequest) -> str:
    """The URL pattern that served the request (`/desk/visits/<int:pk>/edit/`), never
    the path: a student number typed into a URL must not reach the logs."""
    match = getattr(request, "resolver_match", None)
    return f"/{match.route}" if match is not None else UNRESOLVED


def current_request_id() -> str | None:
    return getattr(current_request.get(), "request_id", None)


def user_id(request: HttpRequest) -> int | None:
    """The signed-in user's primary key: never a username or a name.

    A user the request never looked at (a static file, the health check) stays unread:
    reading it would cost the session and user queries (or fail, if the database is what
    went wrong) for a log line alone.
    """
    user = getattr(request, "user", None)
    if user is None or getattr(user, "_wrapped", None) is empty:
        return None
    return user.pk if user.is_authenticated else None


class RequestIdFilter(logging.Filter):
    """Stamps every record with the id of the request being served, if any, and puts
    the route where Django's own records ("Not Found: %s") put the path.

    Attach it to handlers, not loggers: a logger's filters never see records that
    propagate up to it from other loggers. Django logs a returned 4xx/5xx response
    after the middleware has finished, so for those the id comes from the request the
    record carries.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if getattr(record, "request_id", None) is None:
            request_id = current_request_id()
            if request_id is None:
                request_id = getattr(request, "request_id", None)
            if request_id is not None:
                record.request_id = request_id
        path = getattr(request, "path", None)
        if path and isinstance(record.args, tuple):
            # Django escapes its arguments before logging them (django.utils.log.log_message).
            escaped = path.encode("unicode_escape").decode("ascii")
            route = route_of(request)
            record.args = tuple(route if arg == escaped else arg for arg in record.args)
        return True


class JsonFormatter(BaseJsonFormatter):
    """python-json-logger's formatter (one JSON object per line, with every `extra`
    field), minus record attributes that can carry student data.

    Django attaches the request itself to its records (django.request, django.security):
    its repr is the full URL, query string included.
    """

    UNSAFE_ATTRS = ("request",)

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, *self.UNSAFE_ATTRS])
        super().__init__(*args, **kwargs)
