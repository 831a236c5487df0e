"""Forms of the inbox pages. They parse what was typed or chosen (ids, choices); the rules (who
may be given an item, what a tag may be called, which status may follow which) are the
services'."""

import re
from collections.abc import Callable

from django import forms
from django.core.exceptions import ValidationError

from cxhub.errors import ApplicationError
from networks.models import Channel
from publishing.forms import IdListField

from .models import ItemStatus, Sentiment
from .selectors import ItemFilters
from .services import tag_name

# The status filter's choices beyond the statuses themselves.
NOT_CLOSED = "active"
STATUS_FILTERS = {
    NOT_CLOSED: (ItemStatus.OPEN, ItemStatus.WAITING),
    **{status: (status,) for status in ItemStatus.values},
}
# "Language" filter values that are not a code.
UNKNOWN_LANGUAGE = "unknown"
_LANGUAGE = re.compile(r"[a-z]{2,3}")
_MAX_ID = 2**63 - 1


def _id(value: str) -> int | None:
    """A positive database id typed as digits, else None."""
    value = value.strip()
    if value.isascii() and value.isdecimal() and 0 < int(value) <= _MAX_ID:
        return int(value)
    return None


def _person(value: str) -> int | None:
    """An assignee chosen from a select: a person's id, or empty for nobody."""
    value = value.strip()
    if not value:
        return None
    found = _id(value)
    if found is None:
        raise ValidationError("Choose someone from the list.")
    return found


class InboxFilterForm(forms.Form):
    """The inbox's filters (a GET form: every field may be empty). `people()` gives the ids the
    "assigned to" select offers (asked only when a person is chosen); `me` is the person
    asking."""

    account = forms.CharField(required=False)
    network = forms.ChoiceField(
        required=False,
        choices=[("", "Any network"), *Channel.choices],
        error_messages={"invalid_choice": "Choose a network from the list."},
    )
    sentiment = forms.ChoiceField(
        required=False,
        choices=[("", "Any sentiment"), *Sentiment.choices],
        error_messages={"invalid_choice": "Choose a sentiment from the list."},
    )
    language = forms.CharField(required=False, max_length=16)
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), (NOT_CLOSED, "Open or waiting"), *ItemStatus.choices],
        error_messages={"invalid_choice": "Choose a status from the list."},
    )
    assignee = forms.CharField(required=False)
    has_post = forms.ChoiceField(
        required=False,
        choices=[("", "Either"), ("yes", "Answers one of our posts"), ("no", "Does not")],
        error_messages={"invalid_choice": "Choose yes or no."},
    )
    tag = forms.CharField(required=False)

    def __init__(self, data, *, me: int, people: Callable[[], set[int]]):
        super().__init__(data)
        self.me = me
        self.people = people

    def clean_account(self) -> int | None:
        value = self.cleaned_data["account"].strip()
        if not value:
            return None
        found = _id(value)
        if found is None:
            raise ValidationError("Choose an account from the list.")
        return found

    def clean_language(self) -> str | None:
        value = self.cleaned_data["language"].strip().lower()
        if not value:
            return None
        if value == UNKNOWN_LANGUAGE:
            return ""
        if not _LANGUAGE.fullmatch(value):
            raise ValidationError("Choose a language from the list.")
        return value

    def clean_assignee(self) -> int | None:
        value = self.cleaned_data["assignee"].strip()
        if not value:
            return None
        if value == "me":
            return self.me
        if value == "nobody":
            return 0
        found = _id(value)
        if found is None or found not in self.people():
            raise ValidationError("Choose someone from the list.")
        return found

    def clean_tag(self) -> str | None:
        value = self.cleaned_data["tag"]
        if not value.strip():
            return None
        try:
            return tag_name(value)
        except ApplicationError as error:
            raise ValidationError(error.message) from None

    def filters(self) -> ItemFilters:
        data = self.cleaned_data
        has_post = {"yes": True, "no": False}.get(data["has_post"])
        return ItemFilters(
            account_id=data["account"],
            network=data["network"] or None,
            statuses=STATUS_FILTERS.get(data["status"], ()),
            sentiments=(data["sentiment"],) if data["sentiment"] else (),
            language=data["language"],
            assignee_id=data["assignee"],
            has_post=has_post,
            tag=data["tag"],
        )


class AssignForm(forms.Form):
    """An item's assignee: a person's id, or empty for nobody."""

    assignee = forms.CharField(required=False)

    def clean_assignee(self) -> int | None:
        return _person(self.cleaned_data["assignee"])


class StatusForm(forms.Form):
    status = forms.ChoiceField(
        choices=ItemStatus.choices,
        error_messages={
            "required": "Choose open, waiting or closed.",
            "invalid_choice": "Choose open, waiting or closed.",
        },
    )


class TagForm(forms.Form):
    # The service trims, lower-cases and checks it (services.tag_name); this only caps the input.
    name = forms.CharField(required=False, strip=False, max_length=1000)


class NoteForm(forms.Form):
    # The service says what a note may hold (services.item_note_add).
    text = forms.CharField(required=False, strip=False, max_length=100_000)


class ReplyForm(forms.Form):
    # The service says what a reply may hold (publishing.services.reply_create).
    body = forms.CharField(required=False, strip=False, max_length=100_000)


BULK_ACTIONS = ("assign", "tag", "close")


class BulkForm(forms.Form):
    """The bulk bar: the chosen items, which action, and its value (an assignee or a tag)."""

    items = IdListField(required=False)
    action = forms.ChoiceField(
        choices=[(action, action) for action in BULK_ACTIONS],
        error_messages={
            "required": "Choose what to do with the selected items.",
            "invalid_choice": "Choose assign, tag or close.",
        },
    )
    assignee = forms.CharField(required=False)
    tag = forms.CharField(required=False, strip=False, max_length=1000)

    def clean_items(self) -> list[int]:
        items = self.cleaned_data["items"]
        if not items:
            raise ValidationError("Select at least one item first.")
        return items

    def clean_assignee(self) -> int | None:
        return _person(self.cleaned_data["assignee"])


class ResponseForm(forms.Form):
    """A new approved response. The service says what a title and a body may be, and which teams
    the person may keep responses for (inbox.responses.response_create)."""

    team = forms.CharField(required=False)
    title = forms.CharField(required=False, max_length=10_000)
    body = forms.CharField(required=False, strip=False, max_length=100_000)

    def clean_team(self) -> int:
        found = _id(self.cleaned_data["team"])
        if found is None:
            raise ValidationError("Choose a team from the list.")
        return found


class ResponseActiveForm(forms.Form):
    """Withdraw (0) or offer again (1) an approved response."""

    active = forms.TypedChoiceField(
        choices=[("1", "Restore"), ("0", "Withdraw")],
        coerce=lambda value: value == "1",
        error_messages={
            "required": "Choose withdraw or restore.",
            "invalid_choice": "Choose withdraw or restore.",
        },
    )
