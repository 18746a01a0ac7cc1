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
            login_url = redirect_to_login(
                request.headers.get("HX-Current-URL") or request.get_full_path(),
                resolve_url(self.get_login_url(view_func)),
                self.get_redirect_field_name(view_func),
            )["Location"]
            return HttpResponseClientRedirect(login_url)
        return super().handle_no_permission(request, view_func)
