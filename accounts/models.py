from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """The service's staff account. Custom from the first migration so it can grow."""

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        """What other screens show, e.g. "already started by Sam"."""
        return self.first_name or self.username
