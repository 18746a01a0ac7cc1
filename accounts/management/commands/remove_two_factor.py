from typing import Any

from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Remove a user's authenticator app and recovery codes, e.g. after a lost phone. "
        "They then log in with their password alone; staff are asked to set up an app "
        "again at their next visit to Admin. (A superuser can do the same in Admin: "
        "MFA > Authenticators.)"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user called {username!r}.")
        removed, _ = Authenticator.objects.filter(user=user).delete()
        if removed:
            self.stdout.write(
                f"Removed two-factor authentication from {username}: they log in with "
                "their password, and set up a new app at their next visit to Admin."
            )
        else:
            self.stdout.write(f"{username} had no two-factor authentication.")
