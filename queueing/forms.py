from collections.abc import Callable

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.urls import reverse_lazy

from .models import CheckIn, Display, EnquiryType, Team, Visit
from .validators import (
    clean_student_number,
    normalise_student_name,
    normalise_student_number,
    normalise_unit_code,
)


class VisitForm(forms.ModelForm):
    """Every form that writes a visit, the desk's and admin's: the student details are
    tidied as typed here, then judged by the validators on the model's fields. A detail
    left as it was stays as stored, unjudged: the old system's import keeps what today's
    desk would refuse, and correcting such a visit's team must not need its name
    rewritten first."""

    def _typed(self, name: str, tidy: Callable[[str], str]) -> str:
        if self.instance.pk is not None and name not in self.changed_data:
            return getattr(self.instance, name)
        return tidy(self.cleaned_data[name])

    def clean_student_name(self) -> str:
        return self._typed("student_name", normalise_student_name)

    def clean_student_number(self) -> str:
        return self._typed("student_number", normalise_student_number)

    def clean_unit_code(self) -> str:
        return self._typed("unit_code", normalise_unit_code)

    def _get_validation_exclusions(self) -> set[str]:
        excluded = super()._get_validation_exclusions()
        # The form's choice fields have already loaded the team and the enquiry type;
        # the model's check that they exist would read the same two rows again.
        excluded |= {"team", "enquiry_type"} & set(self.fields)
        if self.instance.pk is not None:
            details = ("student_name", "student_number", "unit_code")
            excluded |= {name for name in details if name not in self.changed_data}
        return excluded


class VisitDetailsForm(VisitForm):
    """The fields staff type for a visit, shared by adding and correcting."""

    class Meta:
        model = Visit
        fields = ["student_name", "student_number", "unit_code", "team", "enquiry_type"]
        labels = {
            "student_name": "Student Name",
            "student_number": "Student Number",
            "unit_code": "Unit Code",
            "team": "Team",
            "enquiry_type": "Enquiry Type",
        }
        error_messages = {
            "student_name": {"required": "Enter the Student Name."},
            "student_number": {"required": "Enter the Student Number."},
            "team": {
                "required": "Choose a Team.",
                "invalid_choice": "Choose one of the teams listed.",
            },
            "enquiry_type": {
                "required": "Choose an Enquiry Type.",
                "invalid_choice": "Choose one of the enquiry types listed.",
            },
        }

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = Team.objects.filter(is_active=True)
        self.fields["team"].empty_label = "Choose a team"
        self.fields["enquiry_type"].queryset = EnquiryType.objects.filter(is_active=True)
        self.fields["enquiry_type"].empty_label = "Choose an enquiry type"
        self.fields["unit_code"].help_text = "Optional, e.g. CITS3200"
        self.fields["student_number"].help_text = settings.RESQ_STUDENT_NUMBER_HELP
        attrs = {
            "student_name": {"autocomplete": "off", "spellcheck": "false"},
            "student_number": {"autocomplete": "off", "inputmode": "numeric"},
            "unit_code": {"autocomplete": "off", "class": "upper"},
        }
        for name, extra in attrs.items():
            self.fields[name].widget.attrs.update(extra)
        # Keyboard-first: the cursor starts in Student Name (full_clean moves it to
        # the first field to fix after a failed submit).
        self.fields["student_name"].widget.attrs["autofocus"] = True

    def full_clean(self) -> None:
        super().full_clean()
        if not self.errors:
            return
        self.fields["student_name"].widget.attrs.pop("autofocus", None)
        first = next((name for name in self.fields if name in self.errors), None)
        if first is not None:
            self.fields[first].widget.attrs["autofocus"] = True


class AddVisitForm(VisitDetailsForm):
    confirm_duplicate = forms.BooleanField(required=False, widget=forms.HiddenInput)

    duplicate: Visit | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Returning students are common: as the number is typed, offer the name
        # recorded last time.
        self.fields["student_number"].widget.attrs.update(
            {
                "hx-post": reverse_lazy("queueing:student_lookup"),
                "hx-trigger": "input changed delay:300ms",
                "hx-target": "#returning-student",
                "hx-swap": "outerHTML",
                "hx-params": "student_number",
            }
        )

    def clean(self) -> dict:
        cleaned = super().clean()
        number = cleaned.get("student_number")
        if number and not cleaned.get("confirm_duplicate"):
            # Almost every add finds none: ask for an id first, the visit only if there is one.
            active = Visit.objects.active().filter(student_number=number)
            if active.values_list("pk", flat=True).first() is not None:
                self.duplicate = active.select_related("team").first()
            if self.duplicate is not None:
                where = (
                    f"waiting in the {self.duplicate.team.queue_label}"
                    if self.duplicate.status == Visit.Status.WAITING
                    else f"in a session with {self.duplicate.team.name}"
                )
                raise ValidationError(
                    f"{self.duplicate.student_name} ({number}) is already {where}. "
                    "Add them again only if this is a second, separate enquiry.",
                    code="duplicate",
                )
        return cleaned


class EditVisitForm(VisitDetailsForm):
    """Correct a visit; the team can change (a transfer) only while the student waits."""

    def __init__(self, *args, **kwargs) -> None:
        # The dialog sits on the same page as the add form: its own ids, so each
        # label points at its own field.
        kwargs.setdefault("auto_id", "id_edit_%s")
        super().__init__(*args, **kwargs)
        # A visit keeps its team and enquiry type even if those were retired since.
        self.fields["team"].queryset = Team.objects.filter(is_active=True) | Team.objects.filter(
            pk=self.instance.team_id
        )
        if self.instance.status != Visit.Status.WAITING:
            self.fields["team"].disabled = True
            self.fields["team"].help_text = "Only a waiting student can change team."
        self.fields["enquiry_type"].queryset = EnquiryType.objects.filter(
            is_active=True
        ) | EnquiryType.objects.filter(pk=self.instance.enquiry_type_id)


class RemoveVisitForm(forms.Form):
    outcome = forms.ChoiceField(
        label="Why is the student leaving the queue?",
        choices=[
            (Visit.Outcome.CANCELLED, "Left before being seen"),
            (Visit.Outcome.NO_SHOW, "No-show (did not answer when called)"),
            (Visit.Outcome.OUT_OF_TIME, "Out of time (the drop-in is ending)"),
        ],
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose why the student is leaving the queue.",
            "invalid_choice": "Choose one of the reasons listed.",
        },
    )


class StaffingForm(forms.Form):
    delta = forms.TypedChoiceField(choices=[("1", "+1"), ("-1", "−1")], coerce=int)


class StudentLookupForm(forms.Form):
    student_number = forms.CharField(max_length=40)

    def clean_student_number(self) -> str:
        return clean_student_number(self.cleaned_data["student_number"])


class CheckInForm(VisitForm):
    """A student's own check-in, from their phone: the desk's fields, with "not sure"
    for the team, the room code from the display, and an email if they want one."""

    room_code = forms.CharField(
        label="Room code",
        max_length=12,
        help_text="The four letters on the screen by the entrance. They change every few minutes.",
        error_messages={"required": "Enter the room code shown on the screen."},
    )
    wants_email = forms.BooleanField(
        label="Email me when I'm next and when my session starts", required=False
    )

    class Meta:
        model = CheckIn
        fields = [
            "student_name",
            "student_number",
            "unit_code",
            "team",
            "enquiry_type",
            "notify_email",
        ]
        labels = {
            "student_name": "Your name",
            "student_number": "Student number",
            "unit_code": "Unit code",
            "team": "Who would you like to see?",
            "enquiry_type": "What is it about?",
            "notify_email": "Email address",
        }
        error_messages = {
            "student_name": {"required": "Enter your name."},
            "student_number": {"required": "Enter your student number."},
            "enquiry_type": {
                "required": "Choose what it is about.",
                "invalid_choice": "Choose one of the options listed.",
            },
            "team": {"invalid_choice": "Choose one of the options listed."},
        }

    def __init__(self, *args, display: Display, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.display = display
        self.fields["team"].queryset = Team.objects.filter(is_active=True)
        self.fields["team"].empty_label = "Not sure: the desk will choose"
        self.fields["team"].help_text = ""
        self.fields["enquiry_type"].queryset = EnquiryType.objects.filter(is_active=True)
        self.fields["enquiry_type"].empty_label = "Choose one"
        self.fields["unit_code"].help_text = "Optional, e.g. CITS3200"
        self.fields["student_number"].help_text = settings.RESQ_STUDENT_NUMBER_HELP
        pattern = settings.RESQ_STUDENT_EMAIL_PATTERN
        self.fields["notify_email"].help_text = (
            "Optional: blank sends it to your university address, "
            + pattern.format(number="(your number)")
            if pattern
            else "Where to send the emails."
        )
        attrs = {
            "room_code": {"autocomplete": "off", "class": "upper", "autocapitalize": "characters"},
            "student_name": {"autocomplete": "name"},
            "student_number": {"autocomplete": "off", "inputmode": "numeric"},
            "unit_code": {"autocomplete": "off", "class": "upper"},
            "notify_email": {"autocomplete": "email"},
        }
        for name, extra in attrs.items():
            self.fields[name].widget.attrs.update(extra)
        self.order_fields(["room_code"])

    def clean_room_code(self) -> str:
        code = self.cleaned_data["room_code"]
        if not self.display.room_code_matches(code):
            raise ValidationError(
                "That room code is not the one on the screen now. Type the four letters "
                "the screen shows (they change every few minutes).",
                code="room_code",
            )
        return code

    def clean(self) -> dict:
        cleaned = super().clean()
        if "room_code" in self.errors:
            # Without the room's code the form says nothing about anyone: not even
            # whether a number is already in line.
            return cleaned
        number = cleaned.get("student_number")
        if not cleaned.get("wants_email"):
            # An address typed and then not asked for is not a reason to refuse.
            self.errors.pop("notify_email", None)
        if cleaned.get("wants_email") and number and not cleaned.get("notify_email"):
            address = student_email(number)
            if address is None:
                self.add_error("notify_email", "Enter the email address to send them to.")
            else:
                cleaned["notify_email"] = address
        if not cleaned.get("wants_email"):
            cleaned["notify_email"] = ""
        if number and self._already_in_line(number):
            # Says nothing about who, or where: the number may be someone else's.
            raise ValidationError(
                "This student number is already checked in or in a queue. "
                "If that is not you, please see the desk.",
                code="duplicate",
            )
        return cleaned

    @staticmethod
    def _already_in_line(number: str) -> bool:
        return (
            Visit.objects.active().filter(student_number=number).exists()
            or CheckIn.objects.filter(student_number=number, status=CheckIn.Status.PENDING).exists()
        )


def student_email(number: str) -> str | None:
    """A student's university address made from their number by the setting's pattern,
    or None without one (or if it does not make an address)."""
    pattern = settings.RESQ_STUDENT_EMAIL_PATTERN
    if not pattern:
        return None
    address = pattern.format(number=number)
    try:
        validate_email(address)
    except ValidationError:
        return None
    return address


class AcceptCheckInForm(forms.Form):
    team = forms.ModelChoiceField(
        queryset=Team.objects.filter(is_active=True),
        required=False,
        error_messages={"invalid_choice": "Choose one of the teams listed."},
    )


class NoticeEmailForm(forms.Form):
    """At the desk: where a student's "you're next" and "session starting" emails go.
    Blank: none."""

    notify_email = forms.EmailField(
        label="Email them when they're next and when their session starts",
        required=False,
        help_text="Optional. Leave blank for no emails.",
        error_messages={"invalid": "Enter a whole email address, e.g. name@example.edu."},
    )

    def __init__(self, *args, university: str | None = None, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        if university:
            field = self.fields["notify_email"]
            field.help_text = f"Optional, e.g. {university}. Leave blank for no emails."
