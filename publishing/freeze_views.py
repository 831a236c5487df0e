"""Pages of the dispatch engine: a lead's freeze control (freeze and lift, with a reason) and the
feed of a sandbox account (what it "published").

Views parse the form, call a service, and render; a refusal comes back on the page beside the
field it names, with its status. Someone who leads nothing gets 404 for the freeze page, as for
a freeze outside their scope.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import Role, Team
from accounts.selectors import roles_of, teams_for
from cxhub.errors import ApplicationError
from networks.models import SocialAccount
from networks.selectors import social_accounts_for

from . import freezes as freeze_services
from .dispatch import send
from .models import PublishingFreeze
from .scheduling import local_to_utc

Scope = PublishingFreeze.Scope
RECENT_FREEZES = 100


class FreezeForm(forms.Form):
    scope = forms.ChoiceField(label="What to freeze", widget=forms.RadioSelect)
    team = forms.ModelChoiceField(
        label="Team (with every team below it)",
        queryset=Team.objects.none(),
        required=False,
        empty_label="Choose a team",
    )
    social_account = forms.ModelChoiceField(
        label="Social account",
        queryset=SocialAccount.objects.none(),
        required=False,
        empty_label="Choose an account",
    )
    tags = forms.CharField(
        label="Topic: tags",
        required=False,
        max_length=2000,
        help_text=(
            "For a topic freeze: the team's posts carrying any of these tags are held. "
            "Separate them with commas; case and a leading # do not matter."
        ),
    )
    campaign = forms.CharField(
        label="Topic: campaign",
        required=False,
        max_length=freeze_services.CAMPAIGN_MAX,
        help_text="For a topic freeze: the team's posts of this campaign are held too.",
    )
    reason = forms.CharField(
        label="Reason",
        max_length=freeze_services.REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown in the audit trail and to the people whose posts it holds.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        choices = list(Scope.choices)
        if not freeze_services.leads_everything(user=user):
            choices = [c for c in choices if c[0] != Scope.EVERYTHING]
        self.fields["scope"].choices = choices
        self.fields["team"].queryset = teams_for(user=user, roles=[Role.LEAD]).order_by("path")
        self.fields["social_account"].queryset = social_accounts_for(
            user=user, roles=[Role.LEAD], include_grants=False
        ).order_by("team__path", "channel", "handle")

    def clean(self):
        data = super().clean()
        scope = data.get("scope")
        if scope in (Scope.TEAM, Scope.TOPIC) and not data.get("team"):
            self.add_error("team", "Choose the team to freeze.")
        if scope == Scope.ACCOUNT and not data.get("social_account"):
            self.add_error("social_account", "Choose the account to freeze.")
        return data

    def clean_tags(self) -> list[str]:
        # The service strips each, drops the empty ones and checks the rest.
        return self.cleaned_data["tags"].replace("\n", ",").split(",")


class RescheduleForm(forms.Form):
    day = forms.DateField(label="New day", widget=forms.DateInput(attrs={"type": "date"}))
    clock = forms.TimeField(label="New time", widget=forms.TimeInput(attrs={"type": "time"}))
    reason = forms.CharField(label="Reason for the new time", max_length=freeze_services.REASON_MAX)


class LiftForm(forms.Form):
    reason = forms.CharField(label="Reason for lifting", max_length=freeze_services.REASON_MAX)


def _require_lead(user) -> None:
    if not (user.is_superuser or Role.LEAD in roles_of(user=user)):
        raise Http404


def _scope_text(freeze: PublishingFreeze) -> str:
    if freeze.scope == Scope.TEAM:
        return f"{freeze.team.name} and the teams below it"
    if freeze.scope == Scope.TOPIC:
        topic = [f"tagged {', '.join('#' + tag for tag in freeze.tags)}"] if freeze.tags else []
        if freeze.campaign:
            topic.append(f"of the campaign “{freeze.campaign}”")
        return f"Posts {' or '.join(topic)} of {freeze.team.name} and the teams below it"
    if freeze.scope == Scope.ACCOUNT:
        return f"{freeze.social_account} of {freeze.social_account.team.name}"
    return "Everything"


def _page(request, *, form=None, lift_errors=None, reschedule_errors=None, status=200):
    recent = freeze_services.freezes_for(user=request.user)
    recent = list(recent.order_by("-active", "-created_at", "-id")[:RECENT_FREEZES])
    for freeze in recent:
        freeze.scope_text = _scope_text(freeze)
    return render(
        request,
        "publishing/freezes.html",
        {
            "form": form or FreezeForm(user=request.user),
            "active": [f for f in recent if f.active],
            "lifted": [f for f in recent if not f.active],
            "lift_errors": lift_errors or {},
            "held": freeze_services.held_posts_for(user=request.user),
            "reschedule_errors": reschedule_errors or {},
        },
        status=status,
    )


def _add_service_error(form: forms.Form, error: ApplicationError) -> None:
    fields = error.extra.get("fields") or {}
    for name, problems in fields.items():
        form.add_error(name if name in form.fields else None, problems)
    if not fields:
        form.add_error(None, error.message)


@login_required
def freezes(request):
    _require_lead(request.user)
    if request.method != "POST":
        return _page(request)
    form = FreezeForm(request.POST, user=request.user)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    values = form.cleaned_data
    try:
        freeze = freeze_services.freeze_create(
            by=request.user,
            scope=values["scope"],
            reason=values["reason"],
            team_id=values["team"].pk if values["team"] else None,
            social_account_id=values["social_account"].pk if values["social_account"] else None,
            tags=values["tags"],
            campaign=values["campaign"],
        )
    except ApplicationError as error:
        _add_service_error(form, error)
        return _page(request, form=form, status=error.status)
    messages.success(
        request,
        f"Publishing is frozen ({freeze.get_scope_display().lower()}): "
        f"{freeze.held_count} waiting post target(s) held.",
    )
    return redirect("freezes")


@login_required
@require_POST
def freeze_lift(request, freeze_id: int):
    _require_lead(request.user)
    freeze = freeze_services.freeze_get(user=request.user, freeze_id=freeze_id)
    if freeze is None:
        raise Http404
    form = LiftForm(request.POST)
    if not form.is_valid():
        return _page(
            request, lift_errors={freeze.pk: "Give the reason for lifting it."}, status=400
        )
    try:
        lifted = freeze_services.freeze_lift(
            freeze=freeze, by=request.user, reason=form.cleaned_data["reason"]
        )
    except ApplicationError as error:
        return _page(request, lift_errors={freeze.pk: error.message}, status=error.status)
    messages.success(
        request, f"Freeze {lifted.pk} lifted: {lifted.released_count} post target(s) released."
    )
    return redirect("freezes")


@login_required
@require_POST
def held_reschedule(request, post_id: int):
    """A lead gives a post held by a freeze a new time, in the post's own time zone."""
    _require_lead(request.user)
    post = freeze_services.held_post_get(user=request.user, post_id=post_id)
    if post is None:
        raise Http404
    form = RescheduleForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(
            f"{form.fields[name].label}: {' '.join(errors)}" for name, errors in form.errors.items()
        )
        return _page(request, reschedule_errors={post.pk: problems}, status=400)
    values = form.cleaned_data
    try:
        when = local_to_utc(values["day"], values["clock"], post.timezone)
        moved = freeze_services.held_post_reschedule(
            post=post, by=request.user, scheduled_at=when, reason=values["reason"]
        )
    except ApplicationError as error:
        return _page(request, reschedule_errors={post.pk: error.message}, status=error.status)
    messages.success(
        request,
        f"Post #{post.pk} now goes out at {values['day']:%Y-%m-%d} {values['clock']:%H:%M} "
        f"({post.timezone}), {moved} account(s), once no freeze holds it.",
    )
    return redirect("freezes")


@login_required
def sandbox_feed(request, account_id: int):
    account = send.sandbox_account_get(user=request.user, account_id=account_id)
    if account is None:
        raise Http404
    return render(
        request,
        "publishing/sandbox_feed.html",
        {"account": account, "publications": list(send.sandbox_feed(account=account))},
    )
