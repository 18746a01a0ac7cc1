from typing import Any

from allauth.mfa.models import Authenticator
from allauth.usersessions.admin import UserSessionAdmin
from allauth.usersessions.models import UserSession
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import ngettext

from .models import User
from .sessions import sessions_end

#: Only a superuser may grant these: with them a manager could make anyone, themselves
#: included, more powerful than the roles allow.
SUPERUSER_ONLY_FIELDS = ("is_superuser", "user_permissions")
#: Nobody changes these on their own account, superusers included: a manager who could
#: would be a coordinator by lunchtime. A superuser already holds every permission;
#: another superuser (or the shell) changes theirs.
OWN_ROLE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")
#: Changes to these are written to the admin's log by name, with who made them.
FLAGS = {"is_staff": "Staff status", "is_superuser": "Superuser status"}


class RoleCheckedUserChangeForm(UserChangeForm):
    """Django's user form, which refuses to give a role with a permission the person
    saving it does not hold. The Manager role cannot export students' names and
    numbers (the Coordinator role can): a manager who could give that role could give
    it to an account of their own making. A superuser gives it. Taking a role away is
    never refused."""

    #: Who is saving the form; set for each request by ResqUserAdmin.get_form.
    granted_by: User

    def clean_groups(self) -> QuerySet[Group]:
        groups = self.cleaned_data["groups"]
        if self.granted_by.is_superuser:
            return groups
        held = self.granted_by.get_all_permissions()
        added = groups.exclude(pk__in=self.instance.groups.all())
        beyond = sorted(
            group.name
            for group in added.prefetch_related("permissions__content_type")
            if not {_permission_name(p) for p in group.permissions.all()} <= held
        )
        if beyond:
            raise ValidationError(
                ngettext(
                    "Only a superuser can give the role %(roles)s: it can do more than yours.",
                    "Only a superuser can give the roles %(roles)s: they can do more than yours.",
                    len(beyond),
                )
                % {"roles": ", ".join(beyond)}
            )
        return groups


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
    form = RoleCheckedUserChangeForm

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
            ngettext(
                "Ended %(count)d session. Anyone using it is asked to log in again.",
                "Ended %(count)d sessions. Anyone using them is asked to log in again.",
                ended,
            )
            % {"count": ended},
            messages.SUCCESS,
        )

    def get_form(self, request: HttpRequest, obj: User | None = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        if obj is None:
            return form  # the add form has no roles: they are given on the next page
        return type(form.__name__, (form,), {"granted_by": request.user})

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> Any:
        # Read-only fields are left out of the form, so a forged POST cannot set them.
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None and obj.pk == request.user.pk:
            return (*readonly, *OWN_ROLE_FIELDS)
        return readonly

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Saves roles, then writes who gave or took away which, by name: Django's own
        log entry says only "Changed groups"."""
        user = form.instance
        before = _roles_and_permissions(user)
        super().save_related(request, form, formsets, change)
        after = _roles_and_permissions(user)
        changes = []
        for label, names_before, names_after in (
            ("Roles", before[0], after[0]),
            ("Permissions", before[1], after[1]),
        ):
            moves = [
                f"{verb} {', '.join(sorted(names))}"
                for verb, names in (
                    ("added", names_after - names_before),
                    ("removed", names_before - names_after),
                )
                if names
            ]
            if moves:
                changes.append(f"{label}: {'; '.join(moves)}.")
        for field, label in FLAGS.items():
            if field in form.changed_data:
                changes.append(f"{label}: {'given' if getattr(user, field) else 'taken away'}.")
        if changes:
            self.log_change(request, user, " ".join(changes))

    def get_fieldsets(self, request: HttpRequest, obj: User | None = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        return [
            (name, {**options, "fields": _without(options["fields"], SUPERUSER_ONLY_FIELDS)})
            for name, options in fieldsets
        ]

    # A manager must not take over an account that can do more than theirs (a
    # superuser, or a coordinator who exports students' names and numbers), e.g. by
    # setting its password and logging in as it: they may read it, not change it.
    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and _can_do_more(obj, than=request.user):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and _can_do_more(obj, than=request.user):
            return False
        return super().has_delete_permission(request, obj)


def _can_do_more(user: User, *, than: User) -> bool:
    """Whether `user`'s roles and permissions hold anything `than`'s do not. Read from
    the roles themselves, not `get_all_permissions()`, which is empty for an inactive
    account: switched back on, it would have its powers again."""
    if than.is_superuser:
        return False
    if user.is_superuser:
        return True
    return not _powers(user) <= than.get_all_permissions()


def _powers(user: User) -> set[str]:
    permissions = Permission.objects.filter(Q(group__user=user) | Q(user=user)).select_related(
        "content_type"
    )
    return {_permission_name(permission) for permission in permissions}


def _without(fields: Any, names: tuple[str, ...]) -> tuple:
    return tuple(field for field in fields if field not in names)


def _permission_name(permission: Permission) -> str:
    """As `User.get_all_permissions()` names it."""
    return f"{permission.content_type.app_label}.{permission.codename}"


def _roles_and_permissions(user: User) -> tuple[set[str], set[str]]:
    if user.pk is None:
        return set(), set()
    return (
        set(user.groups.values_list("name", flat=True)),
        {_permission_name(p) for p in user.user_permissions.select_related("content_type")},
    )


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
