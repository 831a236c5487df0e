from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxValueValidator


class LoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Wrong username or password. Both are case-sensitive.",
    }


def _password(label: str, autocomplete: str, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        strip=False,
        max_length=4096,
        help_text=help_text,
        widget=forms.PasswordInput(attrs={"autocomplete": autocomplete}),
    )


class _NewPasswordForm(forms.Form):
    """A new password typed twice. The rules themselves are checked by the service (Django's
    validators and the breached-password list), which names the field it refuses."""

    new_password = _password(
        "New password",
        "new-password",
        "At least 8 characters; not a common password, a number alone, close to your name, "
        "or one known from data breaches.",
    )
    new_password_again = _password("New password again", "new-password")

    def clean(self):
        data = super().clean()
        first, second = data.get("new_password"), data.get("new_password_again")
        if first and second and first != second:
            self.add_error("new_password_again", "The two passwords differ.")
        return data


class PasswordChangeForm(_NewPasswordForm):
    old_password = _password("Current password", "current-password")
    field_order = ["old_password", "new_password", "new_password_again"]


class SetPasswordForm(_NewPasswordForm):
    pass


class PasswordResetForm(forms.Form):
    email = forms.EmailField(
        label="E-mail address",
        max_length=254,
        help_text="The address cxhub has for you. We send a link to choose a new password.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


class ApiTokenForm(forms.Form):
    """A new API token: what it is for, how long it lives, whether it may only read."""

    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="What the token is for, e.g. “Weekly report script”, to recognise it later.",
    )
    expires_in_days = forms.IntegerField(label="Expires after (days)", min_value=1)
    read_only = forms.BooleanField(
        label="Read-only: it may read but not change anything",
        required=False,
    )

    def __init__(self, *args, default_days: int, max_days: int, **kwargs):
        super().__init__(*args, **kwargs)
        days = self.fields["expires_in_days"]
        days.initial = default_days
        days.max_value = max_days
        days.widget.attrs.update({"min": 1, "max": max_days, "inputmode": "numeric"})
        days.validators.append(MaxValueValidator(max_days))
        days.help_text = f"Between 1 and {max_days} days; {default_days} unless you change it."
        self.fields["name"].widget.attrs.update({"autocomplete": "off"})
