from urllib.parse import urlsplit

from django.contrib.auth import middleware
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect


class LoginRequiredMiddleware(middleware.LoginRequiredMiddleware):
    """Django's deny-by-default login check, aware of htmx.

    An htmx request from a signed-out screen (an expired session during a poll) must
    send the whole browser to the login page, not swap a login form into a table.
    """

    def handle_no_permission(self, request: HttpRequest, view_func) -> HttpResponse:
        if getattr(request, "htmx", False):
            # Come back to the page the screen was showing, not to the fragment URL.
            current = urlsplit(request.headers.get("HX-Current-URL", ""))
            next_url = current.path + (f"?{current.query}" if current.query else "")
            login_url = redirect_to_login(
                next_url or request.get_full_path(),
                resolve_url(self.get_login_url(view_func)),
                self.get_redirect_field_name(view_func),
            )["Location"]
            return HttpResponseClientRedirect(login_url)
        return super().handle_no_permission(request, view_func)
