"""Signing in as people do, for tests: through the login page, with a code from an
authenticator app computed here from its secret (no phone, no extra package)."""

import time

from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, generate_totp_secret, hotp_value
from allauth.mfa.utils import encrypt
from django.test import Client
from django.urls import reverse

from accounts.sessions import TWO_FACTOR_USER

PASSWORD = "correct horse battery staple"  # every UserFactory user's password


def totp_code(secret: str, *, steps_from_now: int = 0) -> str:
    """The code an authenticator app shows for this secret now (or a period away)."""
    counter = int(time.time()) // mfa_settings.TOTP_PERIOD + steps_from_now
    return format_hotp_value(hotp_value(secret, counter))


def give_authenticator_app(user) -> str:
    """Sets up an authenticator app for `user` as if they had; returns its secret."""
    secret = generate_totp_secret()
    Authenticator.objects.create(
        user=user, type=Authenticator.Type.TOTP, data={"secret": encrypt(secret)}
    )
    return secret


def pass_two_factor(client: Client, user) -> None:
    """Makes `client` a browser in which `user` has passed two-factor authentication,
    as a staff user's must have to open admin. Gives them an app if they have none."""
    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        give_authenticator_app(user)
    session = client.session
    session[TWO_FACTOR_USER] = user.pk
    session.save()


def log_in(client: Client, username: str, password: str = PASSWORD, **extra):
    """Posts the login form, as a person does; returns the response."""
    return client.post(
        reverse("accounts:login"), {"username": username, "password": password, **extra}
    )
