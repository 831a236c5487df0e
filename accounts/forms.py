from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxValueValidator

from publishing.channels.http import network_base_url


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


class ConnectForm(forms.Form):
    """Connecting (or reconnecting) one account of one network: the team it is for, the server
    it lives on where the network has many, and the handle and app password where the network
    is signed in to with one. Fields that do not apply are left out."""

    team = forms.IntegerField(label="Team", widget=forms.Select)
    server = forms.CharField(label="Server address", max_length=500, required=False)
    identifier = forms.CharField(label="Handle", max_length=253)
    password = forms.CharField(
        label="App password",
        max_length=200,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args, channel, teams=(), reconnecting: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.channel = channel
        if reconnecting:
            for name in ("team", "server", "identifier"):
                del self.fields[name]
        else:
            teams = list(teams)
            self.fields["team"].widget.choices = [("", "Choose a team")] + [
                (team.pk, team.name) for team in teams
            ]
            if len(teams) == 1:
                self.fields["team"].initial = teams[0].pk
            self.fields["team"].help_text = "The account is connected to this team."
            if channel.needs_server:
                self.fields["server"].required = True
                self.fields["server"].initial = network_base_url(channel) or None
                self.fields["server"].widget = forms.TextInput(
                    attrs={"autocomplete": "url", "inputmode": "url", "spellcheck": "false"}
                )
                self.fields["server"].help_text = _SERVER_HELP.get(
                    channel.name, f"The address of the {channel.label} server of the account."
                )
            else:
                del self.fields["server"]
        if channel.connect_method != "app_password":
            self.fields.pop("identifier", None)
            del self.fields["password"]
        else:
            if "identifier" in self.fields:
                self.fields[
                    "identifier"
                ].help_text = f"The account's {channel.label} handle, e.g. agency.bsky.social."
            self.fields["password"].help_text = (
                "An app password made for cxhub in the account's settings (Settings → Privacy "
                "and security → App passwords), not the account's own password. It is used once "
                "and not stored."
            )


_SERVER_HELP = {
    "mastodon": "Your Mastodon server, e.g. https://mastodon.social (the part after the second "
    "@ of the handle).",
    "bluesky": "https://bsky.social for accounts Bluesky hosts; your own PDS address otherwise.",
}


class ChooseIdentityForm(forms.Form):
    identity = forms.ChoiceField(label="Account to connect", widget=forms.RadioSelect)

    def __init__(self, *args, identities, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["identity"].choices = [
            (
                identity.external_id,
                f"{identity.display_name} ({identity.handle})"
                if identity.display_name
                else identity.handle,
            )
            for identity in identities
        ]


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
