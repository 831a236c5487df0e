"""The listening pages: the watches one may see with the alerts not yet closed (and, for leads,
a new watch), a watch's dashboard (its figures over time drawn as inline SVG, each chart followed
by its data as a table, exported as CSV and JSON; its top posts and authors, false claims,
sources, and for leads its settings and chat webhook), and an alert's page with its evidence,
acknowledged and closed by a lead, from which a drafter of the watch's team drafts a post, or a
reply to one of its top posts, in the words of an approved response.

Views parse the form, call one service and render. A service's ApplicationError comes back on
the page beside the field it names, with its status (400 bad input, 403 not a lead, 409 wrong
state); a watch or alert the person may not see is a 404. Every page costs the same number of
queries whatever the number of watches, alerts and posts."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Role
from accounts.selectors import teams_for
from cxhub.errors import ApplicationError, NotAllowed
from inbox.responses import responses_for
from networks.channels import get_channel
from networks.models import Channel
from publishing.selectors import can_draft_for_team, drafting_accounts

from . import alerts, exports, measures, selectors, services, webhooks
from .charts import (
    SENTIMENTS,
    Span,
    language_rows,
    languages_chart,
    sentiment_chart,
    volume_chart,
    when,
)
from .forms import (
    STEP,
    ActiveForm,
    AlertDraftForm,
    AlertReplyForm,
    ClaimForm,
    CloseForm,
    NewWatchForm,
    RangeForm,
    WatchForm,
    WebhookForm,
    joined,
    renamed,
)
from .models import Alert, AlertKind, AlertStatus, Hit, Resolution, Watch

# The list shows at most this many alerts not closed (newest first); the dashboard this many of
# the watch's alerts, and marks at most this many on its charts.
ALERTS_LISTED = 100
WATCH_ALERTS_LISTED = 20
ALERTS_MARKED = 30
TOP = 10
_WATCH_DEFAULTS = {
    name: Watch._meta.get_field(name).default
    for name in ("window_minutes", "baseline_hours", "min_volume", "retention_days")
}
_NETWORK_NAMES = dict(Channel.choices)


def _fields(error: ApplicationError) -> dict[str, list[str]]:
    """The messages a service's error gives each field, as lists of strings."""
    found = error.extra.get("fields") if isinstance(error.extra, dict) else None
    if not isinstance(found, dict):
        return {}
    return {
        str(name): [str(m) for m in (said if isinstance(said, list) else [said])]
        for name, said in found.items()
    }


def _form_errors(form) -> dict[str, list[str]]:
    return {name: [str(m) for m in found] for name, found in form.errors.items()}


def network_name(network: str) -> str:
    return _NETWORK_NAMES.get(network, network.capitalize())


def _web_url(url: str) -> str:
    # Stored links are checked on the way in (services._row); checked again on the way out.
    return url if url.lower().startswith(("https://", "http://")) else ""


@dataclass
class Sent:
    """A form as it came back with errors: what was typed, and the messages by field."""

    message: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)
    values: dict[str, object] = field(default_factory=dict)

    @property
    def summary(self) -> list[tuple[str, str]]:
        """(field, its messages) for the error summary's links: a list, not the dict (a template
        would read `errors.items` as the "items" field's)."""
        return [(name, " ".join(found)) for name, found in self.errors.items()]


def _sent(error: ApplicationError, typed: dict[str, object], failed: str) -> Sent:
    """A form's refusal as the page shows it: what failed, and each field's messages."""
    fields = _fields(error)
    message = f"{failed}: correct what is named below." if fields else f"{failed}: {error.message}"
    return Sent(message=message, errors=fields, values=typed)


def _typed(request, form_class) -> dict[str, object]:
    """What was typed in a watch form, to show it again beside its errors."""
    values: dict[str, object] = {
        name: request.POST.get(name, "")
        for name in form_class.base_fields
        if name not in ("networks", "sandbox")
    }
    values["networks"] = request.POST.getlist("networks")
    values["sandbox"] = bool(request.POST.get("sandbox"))
    return values


_KINDS = {
    "name": "text",
    **{name: "textarea" for name in ("terms", "exclude", "hashtags", "accounts", "languages")},
    **{name: "number" for name in _WATCH_DEFAULTS},
    "topic_tags": "textarea",
    "topic_campaign": "text",
}
# What a text field takes (the service's limits).
_MAX_LENGTH = {"name": 200, "topic_campaign": 100}


def watch_form_view(form_class, sent: Sent, prefix: str) -> dict:
    """A watch form as its template draws it: each field with its id, label, hint, value and
    errors; the networks' checkboxes; and the error summary, linked to the fields."""
    base = form_class.base_fields

    def row(name: str, kind: str) -> dict:
        value = sent.values.get(name, "")
        return {
            "name": name,
            "id": f"{prefix}-{name}",
            "kind": kind,
            "label": base[name].label,
            "hint": base[name].help_text,
            "value": "" if value is None else value,
            "errors": sent.errors.get(name, []),
            "maxlength": _MAX_LENGTH.get(name, 200),
        }

    known = set(base)
    chosen = sent.values.get("networks") or []
    return {
        "prefix": prefix,
        "message": sent.message,
        "summary": [
            (f"{prefix}-{name}" if name in known else "", message) for name, message in sent.summary
        ],
        "fields": [row(name, kind) for name, kind in _KINDS.items()],
        "networks": {
            **row("networks", "checkboxes"),
            "choices": [
                {
                    "value": network,
                    "label": network_name(network),
                    "id": f"{prefix}-networks-{network}",
                    "checked": network in chosen,
                }
                for network in sorted(services.listening_networks())
            ],
        },
        "team": row("team", "select") if "team" in base else None,
        "sandbox": {**row("sandbox", "checkbox"), "checked": bool(sent.values.get("sandbox"))}
        if "sandbox" in base
        else None,
    }


# The list --------------------------------------------------------------------------------------
def _watches(user) -> list[Watch]:
    """The watches `user` may see, each with its alerts open and acknowledged and its posts in
    the last hour and day. One query: the counts are subqueries, not joins that would multiply
    one another."""
    now = timezone.now()
    hour_ago = measures.bucket_start(now - timedelta(hours=1), "minute")
    day_ago = measures.bucket_start(now - timedelta(hours=24), "minute")
    return list(
        selectors.watches_for(user=user)
        .annotate(
            open_alerts=selectors.alerts_in(AlertStatus.OPEN),
            acknowledged_alerts=selectors.alerts_in(AlertStatus.ACKNOWLEDGED),
            posts_hour=selectors.posts_since(hour_ago),
            posts_day=selectors.posts_since(day_ago),
        )
        .order_by("name", "pk")
    )


def _lead_teams(user) -> list:
    teams = list(teams_for(user=user, roles=[Role.LEAD]).order_by("path"))
    top = min((team.depth for team in teams), default=1)
    for team in teams:
        team.indent = "— " * (team.depth - top)
    return teams


def _new_watch_defaults() -> dict[str, object]:
    return {**_WATCH_DEFAULTS, "networks": []}


def _list_context(request, sent: Sent | None = None) -> dict:
    watches = _watches(request.user)
    not_closed = list(
        selectors.alerts_for(user=request.user)
        .exclude(status=AlertStatus.CLOSED)
        .order_by("-raised_at", "-pk")[: ALERTS_LISTED + 1]
    )
    across = _across(request.user)
    return {
        **across,
        "watches": watches,
        "alerts": not_closed[:ALERTS_LISTED],
        "more_alerts": len(not_closed) > ALERTS_LISTED,
        "lead_teams": _lead_teams(request.user),
        "new": watch_form_view(NewWatchForm, sent or Sent(values=_new_watch_defaults()), "new"),
    }


def _across_span(params) -> Span | None:
    """The span of the view across watches: the last 24 hours by the hour unless the query
    string says otherwise (as the dashboard reads it)."""
    if not params.get("resolution") and not params.get("range"):
        end = measures.bucket_start(timezone.now(), Resolution.HOUR) + timedelta(hours=1)
        return Span(Resolution.HOUR, "24h", end - timedelta(hours=24), end)
    span, _errors, _ = _span(params)
    return span


def _across(user, span: Span | None = None) -> dict:
    """The volume and sentiment of all the watches `user` may see, summed by the hour over the
    last 24 hours, with their alerts marked: the view across a team's subtree. Two queries."""
    span = span or _across_span({})
    seen = selectors.watches_for(user=user)
    rows = measures.series_across(seen, span.resolution, span.start, span.end)
    marked = list(
        selectors.alerts_for(user=user)
        .filter(window_end__gt=span.start, window_start__lt=span.end)
        .order_by("window_start", "pk")[:ALERTS_MARKED]
    )
    numbered = list(enumerate(marked, start=1))
    return {
        "across_span": span,
        "across_rows": rows,
        "across_marked": numbered,
        "across_volume": sum(row["volume"] for row in rows),
        "across_volume_chart": volume_chart(rows, span, numbered),
        "across_sentiment_chart": sentiment_chart(rows, span, numbered),
    }


def _across_export(request) -> tuple[Span, list[dict]] | HttpResponse:
    span = _across_span(request.GET)
    if span is None:
        return _export_span(request)  # the same refusal, in words
    seen = selectors.watches_for(user=request.user)
    return span, measures.series_across(seen, span.resolution, span.start, span.end)


@login_required
@require_GET
def across_csv(request):
    """The figures of every watch one may see, summed by bucket, as CSV."""
    found = _across_export(request)
    if isinstance(found, HttpResponse):
        return found
    span, rows = found
    response = HttpResponse(exports.series_csv(rows), content_type="text/csv; charset=utf-8")
    name = f"watches-{span.resolution}-{span.start:%Y%m%dT%H%M}Z.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_GET
def across_json(request):
    """The figures of every watch one may see, summed by bucket, as JSON."""
    found = _across_export(request)
    if isinstance(found, HttpResponse):
        return found
    span, rows = found
    body = exports.series_json(
        rows,
        watches=sorted(selectors.watches_for(user=request.user).values_list("pk", flat=True)),
        resolution=span.resolution,
        start=span.start,
        end=span.end,
        summed=True,
    )
    return HttpResponse(body, content_type="application/json")


@login_required
@require_GET
def listening(request):
    return render(request, "listening/listening.html", _list_context(request))


@login_required
@require_POST
def watch_new(request):
    """A lead starts a watch for a team they lead; the errors come back beside the fields."""
    form = NewWatchForm(request.POST)
    typed = _typed(request, NewWatchForm)
    try:
        if not form.is_valid():
            raise ApplicationError("Wrong values.", {"fields": _form_errors(form)})
        values = form.values()
        values["sandbox"] = form.cleaned_data["sandbox"]
        watch = services.watch_create(
            by=request.user, team_id=form.cleaned_data["team"], values=values
        )
    except ApplicationError as error:
        sent = _sent(error, typed, "The watch was not started")
        return render(
            request, "listening/listening.html", _list_context(request, sent), status=error.status
        )
    messages.success(request, f"The watch “{watch.name}” is listening.")
    return redirect("listening-watch", watch_id=watch.pk)


# A watch's dashboard ---------------------------------------------------------------------------
def _get_watch(request, watch_id: int) -> Watch:
    watch = selectors.watch_get(user=request.user, watch_id=watch_id)
    if watch is None:
        raise Http404
    return watch


def _span(params) -> tuple[Span | None, dict[str, list[str]], dict[str, str]]:
    form = RangeForm(params)
    given = {name: params.get(name, "") for name in ("resolution", "range")}
    if not form.is_valid():
        return None, _form_errors(form), given
    resolution = form.cleaned_data["resolution"]
    end = measures.bucket_start(timezone.now(), resolution) + STEP[resolution]
    span = Span(resolution, form.cleaned_data["range"], end - form.span, end)
    return span, {}, {"resolution": span.resolution, "range": span.range}


# Charts: inline SVG drawn from numbers worked out here. Each has a title and a description that
# says the figures in words; a table of every figure follows it on the page. Colours are the
# site's (4.5:1 on white) and never the only way to read a chart: alerts are a marker with a
# label, sentiments have patterns and a legend, and bars have their value written at the end.
def _top_authors(watch: Watch, span: Span) -> list[dict]:
    rows = measures.top_authors(watch, span.start, span.end, limit=TOP)
    for row in rows:
        network, _, handle = str(row["author_key"]).partition(":")
        row.update(network=network_name(network), handle=handle or network)
    return rows


def _top_posts(watch: Watch, span: Span) -> list:
    hits = measures.top_posts(watch, span.start, span.end, limit=TOP)
    for hit in hits:
        hit.network_name = network_name(hit.post.network)
        hit.web_url = _web_url(hit.post.url)
    return hits


def _watch_values(watch: Watch) -> dict[str, object]:
    values: dict[str, object] = {
        name: joined(getattr(watch, name))
        for name in ("terms", "exclude", "hashtags", "accounts", "languages", "topic_tags")
    }
    values.update(
        name=watch.name,
        networks=list(watch.networks),
        topic_campaign=watch.topic_campaign,
        **{name: getattr(watch, name) for name in _WATCH_DEFAULTS},
    )
    return values


@dataclass
class Forms:
    """The dashboard's forms as they came back: the settings ("edit"), a new claim ("claim") or
    the chat webhook ("webhook"); `active` is a message from pause or resume, and
    `webhook_secret` the new webhook's secret, shown this once."""

    edit: Sent | None = None
    claim: Sent | None = None
    active: str = ""
    webhook: Sent | None = None
    webhook_secret: str = ""


def _dashboard_context(request, watch: Watch, forms: Forms | None = None) -> dict:
    forms = forms or Forms()
    span, span_errors, span_given = _span(request.GET)
    may_manage = services.may_manage(user=request.user, watch=watch)
    sent = [form.message for form in (forms.edit, forms.claim, forms.webhook) if form]
    sent.append(forms.active)
    context = {
        "watch": watch,
        "may_manage": may_manage,
        # What was refused to someone who is not shown the leads' forms (a 403, mostly).
        "refused": "" if may_manage else next((message for message in sent if message), ""),
        "span": span,
        "span_errors": span_errors,
        "span_given": span_given,
        "resolutions": Resolution.choices,
        "ranges": RangeForm.base_fields["range"].choices,
        "recent_alerts": list(
            Alert.objects.filter(watch=watch)
            .select_related("claim", "acknowledged_by", "closed_by")
            .order_by("-raised_at", "-pk")[:WATCH_ALERTS_LISTED]
        ),
        "sources": [
            {"source": source, "network": network_name(source.network)}
            for source in watch.sources.all()
        ],
        "claims": list(watch.claims.select_related("created_by")),
        "edit": watch_form_view(WatchForm, forms.edit or Sent(values=_watch_values(watch)), "edit"),
        "claim": forms.claim or Sent(),
        "active_error": forms.active,
        "webhook": forms.webhook or Sent(values={"url": watch.webhook_url}),
        "webhook_secret": forms.webhook_secret,
        "watch_networks": [network_name(name) for name in watch.networks],
        "blind_spots": [
            (network_name(name), get_channel(name).listening_blind_spots)
            for name in sorted(watch.networks or services.listening_networks())
            if name in services.listening_networks()
        ],
        "sentiments": SENTIMENTS,
    }
    if span is None:
        return context
    rows = measures.series(watch, span.resolution, span.start, span.end)
    marked = list(
        Alert.objects.filter(
            watch=watch, window_end__gt=span.start, window_start__lt=span.end
        ).order_by("window_start", "pk")[:ALERTS_MARKED]
    )
    numbered = list(enumerate(marked, start=1))
    languages = language_rows(rows)
    volume = sum(row["volume"] for row in rows)
    context.update(
        rows=rows,
        marked=numbered,
        volume=volume,
        new_authors=sum(row["new_authors"] for row in rows),
        volume_chart=volume_chart(rows, span, numbered),
        sentiment_chart=sentiment_chart(rows, span, numbered),
        languages=languages,
        languages_chart=languages_chart(languages),
        top_posts=_top_posts(watch, span),
        top_authors=_top_authors(watch, span),
    )
    return context


@login_required
@require_GET
def watch_dashboard(request, watch_id: int):
    watch = _get_watch(request, watch_id)
    context = _dashboard_context(request, watch)
    status = 400 if context["span_errors"] else 200
    return render(request, "listening/watch.html", context, status=status)


def _dashboard_again(request, watch: Watch, forms: Forms, status: int):
    context = _dashboard_context(request, watch, forms)
    return render(request, "listening/watch.html", context, status=status)


@login_required
@require_POST
def watch_edit(request, watch_id: int):
    """A lead changes the watch's settings; the errors come back beside the fields."""
    watch = _get_watch(request, watch_id)
    form = WatchForm(request.POST)
    try:
        if not form.is_valid():
            raise ApplicationError("Wrong values.", {"fields": _form_errors(form)})
        watch = services.watch_update(by=request.user, watch=watch, values=form.values())
    except ApplicationError as error:
        sent = _sent(error, _typed(request, WatchForm), "The changes were not saved")
        return _dashboard_again(request, watch, Forms(edit=sent), error.status)
    messages.success(request, f"Saved the changes to “{watch.name}”.")
    return redirect("listening-watch", watch_id=watch.pk)


@login_required
@require_POST
def watch_active(request, watch_id: int):
    """Pause or resume a watch (a lead): paused, it reads nothing and its sources are dropped."""
    watch = _get_watch(request, watch_id)
    form = ActiveForm(request.POST)
    try:
        if not form.is_valid():
            raise ApplicationError(" ".join(m for found in form.errors.values() for m in found))
        active = form.cleaned_data["active"]
        watch = services.watch_update(by=request.user, watch=watch, values={"active": active})
    except ApplicationError as error:
        return _dashboard_again(request, watch, Forms(active=error.message), error.status)
    if watch.active:
        messages.success(request, f"“{watch.name}” is listening again.")
    else:
        messages.success(request, f"Paused “{watch.name}”: it reads nothing until resumed.")
    return redirect("listening-watch", watch_id=watch.pk)


@login_required
@require_POST
def watch_webhook(request, watch_id: int):
    """A lead points the watch's alerts at the agency's chat tool (a new signing secret, shown on
    the page this once), or removes the webhook (an empty address)."""
    watch = _get_watch(request, watch_id)
    form = WebhookForm(request.POST)
    typed = {"url": request.POST.get("url", "")}
    try:
        if not form.is_valid():
            raise ApplicationError("Wrong values.", {"fields": _form_errors(form)})
        secret = webhooks.watch_set_webhook(
            by=request.user, watch=watch, url=form.cleaned_data["url"]
        )
    except ApplicationError as error:
        sent = _sent(renamed(error, {"webhook_url": "url"}), typed, "The webhook was not saved")
        return _dashboard_again(request, watch, Forms(webhook=sent), error.status)
    if not secret:
        messages.success(
            request, "Removed the webhook: alerts reach the leads in the app and by e-mail."
        )
        return redirect("listening-watch", watch_id=watch.pk)
    # Answered here rather than redirected: the secret is never stored to be shown later.
    messages.success(request, f"Alerts of “{watch.name}” now go to {watch.webhook_url} too.")
    response = _dashboard_again(request, watch, Forms(webhook_secret=secret), 200)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def claim_new(request, watch_id: int):
    """A lead names a known false claim and the terms its posts use."""
    watch = _get_watch(request, watch_id)
    form = ClaimForm(request.POST)
    typed = {name: request.POST.get(name, "") for name in ("claim", "terms")}
    try:
        if not form.is_valid():
            raise ApplicationError("Wrong values.", {"fields": _form_errors(form)})
        services.claim_create(
            by=request.user,
            watch=watch,
            claim=form.cleaned_data["claim"],
            terms=form.cleaned_data["terms"],
        )
    except ApplicationError as error:
        sent = _sent(error, typed, "The claim was not added")
        return _dashboard_again(request, watch, Forms(claim=sent), error.status)
    messages.success(request, "Added the false claim: posts that repeat it are flagged from now.")
    return redirect("listening-watch", watch_id=watch.pk)


def _export_span(request) -> Span | HttpResponse:
    span, errors, _ = _span(request.GET)
    if span is None:
        problems = " ".join(m for found in errors.values() for m in found)
        return HttpResponse(problems, status=400, content_type="text/plain; charset=utf-8")
    return span


@login_required
@require_GET
def measures_csv(request, watch_id: int):
    watch = _get_watch(request, watch_id)
    span = _export_span(request)
    if isinstance(span, HttpResponse):
        return span
    rows = measures.series(watch, span.resolution, span.start, span.end)
    response = HttpResponse(exports.series_csv(rows), content_type="text/csv; charset=utf-8")
    name = f"watch-{watch.pk}-{span.resolution}-{span.start:%Y%m%dT%H%M}Z.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_GET
def measures_json(request, watch_id: int):
    watch = _get_watch(request, watch_id)
    span = _export_span(request)
    if isinstance(span, HttpResponse):
        return span
    rows = measures.series(watch, span.resolution, span.start, span.end)
    body = exports.series_json(
        rows,
        watch=watch.pk,
        name=watch.name,
        resolution=span.resolution,
        start=span.start,
        end=span.end,
    )
    return HttpResponse(body, content_type="application/json")


# An alert --------------------------------------------------------------------------------------
def _get_alert(request, alert_id: int) -> Alert:
    alert = selectors.alert_get(user=request.user, alert_id=alert_id)
    if alert is None:
        raise Http404
    return alert


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _number(value: object, spec: str = ",") -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return format(value, spec)


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _share(value: object) -> str:
    return _number(value, ".0%")


def evidence_words(alert: Alert) -> dict:
    """The alert's evidence as a person reads it: the figures in a sentence, the baseline, the
    top posts and authors."""
    evidence = alert.evidence if isinstance(alert.evidence, dict) else {}
    window = evidence.get("window") or {}
    start, end = _moment(window.get("start")), _moment(window.get("end"))
    span = f"from {when(start)} to {when(end)}" if start and end else "in its window"
    if alert.kind == AlertKind.SPIKE:
        figures = (
            f"{_number(evidence.get('observed'))} posts {span}, where about "
            f"{_number(evidence.get('expected'), ',.1f')} were expected from the baseline "
            f"({_number(evidence.get('ratio'), ',.1f')} times as many; the chance of as many "
            f"or more by luck alone: {_number(evidence.get('p_value'), '.2g')})."
        )
    elif alert.kind == AlertKind.SENTIMENT:
        figures = (
            f"{_number(evidence.get('negative'))} of the {_number(evidence.get('scored'))} "
            f"scored posts {span} are negative ({_share(evidence.get('negative_share'))}), "
            f"against {_share(evidence.get('baseline_negative_share'))} in the baseline."
        )
    else:
        claim = evidence.get("claim") or {}
        text = claim.get("text") or (alert.claim.claim if alert.claim else "")
        figures = (
            f"{_number(evidence.get('observed'))} posts {span} repeat the false claim “{text}”."
        )
    baseline = evidence.get("baseline") or {}
    base_start, base_end = _moment(baseline.get("start")), _moment(baseline.get("end"))
    if base_start and base_end:
        minutes = baseline.get("minutes")
        rate = (
            f", about {_number(baseline.get('volume', 0) / minutes, ',.2f')} a minute"
            if isinstance(minutes, int | float)
            and minutes
            and isinstance(baseline.get("volume"), int)
            else ""
        )
        base_words = (
            f"{_number(baseline.get('volume'))} posts from {when(base_start)} to "
            f"{when(base_end)}{rate}."
        )
    else:
        base_words = ""
    posts = []
    for post in evidence.get("top_posts") or []:
        if isinstance(post, dict):
            posts.append(
                {
                    "id": post.get("id") if _is_id(post.get("id")) else None,
                    "network_key": str(post.get("network") or ""),
                    "author": post.get("author") or "someone",
                    "network": network_name(str(post.get("network") or "")),
                    "text": post.get("text") or "",
                    "likes": _number(post.get("likes")),
                    "reposts": _number(post.get("reposts")),
                    "posted_at": _moment(post.get("posted_at")),
                    "url": _web_url(str(post.get("url") or "")),
                    "language": post.get("language") or "",
                }
            )
    authors = []
    for row in evidence.get("top_authors") or []:
        if isinstance(row, dict):
            network, _, handle = str(row.get("author_key", "")).partition(":")
            authors.append(
                {
                    "handle": handle or network,
                    "network": network_name(network),
                    "posts": _number(row.get("posts")),
                }
            )
    peak = alert.peak if isinstance(alert.peak, dict) else {}
    peak_at = _moment(peak.get("at"))
    return {
        "figures": figures,
        "baseline": base_words,
        "posts": posts,
        "authors": authors,
        "peak": (
            f"{_number(peak.get('observed'))} in the window ending {when(peak_at)}"
            if peak_at
            else ""
        ),
        "terms": (evidence.get("claim") or {}).get("terms") or [],
    }


@dataclass
class Drafts:
    """The alert page's drafting forms as they came back: the post ("post") or the reply to one
    of its posts ("reply", whose values name the post)."""

    post: Sent | None = None
    reply: Sent | None = None


def _answerable(hit: Hit | None, network: str, accounts: list) -> tuple[list, str]:
    """The accounts that may answer a post of the alert, and why there are none."""
    if hit is None:
        return [], "This post is no longer kept (purged after the watch’s retention)."
    post = hit.post
    found = [account for account in accounts if account.channel == network]
    if network == Channel.MASTODON:
        # A Mastodon post's id is the server's that read it: answered from that server.
        server = post.read_via.base_url.rstrip("/") if post.read_via else ""
        found = [a for a in found if server and a.base_url.rstrip("/") == server]
        if not found:
            return [], (
                f"None of the accounts you draft for is on {server or 'the server that read it'}"
                ", the Mastodon server that read this post."
            )
    if not found:
        return [], f"None of the accounts you draft for is on {network_name(network)}."
    return found, ""


def _drafting(request, alert: Alert, words: dict, drafts: Drafts) -> dict | None:
    """What the drafting forms offer to someone who drafts for the watch's team (None for anyone
    else): the team's approved responses, our accounts in the team and below that the person
    drafts to, and for each post of the alert the accounts that can answer it. Four queries,
    however many responses, accounts and posts."""
    watch = alert.watch
    if not can_draft_for_team(user=request.user, team=watch.team):
        return None
    offered = list(responses_for(team=watch.team).order_by("title", "pk"))
    accounts = list(
        drafting_accounts(user=request.user)
        .filter(team__path__startswith=watch.team.path)
        .order_by("channel", "handle", "pk")
    )
    ids = [post["id"] for post in words["posts"] if post["id"]]
    hits = {
        hit.post_id: hit
        for hit in Hit.objects.filter(watch=watch, post_id__in=ids).select_related("post__read_via")
    }
    reply = drafts.reply or Sent()
    replying_to = str(reply.values.get("post", "")).strip()
    shown = False
    for post in words["posts"]:
        sent = Sent()
        if post["id"] and str(post["id"]) == replying_to:
            sent, shown = reply, True
        choices, why_none = _answerable(hits.get(post["id"]), post["network_key"], accounts)
        post["reply"] = {
            "sent": sent,
            "accounts": choices,
            "why_none": why_none,
            "prefix": f"reply-{post['id']}",
        }
    chosen = (drafts.post.values.get("accounts") if drafts.post else None) or []
    return {
        "responses": offered,
        "accounts": [
            {"account": account, "checked": str(account.pk) in chosen} for account in accounts
        ],
        "post": drafts.post or Sent(),
        # A reply refused for a post the page does not list: its errors go above the posts.
        "reply_elsewhere": reply if reply.message and not shown else None,
        "tags": watch.topic_tags,
        "campaign": watch.topic_campaign,
    }


def _alert_context(
    request, alert: Alert, close_values: dict | None = None, drafts: Drafts | None = None
) -> dict:
    may_act = alerts.may_act(user=request.user, alert=alert)
    words = evidence_words(alert)
    return {
        "alert": alert,
        "watch": alert.watch,
        "words": words,
        "may_act": may_act,
        "may_acknowledge": may_act and alert.status == AlertStatus.OPEN,
        "may_close": may_act and alert.status != AlertStatus.CLOSED,
        "close": close_values or {},
        "drafting": _drafting(request, alert, words, drafts or Drafts()),
    }


@login_required
@require_GET
def alert_detail(request, alert_id: int):
    alert = _get_alert(request, alert_id)
    return render(request, "listening/alert.html", _alert_context(request, alert))


def _alert_refused(request, alert: Alert, error: ApplicationError, close_values=None):
    """A refusal (403 not a lead, 409 already acknowledged or closed) shown on the alert's page,
    as it is now, with the status."""
    messages.error(request, error.message)
    alert = _get_alert(request, alert.pk)
    context = _alert_context(request, alert, close_values)
    return render(request, "listening/alert.html", context, status=error.status)


def _alert_again(request, alert: Alert, drafts: Drafts, status: int):
    """A drafting form that came back with errors, beside its fields, with the status."""
    context = _alert_context(request, alert, drafts=drafts)
    return render(request, "listening/alert.html", context, status=status)


@login_required
@require_POST
def alert_draft(request, alert_id: int):
    """A drafter of the watch's team drafts a post in the words of an approved response, for
    the accounts chosen, marked with the watch's topic; its page is where it is submitted."""
    alert = _get_alert(request, alert_id)
    form = AlertDraftForm(request.POST)
    typed = {
        "response": request.POST.get("response", ""),
        "accounts": request.POST.getlist("accounts"),
    }
    try:
        if not form.is_valid():
            raise ApplicationError("Wrong values.", {"fields": _form_errors(form)})
        post = alerts.alert_draft_post(
            alert=alert,
            by=request.user,
            response_id=form.cleaned_data["response"],
            account_ids=form.cleaned_data["accounts"],
        )
    except NotAllowed as error:
        return _alert_refused(request, alert, error)
    except ApplicationError as error:
        sent = _sent(renamed(error, {"targets": "accounts"}), typed, "The post was not drafted")
        return _alert_again(request, alert, Drafts(post=sent), error.status)
    messages.success(
        request,
        "Drafted the post from the approved response. Read it over, then submit it for approval.",
    )
    return redirect("post-detail", post_id=post.pk)


@login_required
@require_POST
def alert_reply(request, alert_id: int):
    """A drafter of the watch's team drafts a reply to one of the alert's posts, from one of our
    accounts on its network, in the words of an approved response or their own."""
    alert = _get_alert(request, alert_id)
    form = AlertReplyForm(request.POST)
    typed = {name: request.POST.get(name, "") for name in ("post", "account", "response", "body")}
    try:
        if not form.is_valid():
            raise ApplicationError("Wrong values.", {"fields": _form_errors(form)})
        data = form.cleaned_data
        reply = alerts.alert_reply_create(
            alert=alert,
            by=request.user,
            post_id=data["post"],
            account_id=data["account"],
            response_id=data["response"],
            body=data["body"],
        )
    except NotAllowed as error:
        return _alert_refused(request, alert, error)
    except ApplicationError as error:
        names = {"targets": "account", "in_reply_to": "post"}
        sent = _sent(renamed(error, names), typed, "The reply was not drafted")
        return _alert_again(request, alert, Drafts(reply=sent), error.status)
    messages.success(
        request, "Drafted the reply. Read it over, then submit it for approval like any post."
    )
    return redirect("post-detail", post_id=reply.pk)


@login_required
@require_POST
def alert_acknowledge(request, alert_id: int):
    alert = _get_alert(request, alert_id)
    try:
        alerts.alert_acknowledge(alert=alert, by=request.user)
    except ApplicationError as error:
        return _alert_refused(request, alert, error)
    messages.success(request, "You acknowledged the alert: the other leads see you are on it.")
    return redirect("listening-alert", alert_id=alert.pk)


@login_required
@require_POST
def alert_freeze(request, alert_id: int):
    """A lead holds the team's scheduled posts on the watch's topic; the freeze is lifted on the
    freezes page like any other."""
    alert = _get_alert(request, alert_id)
    reason = request.POST.get("reason", "")[:1500]
    try:
        freeze = alerts.alert_freeze_topic(alert=alert, by=request.user, reason=reason)
    except ApplicationError as error:
        context = _alert_context(request, alert)
        context["freeze"] = {"reason": reason}
        messages.error(request, error.message)
        return render(request, "listening/alert.html", context, status=error.status)
    held = getattr(freeze, "held_count", 0)
    messages.success(
        request,
        f"Froze the posts on this topic: {held} scheduled post target{'s' if held != 1 else ''} "
        "held. Lift the freeze on the freezes page when it is over.",
    )
    return redirect("listening-alert", alert_id=alert.pk)


@login_required
@require_POST
def alert_close(request, alert_id: int):
    alert = _get_alert(request, alert_id)
    form = CloseForm(request.POST)
    typed = {"note": request.POST.get("note", "")}
    try:
        if not form.is_valid():
            raise ApplicationError(" ".join(m for found in form.errors.values() for m in found))
        alerts.alert_close(alert=alert, by=request.user, note=form.cleaned_data["note"])
    except ApplicationError as error:
        return _alert_refused(request, alert, error, typed)
    messages.success(request, "Closed the alert. A new surge raises a new one.")
    return redirect("listening-alert", alert_id=alert.pk)
