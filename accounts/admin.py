from typing import Any

from allauth.mfa.models import Authenticator
from allauth.usersessions.admin import UserSessionAdmin
from allauth.usersessions.models import UserSession
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.http import HttpRequest

from .models import User
from .sessions import sessions_end

#: Only a superuser may grant these: with them a manager could make anyone, themselves
#: included, more powerful than the roles allow.
SUPERUSER_ONLY_FIELDS = ("is_superuser", "user_permissions")


@admin.register(User)
class ResqUserAdmin(UserAdmin):
    """Django's user admin, for managers: roles are groups, assigned here."""

    list_display = (
        "username",
        "first_name",
        "last_name",
        "email",
        "roles",
        "is_active",
        "is_staff",
        "two_factor",
    )
    list_filter = ("is_active", "is_staff", "groups")
    actions = ["log_out_everywhere"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        # One query for every row's roles, not one per row; two-factor in the same
        # query as the users.
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name")))
            .annotate(
                has_two_factor=Exists(
                    Authenticator.objects.filter(user=OuterRef("pk"), type=Authenticator.Type.TOTP)
                )
            )
        )

    @admin.display(description="Roles")
    def roles(self, user: User) -> str:
        return ", ".join(group.name for group in user.groups.all())

    @admin.display(description="Two-factor", boolean=True)
    def two_factor(self, user: User) -> bool:
        return user.has_two_factor

    @admin.action(description="Log out everywhere", permissions=["change"])
    def log_out_everywhere(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        """Ends every session of the selected users: a phone or laptop lost, or a
        shared computer someone walked away from."""
        if not request.user.is_superuser:
            queryset = queryset.filter(is_superuser=False)
        ended = sessions_end(users=queryset)
        self.message_user(
            request,
            f"Ended {ended} session{'s' if ended != 1 else ''}. "
            "Anyone using them is asked to log in again.",
            messages.SUCCESS,
        )

    def get_fieldsets(self, request: HttpRequest, obj: User | None = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        return [
            (name, {**options, "fields": _without(options["fields"], SUPERUSER_ONLY_FIELDS)})
            for name, options in fieldsets
        ]

    # A manager must not take over a superuser account, e.g. by setting its password.
    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)


def _without(fields: Any, names: tuple[str, ...]) -> tuple:
    return tuple(field for field in fields if field not in names)


admin.site.unregister(UserSession)


@admin.register(UserSession)
class EndingUserSessionAdmin(UserSessionAdmin):
    """allauth's list of logged-in sessions, where deleting a row logs that session
    out: allauth's own admin deletes only the row and leaves the session working."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: UserSession) -> None:
        obj.end()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[UserSession]) -> None:
        for user_session in queryset:
            user_session.end()
