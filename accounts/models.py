from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """The service's staff account. Custom from the first migration so it can grow."""

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name_shown(self.first_name, self.username)

    @staticmethod
    def name_shown(first_name: str, username: str) -> str:
        """What other screens show of a user, e.g. "already started by Sam"."""
        return first_name or username
