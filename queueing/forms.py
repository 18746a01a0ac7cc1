import re
import unicodedata

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse_lazy

from .models import EnquiryType, Team, Visit

# Punctuation real names use (O'Brien, Anne-Marie, J. Smith); with letters and marks of
# any script, that is all a name may hold. Markup and formula starters (<, =, +, @) are
# refused here, and everything is escaped on output besides.
NAME_PUNCTUATION = frozenset(" '’.,()-")
# ASCII digits only: other scripts' digits would be stored as typed and then missed by
# duplicate checks, look-ups and reports.
UNIT_CODE_RE = re.compile(r"^[A-Z]{2,6}[0-9]{3,5}[A-Z]?$")


def is_plausible_name(name: str) -> bool:
    """A letter first, then letters, combining marks (Devanagari vowel signs, a
    decomposed "ë") or name punctuation."""
    if not name or not unicodedata.category(name[0]).startswith("L"):
        return False
    return all(unicodedata.category(char)[0] in "LM" or char in NAME_PUNCTUATION for char in name)


def clean_student_number(value: str) -> str:
    number = re.sub(r"\s+", "", value or "")
    if not re.fullmatch(settings.RESQ_STUDENT_NUMBER_PATTERN, number, flags=re.ASCII):
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
        # One form for one name: "Zoë" typed as e + combining diaeresis is stored
        # composed, so duplicate checks and look-ups find it.
        name = unicodedata.normalize("NFC", " ".join(self.cleaned_data["student_name"].split()))
        if not is_plausible_name(name):
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
