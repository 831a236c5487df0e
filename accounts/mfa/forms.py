from django import forms


class CodeForm(forms.Form):
    """A code typed by a person: from an authenticator app, or a recovery code."""

    method = forms.ChoiceField(choices=[("totp", "Authenticator app"), ("recovery", "Recovery")])
    code = forms.CharField(max_length=64, strip=True)
    next = forms.CharField(required=False, max_length=2000)


class TotpAddForm(forms.Form):
    code = forms.CharField(label="Code from the app", max_length=12, strip=True)
    name = forms.CharField(label="Name (to tell your devices apart)", max_length=64, required=False)
