"""Forms of the approval pages: they parse what was typed; the rules stay in the services (a
comment required for "request changes" and "reject" is the service's word, shown on the page)."""

from django import forms

from .models import Verdict


class DecideForm(forms.Form):
    verdict = forms.ChoiceField(
        choices=Verdict.choices,
        error_messages={
            "required": "Choose approve, request changes or reject.",
            "invalid_choice": "Choose approve, request changes or reject.",
        },
    )
    comment = forms.CharField(
        required=False,
        max_length=5000,
        error_messages={"max_length": "The comment has at most 5,000 characters."},
    )


class BreakGlassForm(forms.Form):
    justification = forms.CharField(
        required=False,
        max_length=5000,
        error_messages={"max_length": "The justification has at most 5,000 characters."},
    )
