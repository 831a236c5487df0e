"""Forms of the listening pages. They parse what was typed or chosen (lists typed one a line or
with commas, whole numbers, ids, choices); the rules (what a term, a hashtag or a language code
may be, which networks listen, who may change a watch) are the services'."""

import re
from datetime import timedelta

from django import forms
from django.core.exceptions import ValidationError

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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["networks"].choices = [(name, name) for name in sorted(listening_networks())]

    def values(self) -> dict[str, object]:
        data = self.cleaned_data
        values: dict[str, object] = {"name": data["name"], "networks": list(data["networks"])}
        values.update({name: data[name] for name in _LISTS})
        values.update({name: data[name] for name in _NUMBERS if data[name] is not None})
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
