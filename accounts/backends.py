import logging

from axes.backends import AxesStandaloneBackend
from django.contrib.auth import backends
from django.contrib.auth.models import Permission
from django.db.models import Q
from django.http import HttpRequest

logger = logging.getLogger(__name__)


class ModelBackend(backends.ModelBackend):
    """Django's model backend, with a user's own and their roles' permissions read in
    one query instead of two: every desk request checks a permission."""

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            perms = Permission.objects.all()
            if not user_obj.is_superuser:
                perms = perms.filter(Q(user=user_obj) | Q(group__user=user_obj))
            user_obj._perm_cache = {
                f"{app_label}.{codename}"
                for app_label, codename in perms.values_list(
                    "content_type__app_label", "codename"
                ).distinct()
            }
        return user_obj._perm_cache


class ThrottledLoginBackend(AxesStandaloneBackend, ModelBackend):
    """Refuses any password check for a username locked out at this address.

    First in AUTHENTICATION_BACKENDS: it authenticates nobody itself, it only stops
    the backends after it from being asked. Otherwise it answers as ModelBackend
    (users, permissions from the same one-query cache), so a session that names it
    still finds its user. axes' own class raises an error when
    there is no request; here that case passes through unthrottled, with a warning,
    because there is no client to throttle: Django's test client's `login()` and a
    shell's `authenticate()` call it so. Every sign-in page passes its request
    (allauth's login and password confirmation do), which the login tests check by
    being locked out.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs,
    ) -> None:
        if request is None:
            logger.warning("A password was checked without a request: not throttled.")
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
