"""Forms of the connect pages: which account of which network, for which team, and, where one
grant reaches several accounts, which of them."""

from django import forms

from .channels.http import network_base_url


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
