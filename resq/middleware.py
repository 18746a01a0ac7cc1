from __future__ import annotations

import logging
from collections.abc import Callable
from time import perf_counter

from django.conf import settings
from django.contrib.admin.exceptions import DisallowedModelAdminToField
from django.contrib.admin.options import TO_FIELD_VAR
from django.http import HttpRequest, HttpResponse

from .logging import current_request, request_id_from, route_of, user_id

logger = logging.getLogger("resq.request")


class RequestLogMiddleware:
    """Logs each request once, when its response is ready, and tags it with an id.

    The line holds the request id (the proxy's X-Request-ID if sane, else a new one,
    echoed in the response), the user's numeric id, method, route, status, view and
    duration. The route is the URL pattern (`/desk/visits/<int:pk>/edit/`, or
    `<unresolved>` when none served it), never the path, the query string or the body:
    a student number typed into a form or a URL must not reach the logs. First in
    MIDDLEWARE, so the duration covers the whole stack and every record logged inside
    it carries the id. For a streamed response (the CSV export) the duration is the
    time to start it, not to send it.

    Board polls and health checks repeat every few seconds from every screen: unless
    `RESQ_LOG_POLLS` is on they are logged at DEBUG, except when they fail. Any request
    slower than `RESQ_LOG_SLOW_MS` is logged at WARNING, so quiet polls still show
    when the desk slows down.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get("X-Request-ID"))
        request.request_id = request_id
        token = current_request.set(request)
        started = perf_counter()
        try:
            response = self.get_response(request)
            self.log(request, response, duration_ms=(perf_counter() - started) * 1000)
        finally:
            current_request.reset(token)
        response["X-Request-ID"] = request_id
        return response

    def log(self, request: HttpRequest, response: HttpResponse, *, duration_ms: float) -> None:
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match else None
        slow_ms = settings.RESQ_LOG_SLOW_MS
        if slow_ms and duration_ms >= slow_ms:
            level = logging.WARNING
        elif (
            view in settings.RESQ_LOG_QUIET_VIEWS
            and response.status_code < 400
            and not settings.RESQ_LOG_POLLS
        ):
            level = logging.DEBUG
        else:
            level = logging.INFO
        if not logger.isEnabledFor(level):
            return
        duration_ms = round(duration_ms, 1)
        route = route_of(request)
        logger.log(
            level,
            "%s %s %s %sms",
            request.method,
            route,
            response.status_code,
            duration_ms,
            extra={
                "request_id": request.request_id,
                "user_id": user_id(request),
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "view": view,
                "duration_ms": duration_ms,
            },
        )


class AdminEmptyToFieldMiddleware:
    """Refuses an admin request with an empty `_to_field` (400, as a field admin does not
    offer gets).

    Django's admin checks a `_to_field` that names a field, but an empty one skips the
    check and is then looked up as a field name: a change or delete page answered 500.
    After the login and two-factor checks, so only staff learn the difference.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> None:
        match = request.resolver_match
        if match is None or match.app_name != "admin":
            return
        # Where admin's views read it from: the form, else the query string.
        data = request.POST if request.method == "POST" else {}
        if data.get(TO_FIELD_VAR, request.GET.get(TO_FIELD_VAR)) == "":
            raise DisallowedModelAdminToField("An empty _to_field names no field.")
