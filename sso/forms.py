import json

from django import forms

from .models import Identity, Provider


class PreviewForm(forms.Form):
    """Claims to try the rules on: pasted as JSON, or those of a recent sign-in."""

    provider = forms.ChoiceField(choices=Provider.choices, initial=Provider.OIDC)
    identity = forms.ModelChoiceField(
        queryset=Identity.objects.none(),
        required=False,
        label="Or use the claims of a recent sign-in",
    )
    claims = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10, "cols": 80, "spellcheck": "false"}),
        required=False,
        label="Claims (JSON)",
        help_text='E.g. {"sub": "123", "email": "a@agency.example", "groups": ["cx-north"]}.',
    )

    def __init__(self, *args, identities=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["identity"].queryset = Identity.objects.filter(
            pk__in=[i.pk for i in identities]
        ).select_related("user")

    def clean_claims(self):
        text = self.cleaned_data["claims"].strip()
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise forms.ValidationError("Give a JSON object of claims.")
        return data

    def clean(self):
        cleaned = super().clean()
        if not self.errors and cleaned.get("claims") is None and cleaned.get("identity") is None:
            raise forms.ValidationError("Paste claims or choose a recent sign-in.")
        return cleaned
