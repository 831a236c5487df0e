"""Forms of the listening pages. They parse what was typed or chosen (lists typed one a line or
with commas, whole numbers, ids, choices); the rules (what a term, a hashtag or a language code
may be, which networks listen, who may change a watch) are the services'. The API shares the
webhook address's check and the naming of the services' errors after the inputs."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError

from cxhub.errors import ApplicationError
from publishing.forms import IdListField

from .models import Resolution
from .services import listening_networks

_MAX_ID = 2**63 - 1
# A list field takes this much text at most; the service says how many items and how long.
_LIST_CHARS = 200_000
_SPLIT = re.compile(r"[\n,]")

# The dashboard's ranges, ending with the current minute, hour or day.
RANGES = {
    "1h": (timedelta(hours=1), "Last hour"),
    "6h": (timedelta(hours=6), "Last 6 hours"),
    "24h": (timedelta(hours=24), "Last 24 hours"),
    "7d": (timedelta(days=7), "Last 7 days"),
    "30d": (timedelta(days=30), "Last 30 days"),
    "90d": (timedelta(days=90), "Last 90 days"),
}
DEFAULT_RANGE = {Resolution.MINUTE: "1h", Resolution.HOUR: "24h", Resolution.DAY: "30d"}
STEP = {
    Resolution.MINUTE: timedelta(minutes=1),
    Resolution.HOUR: timedelta(hours=1),
    Resolution.DAY: timedelta(days=1),
}
# A chart of more points than this is unreadable and its table too long: choose a coarser step.
MAX_BUCKETS = 800


def split_list(text: str) -> list[str]:
    """ "census, #census2026\\nfake fine" → ["census", "#census2026", "fake fine"]."""
    return [part.strip() for part in _SPLIT.split(text) if part.strip()]


def joined(values: list[str]) -> str:
    """A list as the text area shows it: one a line."""
    return "\n".join(values)


class ListField(forms.CharField):
    """A text area of items, one a line or separated by commas."""

    widget = forms.Textarea

    def __init__(self, **kwargs):
        super().__init__(required=False, strip=False, max_length=_LIST_CHARS, **kwargs)

    def clean(self, value) -> list[str]:
        return split_list(super().clean(value))


class WholeNumberField(forms.IntegerField):
    """A whole number, or nothing (the watch's default, or its current value)."""

    default_error_messages = {"invalid": "A whole number."}

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)


_NUMBERS = ("window_minutes", "baseline_hours", "min_volume", "retention_days")
_LISTS = ("terms", "exclude", "hashtags", "accounts", "languages")


class WatchForm(forms.Form):
    """A watch's fields as a lead types them. `values()` is what the service is given: a number
    left empty is not given (the default, or the value it has)."""

    name = forms.CharField(required=False, max_length=1000, label="Name")
    terms = ListField(
        label="Terms and phrases",
        help_text="Posts that mention any of them. One a line, or separated by commas; "
        "“census*” also finds census2026.",
    )
    exclude = ListField(
        label="Leave out posts that mention",
        help_text="One a line, or separated by commas.",
    )
    hashtags = ListField(
        label="Hashtags", help_text="Posts that carry any of them: #census, or census."
    )
    accounts = ListField(
        label="Accounts to follow",
        help_text="Everything they post: “handle” on every network, or “mastodon:handle” on one.",
    )
    languages = ListField(
        label="Languages",
        help_text="Codes such as en, fr, cy; none: every language. A post whose language "
        "is not known is kept.",
    )
    networks = forms.MultipleChoiceField(
        required=False,
        label="Networks",
        help_text="None chosen: every network that offers public search.",
        error_messages={"invalid_choice": "Choose networks from the list."},
    )
    window_minutes = WholeNumberField(
        label="Window (minutes)",
        help_text="The detectors compare the last this many minutes with the baseline.",
    )
    baseline_hours = WholeNumberField(
        label="Baseline (hours)", help_text="The hours before the window that set what is usual."
    )
    min_volume = WholeNumberField(
        label="Minimum volume",
        help_text="No alert on fewer posts than this in a window, however unusual.",
    )
    retention_days = WholeNumberField(
        label="Keep posts (days)",
        help_text="Then the posts are purged; the figures stay, by the hour and day.",
    )
    topic_tags = ListField(
        label="Tags of our posts on this topic",
        help_text="A post drafted from an alert carries them, and freezing the topic holds the "
        "team’s scheduled posts that carry them. One a line, or separated by commas.",
    )
    topic_campaign = forms.CharField(
        required=False,
        max_length=1000,
        label="Campaign of our posts on this topic",
        help_text="Used as the tags are; empty: none.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["networks"].choices = [(name, name) for name in sorted(listening_networks())]

    def values(self) -> dict[str, object]:
        data = self.cleaned_data
        values: dict[str, object] = {"name": data["name"], "networks": list(data["networks"])}
        values.update({name: data[name] for name in _LISTS})
        values.update({name: data[name] for name in _NUMBERS if data[name] is not None})
        values.update(topic_tags=data["topic_tags"], topic_campaign=data["topic_campaign"])
        return values


class NewWatchForm(WatchForm):
    team = forms.CharField(required=False, label="Team")
    sandbox = forms.BooleanField(
        required=False,
        label="Demo watch",
        help_text="Hears the sandbox's made-up conversation instead of the networks: for "
        "training and trying the alerts.",
    )

    field_order = ["team", "name"]

    def clean_team(self) -> int:
        value = self.cleaned_data["team"].strip()
        if value.isascii() and value.isdecimal() and 0 < int(value) <= _MAX_ID:
            return int(value)
        raise ValidationError("Choose a team from the list.")


class ActiveForm(forms.Form):
    """Pause (0) or resume (1) a watch."""

    active = forms.TypedChoiceField(
        choices=[("1", "Resume"), ("0", "Pause")],
        coerce=lambda value: value == "1",
        error_messages={
            "required": "Choose pause or resume.",
            "invalid_choice": "Choose pause or resume.",
        },
    )


class ClaimForm(forms.Form):
    # The service says what a claim and its terms may be (services.claim_create).
    claim = forms.CharField(required=False, max_length=10_000)
    terms = ListField()


class CloseForm(forms.Form):
    # The service keeps the first 2,000 characters (alerts.alert_close).
    note = forms.CharField(required=False, max_length=2000)


class RangeForm(forms.Form):
    """The dashboard's resolution and range (a GET form: both may be empty, for the defaults)."""

    resolution = forms.ChoiceField(
        required=False,
        choices=Resolution.choices,
        error_messages={"invalid_choice": "Choose minute, hour or day."},
    )
    range = forms.ChoiceField(
        required=False,
        choices=[(key, label) for key, (_, label) in RANGES.items()],
        error_messages={"invalid_choice": "Choose a range from the list."},
    )

    def clean(self):
        data = super().clean()
        resolution = data.get("resolution") or Resolution.HOUR
        data["resolution"] = resolution
        if "range" not in data:
            return data
        key = data["range"] or DEFAULT_RANGE[resolution]
        data["range"] = key
        span, step = RANGES[key][0], STEP[resolution]
        if span < step or span % step:
            self.add_error("range", f"By the {resolution}, choose a range of whole {resolution}s.")
        elif span // step > MAX_BUCKETS:
            self.add_error(
                "range",
                f"By the {resolution}, at most {MAX_BUCKETS:,} {resolution}s: "
                "choose a shorter range or a coarser resolution.",
            )
        return data

    @property
    def span(self) -> timedelta:
        return RANGES[self.cleaned_data["range"]][0]


def _one_id(value: str, message: str) -> int:
    value = (value or "").strip()
    if value.isascii() and value.isdecimal() and 0 < int(value) <= _MAX_ID:
        return int(value)
    raise ValidationError(message)


def web_address(value: str) -> None:
    """A webhook's address that the service can look at: one whose port and host name can be
    read (the service refuses the rest, naming the field: not http(s), not public)."""
    if not value:
        return
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError when it is not a number from 0 to 65535)
        (parts.hostname or "").encode("idna")
    except (ValueError, UnicodeError):
        raise ValidationError(
            "Not a web address: give it whole, such as https://chat.example.org/hooks/cxhub."
        ) from None


class WebhookForm(forms.Form):
    # The service says which addresses are allowed (listening.webhooks.watch_set_webhook).
    url = forms.CharField(required=False, max_length=500, validators=[web_address])


class AlertDraftForm(forms.Form):
    """A post drafted from an alert: one of the team's approved responses, and our accounts."""

    response = forms.CharField(required=False)
    accounts = IdListField(required=False)

    def clean_response(self) -> int:
        return _one_id(self.cleaned_data["response"], "Choose one of the approved responses.")


class AlertReplyForm(forms.Form):
    """A reply to one of the alert's posts: from one of our accounts, in the words of an approved
    response or in words of one's own (one or the other)."""

    post = forms.CharField(required=False)
    account = forms.CharField(required=False)
    response = forms.CharField(required=False)
    body = forms.CharField(required=False, strip=False, max_length=100_000)

    def clean_post(self) -> int:
        return _one_id(self.cleaned_data["post"], "Choose a post of the alert.")

    def clean_account(self) -> int:
        return _one_id(self.cleaned_data["account"], "Choose one of our accounts.")

    def clean_response(self) -> int | None:
        if not self.cleaned_data["response"].strip():
            return None
        return _one_id(self.cleaned_data["response"], "Choose one of the approved responses.")

    def clean(self):
        data = super().clean()
        if data.get("response") and (data.get("body") or "").strip():
            self.add_error("body", "Choose an approved response or write the reply, not both.")
        return data


# Shared by the pages and the API --------------------------------------------------------------
def renamed(error: ApplicationError, names: dict[str, str]) -> ApplicationError:
    """The error with the fields a service named (`targets[0].social_account`, `webhook_url`)
    named as the form or the API's input names them (`accounts`, `url`): `names` maps a
    service's field, with or without its index and part, to the input's."""
    fields = error.extra.get("fields") if isinstance(error.extra, dict) else None
    if not isinstance(fields, dict):
        return error
    out: dict[str, list] = {}
    for name, said in fields.items():
        base = re.split(r"[\[.]", str(name), maxsplit=1)[0]
        out.setdefault(names.get(base, str(name)), []).extend(
            said if isinstance(said, list) else [said]
        )
    error.extra = {**error.extra, "fields": out}
    return error
