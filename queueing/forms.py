import re

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse_lazy

from .models import EnquiryType, Team, Visit

# Letters in any script first, then letters, spaces and the punctuation real names use
# (O'Brien, Anne-Marie, J. Smith). Markup and formula starters (<, =, +, @) are refused
# here, and everything is escaped on output besides.
NAME_RE = re.compile(r"^[^\W\d_](?:[^\W\d_]|[ '’.,()-])*$")
UNIT_CODE_RE = re.compile(r"^[A-Z]{2,6}\d{3,5}[A-Z]?$")


def clean_student_number(value: str) -> str:
    number = re.sub(r"\s+", "", value or "")
    if not re.fullmatch(settings.RESQ_STUDENT_NUMBER_PATTERN, number):
        raise ValidationError(
            f"Enter the Student Number as {settings.RESQ_STUDENT_NUMBER_HELP}.",
            code="student_number",
        )
    return number


class VisitDetailsForm(forms.ModelForm):
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

    def clean_student_name(self) -> str:
        name = " ".join(self.cleaned_data["student_name"].split())
        if not NAME_RE.fullmatch(name):
            raise ValidationError(
                "Student Name can hold letters, spaces, hyphens and apostrophes only.",
                code="student_name",
            )
        return name

    def clean_student_number(self) -> str:
        return clean_student_number(self.cleaned_data["student_number"])

    def clean_unit_code(self) -> str:
        code = re.sub(r"\s+", "", self.cleaned_data.get("unit_code") or "").upper()
        if code and not UNIT_CODE_RE.fullmatch(code):
            raise ValidationError(
                "Enter a Unit Code like CITS3200, or leave it empty.", code="unit_code"
            )
        return code


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
            self.duplicate = (
                Visit.objects.active().filter(student_number=number).select_related("team").first()
            )
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
        super().__init__(*args, **kwargs)
        if self.instance.status != Visit.Status.WAITING:
            self.fields["team"].disabled = True
            self.fields["team"].help_text = "Only a waiting student can change team."
        # A visit keeps its enquiry type even if that type was retired since.
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
