"""The allauth pages ResQ uses, under the names allauth reverses, and nothing more:
no signup (managers create accounts), no email management (managers keep addresses
in admin), no codes by email. Included after accounts.urls under the same prefix."""

from allauth.account import views
from allauth.mfa.recovery_codes import views as recovery_codes_views
from allauth.mfa.totp import views as totp_views
from django.urls import include, path, re_path
from django.views.decorators.http import require_safe

from .views import second_factor_required

urlpatterns = [
    # Shadowed by accounts:login (same path, listed first); allauth reverses this name.
    path("login/", views.login, name="account_login"),
    path("inactive/", views.account_inactive, name="account_inactive"),
    path("reauthenticate/", views.reauthenticate, name="account_reauthenticate"),
    path("password/change/", views.password_change, name="account_change_password"),
    path("password/set/", views.password_set, name="account_set_password"),
    path("password/reset/", views.password_reset, name="account_reset_password"),
    path("password/reset/done/", views.password_reset_done, name="account_reset_password_done"),
    path(
        "password/reset/key/done/",
        views.password_reset_from_key_done,
        name="account_reset_password_from_key_done",
    ),
    re_path(
        r"^password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/$",
        views.password_reset_from_key,
        name="account_reset_password_from_key",
    ),
    # Removing the app, and seeing or renewing recovery codes, need the second factor
    # itself, not the password (accounts.views.second_factor_required). Listed before
    # allauth's, which they shadow.
    path(
        "2fa/totp/deactivate/",
        second_factor_required(totp_views.deactivate_totp),
        name="mfa_deactivate_totp",
    ),
    path(
        "2fa/recovery-codes/",
        require_safe(second_factor_required(recovery_codes_views.view_recovery_codes)),
        name="mfa_view_recovery_codes",
    ),
    path(
        "2fa/recovery-codes/generate/",
        second_factor_required(recovery_codes_views.generate_recovery_codes),
        name="mfa_generate_recovery_codes",
    ),
    path(
        "2fa/recovery-codes/download/",
        second_factor_required(recovery_codes_views.download_recovery_codes),
        name="mfa_download_recovery_codes",
    ),
    path("2fa/", include("allauth.mfa.urls")),
    path("sessions/", include("allauth.usersessions.urls")),
]
