"""Forms of the publishing pages. They parse what was typed (ids, dates, times); every business
rule (who may target what, text limits, skipped local times) is the services' and scheduling's.
"""

from django import forms
from django.core.exceptions import ValidationError

from .models import PostStatus

COMPOSE_ACTIONS = ("save", "submit", "upload")


class IdListField(forms.Field):
    """Zero or more ids sent under one name (checkboxes, hidden inputs), in order, once each."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        if not value:
            return []
        if isinstance(value, str):
            value = [value]
        ids: list[int] = []
        for item in value:
            item = str(item).strip()
            if not (item.isascii() and item.isdecimal()) or len(item) > 18:
                raise ValidationError("Not a valid choice.", code="invalid")
            if int(item) not in ids:
                ids.append(int(item))
        return ids


class ComposeForm(forms.Form):
    """The compose and edit page. Variants come as `variant-<account id>` for each chosen account;
    `image` + `image_alt` is the upload that works without JavaScript."""

    team = forms.IntegerField(required=False, min_value=1)
    body = forms.CharField(required=False, strip=False)
    link = forms.CharField(required=False)
    accounts = IdListField(required=False)
    media = IdListField(required=False)
    image = forms.FileField(required=False, allow_empty_file=True)
    image_alt = forms.CharField(required=False)
    schedule_date = forms.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Give a date like 2026-03-29."},
    )
    schedule_time = forms.TimeField(
        required=False,
        input_formats=["%H:%M", "%H:%M:%S"],
        error_messages={"invalid": "Give a time like 09:30 (24-hour clock)."},
    )
    timezone = forms.CharField(required=False)
    action = forms.CharField(required=False)

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = editing

    def clean_action(self) -> str:
        action = self.cleaned_data.get("action") or "save"
        if action not in COMPOSE_ACTIONS:
            raise ValidationError("Unknown action.")
        return action

    def clean_timezone(self) -> str:
        return (self.cleaned_data.get("timezone") or "UTC").strip()

    def clean(self):
        data = super().clean()
        if not self.editing and not data.get("team") and "team" not in self.errors:
            self.add_error("team", "Choose the team this post is for.")
        typed_date = bool((self.data.get("schedule_date") or "").strip())
        typed_time = bool((self.data.get("schedule_time") or "").strip())
        if typed_date != typed_time:
            self.add_error(
                "schedule_time" if typed_date else "schedule_date",
                "Give both a date and a time, or leave both empty to publish as soon as the "
                "post is approved.",
            )
        return data

    def variants(self) -> dict[int, str]:
        """Account id → its own text, for the chosen accounts."""
        return {
            account_id: (self.data.get(f"variant-{account_id}") or "").replace("\r\n", "\n")
            for account_id in self.cleaned_data.get("accounts", [])
        }


class CancelForm(forms.Form):
    reason = forms.CharField(required=False, max_length=1000)


class PostFilterForm(forms.Form):
    """Filters of the posts list and the calendar (all optional)."""

    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *PostStatus.choices])
    team = forms.IntegerField(required=False, min_value=1)
    account = forms.IntegerField(required=False, min_value=1)

    def statuses(self) -> list[str]:
        status = self.cleaned_data.get("status")
        return [status] if status else []
