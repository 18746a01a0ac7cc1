"""Admin for managers: correct visit records, order and retire teams and enquiry types,
read the staffing history.

Visits start and move on the desk; admin is where a manager fixes a record afterwards.
Every admin change a desk screen would show bumps the board version, so open screens
refresh, and every correction of a visit leaves a "corrected" event in its history.
Managers also export visits, teams and enquiry types as CSV here, and import the old
system's visits, teams and enquiry types (see resources.py and docs/import.md).
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.widgets import RelatedFieldWidgetWrapper
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import BadRequest, FieldDoesNotExist, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db.models import DurationField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce, Now
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext
from import_export.admin import ImportExportMixin
from import_export.formats.base_formats import CSV
from import_export.forms import ExportForm, ImportForm

from .forms import VisitDetailsForm, VisitForm
from .models import (
    Board,
    CheckIn,
    Display,
    EnquiryType,
    StaffingChange,
    StudentNotice,
    Team,
    Visit,
    VisitEvent,
)
from .resources import (
    SAVE_AS_CSV,
    CSVUpload,
    EnquiryTypeResource,
    ImportFileError,
    LegacyVisitResource,
    TeamResource,
    VisitResource,
    local_time,
)

admin.site.site_header = "ResQ administration"
admin.site.site_title = "ResQ administration"
admin.site.index_title = "Records and settings"


def _minutes(duration: timedelta | None) -> int | None:
    return None if duration is None else int(duration.total_seconds() // 60)


# --- import and export -----------------------------------------------------------------


class LayoutImportForm(ImportForm):
    """The upload form, in the words a manager uses."""

    def __init__(self, formats: Any, resources: Any, **kwargs: Any) -> None:
        super().__init__(formats, resources, **kwargs)
        self.fields["import_file"].label = "CSV file"
        limit = filesizeformat(settings.RESQ_IMPORT_MAX_BYTES)
        self.fields["import_file"].help_text = f"Up to {limit}."

    def clean_import_file(self) -> UploadedFile:
        # Before a byte of it is read: the preview parses the whole file and writes its
        # rows (then rolls back), so a file's size is the time and memory it costs.
        upload = self.cleaned_data["import_file"]
        limit = settings.RESQ_IMPORT_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file is {filesizeformat(upload.size)}; ResQ imports files up to "
                f"{filesizeformat(limit)}. Split it into smaller files (by date, say) and "
                "import each in turn."
            )
        return upload


class ManagerImportExport(ImportExportMixin):
    """CSV import and export (django-import-export) for managers: the permission codes
    in settings give both to whoever may change the model, which is the Manager role.

    An import shows a preview (a dry run, rolled back) before anything is written, and
    the confirmed import is one transaction: if any row fails, nothing is written. (A
    row of the old system's file that cannot be a visit does not fail: it is left out
    and listed.)
    """

    import_formats = [CSVUpload]
    export_formats = [CSV]
    import_form_class = LayoutImportForm
    # The export form that picks fields ticks "select all" from an inline event handler,
    # which the Content-Security-Policy refuses; an export is the whole row anyway (teams
    # and enquiry types come back in as they went out).
    export_form_class = ExportForm
    import_template_name = "admin/queueing/import.html"
    export_template_name = "admin/queueing/export.html"
    #: Paragraphs shown above the upload and the export forms.
    import_help: tuple[str, ...] = ()
    export_help: tuple[str, ...] = ()
    #: One line in admin's log per imported row, or one for the whole file.
    log_each_row = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {"import_help": self.import_help, "export_help": self.export_help}

    def get_export_queryset(self, request: HttpRequest) -> QuerySet:
        # The export applies the list's filters from its query string. Filters the list
        # would refuse (it sends them back with ?e=1) are the request's fault: a 400,
        # never an export of everything instead, and never a server error.
        try:
            return super().get_export_queryset(request)
        except IncorrectLookupParameters as error:
            raise BadRequest("The export's filters are not ones the list offers.") from error

    def init_request_context_data(self, request: HttpRequest, form: Any) -> dict[str, Any]:
        context = super().init_request_context_data(request, form)
        # The columns an export writes, read-only ones included (the library lists the
        # ones an import reads).
        context["fields_list"] = [
            (resource.get_display_name(), [f.column_name for f in resource().get_export_fields()])
            for resource in self.get_export_resource_classes(request)
        ]
        return context

    def get_import_data_kwargs(self, **kwargs: Any) -> dict[str, Any]:
        kwargs = super().get_import_data_kwargs(**kwargs)
        # The library rolls back on errors but keeps the valid rows when others fail
        # validation; a confirmed file whose data changed since its preview must not
        # be half imported either.
        kwargs.setdefault("rollback_on_validation_errors", True)
        return kwargs

    def add_data_read_fail_error_to_form(self, form: Any, e: Exception) -> None:
        if isinstance(e, ImportFileError):
            form.add_error("import_file", str(e))
        else:
            form.add_error("import_file", f"This file cannot be read as CSV. {SAVE_AS_CSV}")

    def import_action(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        response = super().import_action(request, **kwargs)
        context = getattr(response, "context_data", None) or {}
        if "fields_list" in context and not context["fields_list"]:
            # The library lists no columns after a file it could not read.
            context["fields_list"] = [
                (
                    resource.get_display_name(),
                    [field.column_name for field in resource().get_user_visible_fields()],
                )
                for resource in self.get_import_resource_classes(request)
            ]
        form = context.get("form")
        if "confirm_form" not in context and hasattr(form, "cleaned_data"):
            # A file that cannot be imported is not kept for a confirmation that will
            # never come: it holds student names and numbers.
            name = getattr(form.cleaned_data.get("import_file"), "tmp_storage_name", None)
            if name:
                storage = self.get_tmp_storage_class()(
                    name=name, **self.get_tmp_storage_class_kwargs()
                )
                with suppress(OSError):
                    storage.remove()
        return response

    def process_import(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        try:
            return super().process_import(request, **kwargs)
        except (OSError, ImportFileError):
            messages.error(
                request,
                "The uploaded file is no longer on the server (the server restarted, or "
                "it was confirmed already). Nothing was imported: upload it again.",
            )
            app_label, model_name = self.get_model_info()
            return HttpResponseRedirect(reverse(f"admin:{app_label}_{model_name}_import"))

    def process_result(self, result: Any, request: HttpRequest) -> HttpResponse:
        if not (result.has_errors() or result.has_validation_errors()):
            return super().process_result(result, request)
        # The confirmed run met problems its preview did not (the data changed in
        # between) and was rolled back as a whole: say so, with the rows.
        messages.error(request, "Nothing was imported: the file has problems now.")
        form_class = self.get_import_form_class(request)
        form = form_class(self.get_import_formats(), self.get_import_resource_classes(request))
        context = {
            **self.admin_site.each_context(request),
            **self.get_import_context_data(),
            "title": "Import",
            "form": form,
            "opts": self.model._meta,
            "media": self.media + form.media,
            "result": result,
            "import_error_display": self.import_error_display,
        }
        return TemplateResponse(request, [self.import_template_name], context)

    def generate_log_entries(self, result: Any, request: HttpRequest) -> None:
        if self.log_each_row:
            super().generate_log_entries(result, request)
            return
        totals = result.totals
        if not (totals["new"] or totals["update"]):
            return
        name = request.POST.get("original_file_name", "")
        left_out = len(result.left_out)
        message = (
            f"Imported {name}: {totals['new']} new, {totals['update']} changed, "
            f"{totals['skip'] - left_out} unchanged {self.model._meta.verbose_name_plural}."
        )
        if left_out:
            message += " " + ngettext(
                "%(count)d row left out: not a visit.",
                "%(count)d rows left out: not visits.",
                left_out,
            ) % {"count": left_out}
        LogEntry.objects.create(
            user_id=request.user.pk,
            content_type=ContentType.objects.get_for_model(self.model),
            object_repr=f"Import of {name}"[:200],
            action_flag=ADDITION if totals["new"] else CHANGE,
            change_message=message,
        )

    def add_success_message(self, result: Any, request: HttpRequest) -> None:
        super().add_success_message(result, request)
        for note in result.notes:
            messages.info(request, note)


# --- visits ------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class VisitAdminForm(VisitForm):
    """A correction of a visit, held to the model's rules (names, numbers and unit codes
    by its field validators; times, staffing and status here), and refused when the
    desk moved the visit since the form was opened."""

    # The newest event when the form was opened: if the desk moved the visit since,
    # saving would silently undo that move.
    seen_event = forms.IntegerField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Visit
        fields = Visit.CORRECTABLE
        labels = VisitDetailsForm.Meta.labels

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # A record keeps its team and enquiry type even if they were retired since.
        for name, model in (("team", Team), ("enquiry_type", EnquiryType)):
            if name in self.fields:
                current = getattr(self.instance, Visit._meta.get_field(name).attname)
                self.fields[name].queryset = model.objects.filter(Q(is_active=True) | Q(pk=current))
        self.fields["seen_event"].initial = self._latest_event_pk()
        # What the row held before this edit, for the correction event.
        self.before = {
            name: getattr(self.instance, Visit._meta.get_field(name).attname)
            for name in Visit.CORRECTABLE
        }

    def _latest_event_pk(self) -> int:
        if self.instance.pk is None:
            return 0
        events = VisitEvent.objects.filter(visit_id=self.instance.pk)
        return events.order_by("-pk").values_list("pk", flat=True).first() or 0

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # Locks come in the desk's order (team, then visit) so the two cannot deadlock;
        # admin saves run in one transaction, so they hold until the correction is saved.
        self._check_staffing(cleaned)
        self._check_not_stale(cleaned)
        if problems := Visit.time_problems(cleaned):
            self.add_error(None, problems)
        return cleaned

    def _check_staffing(self, cleaned: dict[str, Any]) -> None:
        """Putting a student into a session follows the desk's rule: one per staff member."""
        team, status = cleaned.get("team"), cleaned.get("status")
        if status != Visit.Status.IN_SESSION or team is None:
            return
        if self.instance.status == status and self.instance.team_id == team.pk:
            return
        team = Team.objects.select_for_update(no_key=True).get(pk=team.pk)
        if problem := self.instance.staffing_problem(team):
            self.add_error("status", f"{problem} Add a staff member on the desk first.")

    def _check_not_stale(self, cleaned: dict[str, Any]) -> None:
        if self.instance.pk is None:
            return
        list(Visit.objects.select_for_update().filter(pk=self.instance.pk).values_list("pk"))
        if cleaned.get("seen_event") == self._latest_event_pk():
            return
        latest = (
            VisitEvent.objects.filter(visit_id=self.instance.pk)
            .select_related("by")
            .order_by("-pk")
            .first()
        )
        what = (
            f" ({latest.get_action_display()} by {latest.by or 'someone'} "
            f"at {timezone.localtime(latest.at):%H:%M})"
            if latest
            else ""
        )
        raise ValidationError(
            f"This visit changed while you were editing it{what}. Reload the page to see "
            "the change, then make your correction again.",
            code="stale",
        )

    def validate_constraints(self) -> None:
        # Django skips a check constraint when a field it names is not in the form or
        # failed its own validation, and then saving would raise an IntegrityError.
        # Check the whole row instead, and say which fields do not fit the status.
        state_fields = {field for needs in Visit.STATE_NEEDS.values() for field, _, _ in needs}
        judged = not any(field in self.errors for field in state_fields | {"status"})
        problems = self.instance.state_problems() if judged else {}
        if not problems:
            super().validate_constraints()
            return
        status = self.instance.get_status_display()
        self.add_error(
            None,
            f"A visit with the status “{status}” needs the outcome and times to match; "
            "correct them together.",
        )
        for field, message in problems.items():
            self.add_error(field if field in self.fields else None, message)


class StudentNoticeInline(admin.TabularInline):
    """The emails the student asked for, and what became of each: read-only."""

    model = StudentNotice
    fields = ["kind", "status", "attempts", "sent_at", "last_error"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class VisitEventInline(admin.TabularInline):
    """The visit's audit trail: read, never written, from admin."""

    model = VisitEvent
    fields = ["action", "change", "when", "by", "details"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "history event"
    verbose_name_plural = "History"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[VisitEvent]:
        return super().get_queryset(request).select_related("by")

    @admin.display(description="From → to")
    def change(self, event: VisitEvent) -> str:
        after = _status_label(event.to_status)
        if event.from_status == event.to_status:
            return after
        before = _status_label(event.from_status) if event.from_status else "—"
        return f"{before} → {after}"

    @admin.display(description="At", ordering="at")
    def when(self, event: VisitEvent) -> str:
        return local_time(event.at)

    @admin.display(description="Detail")
    def details(self, event: VisitEvent) -> str:
        if not event.detail:
            return "—"
        return format_html_join(
            "",
            "<div>{}</div>",
            ((self._describe(key, value),) for key, value in event.detail.items()),
        )

    def _describe(self, key: str, value: Any) -> str:
        label = _field_label(key)
        if isinstance(value, list) and len(value) == 2:
            old, new = (self._value(key, v) for v in value)
            return f"{label}: {old} → {new}"
        return f"{label}: {self._value(key, value)}"

    def _value(self, key: str, value: Any) -> str:
        if value in (None, ""):
            return "—"
        if key in ("team", "enquiry_type"):
            return self._names(key).get(value, f"#{value}")
        if key == "status":
            return _status_label(value)
        if key == "outcome":
            return _choice_label(Visit.Outcome, value)
        if isinstance(value, str) and key.endswith("_at"):
            moment = parse_datetime(value)
            return local_time(moment) if moment else value
        return str(value)

    def _names(self, key: str) -> dict[int, str]:
        return self._team_names if key == "team" else self._enquiry_type_names

    # Details store ids; teams and enquiry types are short lists, read once per page.
    @cached_property
    def _team_names(self) -> dict[int, str]:
        return dict(Team.objects.values_list("pk", "name"))

    @cached_property
    def _enquiry_type_names(self) -> dict[int, str]:
        return dict(EnquiryType.objects.values_list("pk", "name"))


def _choice_label(choices: type, value: str) -> str:
    try:
        return choices(value).label
    except ValueError:
        return value


def _status_label(value: str) -> str:
    return _choice_label(Visit.Status, value)


def _field_label(name: str) -> str:
    try:
        return str(Visit._meta.get_field(name).verbose_name).capitalize()
    except FieldDoesNotExist:
        return name


@admin.register(Visit)
class VisitAdmin(ManagerImportExport, admin.ModelAdmin):
    form = VisitAdminForm
    # The old system's history comes in; ResQ's own visits go out. A visit is corrected
    # in this admin's form, which checks that the desk has not moved it since.
    resource_classes = [LegacyVisitResource]
    # Each visit records its import in its own history; admin's log has one line for
    # the file rather than thousands.
    log_each_row = False

    def has_export_permission(self, request: HttpRequest) -> bool:
        # Names and student numbers leave ResQ only with the export permission, here as
        # on the Export Data page: changing visits is not enough.
        return super().has_export_permission(request) and request.user.has_perm(
            "queueing.export_visits"
        )

    import_help = (
        "The old system's (2021) CSV export, as it is. Each row becomes a visit, with "
        "names, numbers and unit codes kept as written; a row brought across by an earlier "
        "import is recognised by its old id and left alone, so importing the same file "
        "again adds nothing. Rows that cannot be a visit (no arrival time, a team ResQ "
        "does not have) are left out and listed.",
        "You see a preview first. Nothing is written until you confirm.",
        "To correct a visit, open it in this list. Export writes ResQ's own visit CSV, "
        "for reading; it is not imported.",
    )
    export_help = (
        "The visits the list shows now (its filters and search apply), with students' "
        "names and numbers: keep the file where only staff can read it, and delete it "
        "when you are done.",
    )
    list_display = [
        "student_name",
        "student_number",
        "unit_code",
        "team",
        "enquiry_type",
        "status",
        "outcome",
        "arrived",
        "wait_minutes",
        "session_minutes",
    ]
    list_filter = [
        "team",
        "status",
        "outcome",
        "enquiry_type",
        ("arrived_at", admin.DateFieldListFilter),
    ]
    search_fields = ["student_name", "student_number", "unit_code", "ticket"]
    date_hierarchy = "arrived_at"
    list_select_related = ["team", "enquiry_type"]
    ordering = ["-arrived_at", "-pk"]
    readonly_fields = ["ticket", "notify_email", "added_by", "started_by", "ended_by"]
    fieldsets = [
        ("Student", {"fields": ["seen_event", "student_name", "student_number", "unit_code"]}),
        (
            "Visit",
            {
                "fields": ["team", "enquiry_type", "status", "outcome"],
                "description": (
                    "The status, outcome and times must agree: waiting has no start, end or "
                    "outcome; in session has a start only; finished has start, end and the "
                    "outcome “Finished”; removed has an end and the reason the student left."
                ),
            },
        ),
        ("Times (local)", {"fields": ["arrived_at", "started_at", "ended_at"]}),
        ("On the desk", {"fields": ["ticket", "added_by", "started_by", "ended_by"]}),
        ("Emails to the student", {"fields": ["notify_email"]}),
    ]
    inlines = [VisitEventInline, StudentNoticeInline]

    def get_inlines(self, request: HttpRequest, obj: Visit | None) -> list:
        # The emails' outcomes, for a visit whose student asked for them.
        if obj is not None and (obj.notify_email or obj.notices.exists()):
            return self.inlines
        return [VisitEventInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Visit]:
        # Durations as SQL so the columns sort; a visit still open counts up to now.
        return (
            super()
            .get_queryset(request)
            .annotate(
                wait=ExpressionWrapper(
                    Coalesce("started_at", "ended_at", Now()) - F("arrived_at"),
                    output_field=DurationField(),
                ),
                session=ExpressionWrapper(
                    Coalesce("ended_at", Now()) - F("started_at"),
                    output_field=DurationField(),
                ),
            )
        )

    def get_fieldsets(self, request: HttpRequest, obj: Visit | None = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj):
            return fieldsets
        # Read-only viewers have nothing to submit, so nothing to check for staleness.
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f != "seen_event"]})
            for name, opts in fieldsets
        ]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        # Correcting a visit is no place to add, edit or delete a team.
        if formfield is not None and isinstance(formfield.widget, RelatedFieldWidgetWrapper):
            widget = formfield.widget
            widget.can_add_related = widget.can_change_related = False
            widget.can_delete_related = widget.can_view_related = False
        return formfield

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Visits start on the desk, which records who added them and places them in
        # the queue; a record added here would have neither.
        return False

    def get_export_resource_classes(self, request: HttpRequest) -> list[type]:
        return [VisitResource]

    @admin.display(description="Arrived", ordering="arrived_at")
    def arrived(self, visit: Visit) -> str:
        return local_time(visit.arrived_at)

    @admin.display(description="Wait (min)", ordering="wait")
    def wait_minutes(self, visit: Visit) -> int | None:
        return _minutes(visit.wait)

    @admin.display(description="Session (min)", ordering="session")
    def session_minutes(self, visit: Visit) -> int | None:
        return _minutes(visit.session)

    def save_model(
        self, request: HttpRequest, obj: Visit, form: VisitAdminForm, change: bool
    ) -> None:
        """Write only what the manager changed, and record it as a correction."""
        changes = {}
        for name in form.changed_data:
            if name in form.before:
                old, new = form.before[name], getattr(obj, Visit._meta.get_field(name).attname)
                if old != new:
                    changes[name] = [_json_value(old), _json_value(new)]
        if not changes:
            return
        update_fields = list(changes)
        # Who started or ended a session belongs with its time: clearing one clears both.
        for time, actor in (("started_at", "started_by"), ("ended_at", "ended_by")):
            if time in changes and getattr(obj, time) is None:
                setattr(obj, actor, None)
                update_fields.append(actor)
        obj.save(update_fields=update_fields)
        obj.record(
            VisitEvent.Action.CORRECTED,
            by=request.user,
            from_status=form.before["status"],
            detail=changes,
        )

    def delete_model(self, request: HttpRequest, obj: Visit) -> None:
        super().delete_model(request, obj)
        Board.bump()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Visit]) -> None:
        super().delete_queryset(request, queryset)
        Board.bump()


# --- teams and enquiry types ---------------------------------------------------------


class ActivationAdmin(admin.ModelAdmin):
    """Ordering in the list, and retiring instead of deleting: both show on the desk,
    so every change bumps the board."""

    list_editable = ["display_order", "is_active"]
    actions = ["deactivate", "activate"]

    def in_use(self) -> Exists | None:
        """What keeps a row active (see TeamAdmin); nothing, unless a subclass says so."""
        return None

    @admin.action(description="Deactivate selected %(verbose_name_plural)s", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        queryset = queryset.filter(is_active=True)
        in_use = self.in_use()
        if in_use is not None:
            busy = ", ".join(str(obj) for obj in queryset.filter(in_use))
            if busy:
                self.message_user(
                    request,
                    f"Still active, with students waiting or in a session: {busy}. "
                    "Deactivate once they have been seen or the queue is closed.",
                    messages.WARNING,
                )
            # The check is part of the write, so a student added meanwhile still counts.
            queryset = queryset.filter(~in_use)
        self._set_active(request, queryset, active=False)

    @admin.action(description="Activate selected %(verbose_name_plural)s", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_active(request, queryset.filter(is_active=False), active=True)

    def _set_active(self, request: HttpRequest, queryset: QuerySet, *, active: bool) -> None:
        objs = list(queryset)
        changed = queryset.update(is_active=active)
        for obj in objs:
            self.log_change(request, obj, "Activated" if active else "Deactivated")
        if changed:
            Board.bump()
        opts = self.model._meta
        name = opts.verbose_name if changed == 1 else opts.verbose_name_plural
        verb = "activated" if active else "deactivated"
        self.message_user(request, f"{changed} {name} {verb}.", messages.SUCCESS)

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type[forms.ModelForm]:
        # The list's inline editing goes through the same checks as the change form.
        kwargs.setdefault("form", self.form)
        return super().get_changelist_form(request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        Board.bump()

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)
        Board.bump()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        super().delete_queryset(request, queryset)
        Board.bump()


class TeamAdminForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name", "slug", "available_label", "ticket_letter", "display_order", "is_active"]

    def clean_is_active(self) -> bool:
        active = self.cleaned_data["is_active"]
        if self.instance.is_active and not active:
            problem = self.instance.deactivation_problem()
            if problem:
                raise ValidationError(problem, code="team_busy")
        return active


@admin.register(Team)
class TeamAdmin(ManagerImportExport, ActivationAdmin):
    form = TeamAdminForm
    resource_classes = [TeamResource]
    import_help = (
        "The file Export gives you: name, slug, available_label, display_order, is_active "
        "(yes or no). Rows are matched on the slug; a new slug adds a team. Staff "
        "available is counted on the desk and is not imported.",
    )
    list_display = ["name", "slug", "display_order", "is_active", "available_staff"]
    list_display_links = ["name"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}
    fields = [
        "name", "slug", "available_label", "ticket_letter", "display_order", "is_active",
        "available_staff",
    ]  # fmt: skip
    readonly_fields = ["available_staff"]

    def in_use(self) -> Exists:
        # Students of an inactive team disappear from the desk.
        return Exists(Visit.objects.active().filter(team=OuterRef("pk")))

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Staffing history cannot be deleted on its own, but it goes with a team that
        # never served anyone (a team with visits is protected). Without this, admin
        # answers "no permission to delete staffing changes" instead of listing the
        # visits that keep the team.
        perms_needed.discard(StaffingChange._meta.verbose_name)
        return deleted, counts, perms_needed, protected


@admin.register(EnquiryType)
class EnquiryTypeAdmin(ManagerImportExport, ActivationAdmin):
    resource_classes = [EnquiryTypeResource]
    import_help = (
        "The file Export gives you: name, display_order, is_active (yes or no). Rows are "
        "matched on the name; a new name adds an enquiry type.",
    )
    list_display = ["name", "display_order", "is_active"]
    list_display_links = ["name"]
    search_fields = ["name"]


# --- staffing history ----------------------------------------------------------------


@admin.register(StaffingChange)
class StaffingChangeAdmin(admin.ModelAdmin):
    """Read-only: staffing changes come from the desk's staffing counters and feed utilisation."""

    list_display = ["team", "available", "delta", "when", "by"]
    list_filter = ["team", ("at", admin.DateFieldListFilter)]
    date_hierarchy = "at"
    list_select_related = ["team", "by"]
    fields = ["team", "available", "delta", "at", "by"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="At", ordering="at")
    def when(self, change: StaffingChange) -> str:
        return local_time(change.at)


# --- the students' side ----------------------------------------------------------------


@admin.register(Display)
class DisplayAdmin(admin.ModelAdmin):
    """The room's screens: each has two secret addresses, the display's and the
    check-in form's its QR code points to. Untick active to revoke both at once; "new
    addresses" replaces them when one has been shared too widely."""

    list_display = ["name", "is_active", "created_at", "display_link", "poster_link"]
    list_editable = ["is_active"]
    fields = ["name", "is_active", "display_link", "checkin_link", "poster_link", "created_at"]
    readonly_fields = ["display_link", "checkin_link", "poster_link", "created_at"]
    actions = ["new_addresses"]

    @admin.display(description="Display address")
    def display_link(self, screen: Display) -> str:
        if not screen.pk:
            return "Shown once saved."
        url = reverse("students:display", args=[screen.token])
        return format_html(
            '<a href="{}" target="_blank" rel="noopener noreferrer">Open the display</a>', url
        )

    @admin.display(description="Check-in address")
    def checkin_link(self, screen: Display) -> str:
        if not screen.pk:
            return "Shown once saved."
        url = reverse("students:checkin", args=[screen.checkin_token])
        return format_html(
            '<a href="{}" target="_blank" rel="noopener noreferrer">Open the check-in form</a>', url
        )

    @admin.display(description="Poster")
    def poster_link(self, screen: Display) -> str:
        if not screen.pk:
            return ""
        url = reverse("students:poster", args=[screen.token])
        return format_html(
            '<a href="{}" target="_blank" rel="noopener noreferrer">Print the poster</a>', url
        )

    @admin.action(
        description="Give selected displays new addresses (the old ones stop working)",
        permissions=["change"],
    )
    def new_addresses(self, request: HttpRequest, queryset: QuerySet[Display]) -> None:
        for screen in queryset:
            screen.new_addresses()
            screen.save(update_fields=["token", "checkin_token"])
            self.log_change(request, screen, "Gave new addresses")
        self.message_user(
            request,
            f"{queryset.count()} display(s) given new addresses: open each again on its screen "
            "and print its poster again.",
            messages.SUCCESS,
        )


@admin.register(CheckIn)
class CheckInAdmin(admin.ModelAdmin):
    """Read-only: check-ins come from students' phones and are handled on the desk."""

    list_display = ["student_name", "student_number", "team", "status", "when", "visit"]
    list_filter = ["status", "team"]
    search_fields = ["student_name", "student_number"]
    list_select_related = ["team", "visit"]
    fields = [
        "student_name", "student_number", "unit_code", "team", "enquiry_type",
        "notify_email", "status", "created_at", "handled_at", "handled_by", "visit", "display",
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Checked in", ordering="created_at")
    def when(self, entry: CheckIn) -> str:
        return local_time(entry.created_at)


# The admin's own log (who changed what here), read-only for managers.
from . import admin_audit  # noqa: E402, F401
