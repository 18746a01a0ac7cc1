from typing import Any

from allauth.account import forms as allauth_forms


class LoginForm(allauth_forms.LoginForm):
    """allauth's login form with its field named `username`, as ResQ's always was.

    Scripts, the desk benchmark and people's password managers post `username`, and
    login throttling reads the same name from the request (AXES_USERNAME_FORM_FIELD).
    allauth calls the field `login`: it still finds the value there.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"] = self.fields.pop("login")
        self.order_fields(["username", "password"])

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip()

    def clean(self) -> dict[str, Any]:
        if "username" in self.cleaned_data:
            self.cleaned_data["login"] = self.cleaned_data["username"]
        return super().clean()
