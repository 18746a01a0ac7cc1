from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@method_decorator(login_not_required, name="dispatch")
class LogoutView(auth_views.LogoutView):
    """Django's POST-only logout, which says so on the login page it lands on: on a
    shared computer the next person should see that the last one is gone.

    Open without a login too: it is how a half-finished login (password given, code
    not yet) is abandoned, which would otherwise greet the next person at the login
    page with someone else's code prompt.
    """

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        was_logged_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_logged_in:
            messages.success(request, "You have logged out.")
        return response


@require_GET
@never_cache
def overview(request: HttpRequest) -> HttpResponse:
    """Your account: password, two-factor authentication, where you are logged in."""
    return render(
        request,
        "account/overview.html",
        {"two_factor": is_mfa_enabled(request.user, [Authenticator.Type.TOTP])},
    )
