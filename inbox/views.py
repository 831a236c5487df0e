"""The inbox pages: the list of the items of my accounts (filters, a keyset page at a time, bulk
actions), an item's panel (loaded into the list by static/cxhub/inbox.js, and a page of its own
at /inbox/<id>/) with its triage forms, and the two small reads of the live update.

Views parse the form, call one service and render. A service's ApplicationError comes back on
the page beside the field it names, with its status (400 bad input, 409 wrong state); an item
the person may not see is a 404. A request from inbox.js (`X-Requested-With: fetch`, or htmx's
`HX-Request`) is answered with an HTML fragment: the panel, the item's row and a one-line result
that the script puts in place; without the script every form posts and redirects as usual.
"""

import functools
from dataclasses import dataclass, field

from django.conf.locale import LANG_INFO
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from cxhub.errors import ApplicationError
from networks.selectors import social_accounts_for

from . import replies, selectors, services
from .analysis import DETECTABLE_LANGUAGES
from .forms import (
    UNKNOWN_LANGUAGE,
    AssignForm,
    BulkForm,
    InboxFilterForm,
    NoteForm,
    ReplyForm,
    StatusForm,
    TagForm,
)
from .models import ITEM_TRANSITIONS, InboundItem, ItemStatus

PAGE_SIZE = 50
# How often an open inbox page asks whether new items came (the browser tests make it shorter).
POLL_SECONDS = 10
FILTER_FIELDS = (
    "account",
    "network",
    "sentiment",
    "language",
    "status",
    "assignee",
    "has_post",
    "tag",
)
# Names of the detector's languages that Django's own list lacks.
_MORE_LANGUAGES = {
    "am": "Amharic",
    "ku": "Kurdish",
    "mt": "Maltese",
    "ps": "Pashto",
    "so": "Somali",
    "tl": "Tagalog",
    "zh": "Chinese",
}
# What the status buttons say, by the status they lead to (and the one they leave).
_STATUS_BUTTONS = {
    ItemStatus.OPEN: "Reopen",
    ItemStatus.WAITING: "Mark waiting",
    ItemStatus.CLOSED: "Close",
}
_STATUS_DONE = {
    ItemStatus.OPEN: "Reopened",
    ItemStatus.WAITING: "Marked waiting",
    ItemStatus.CLOSED: "Closed",
}
_MAX_ID = 2**63 - 1


def _is_fragment(request) -> bool:
    return (
        request.headers.get("X-Requested-With") == "fetch"
        or request.headers.get("HX-Request") == "true"
    )


def _vary(response: HttpResponse) -> HttpResponse:
    # The same address answers a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ["X-Requested-With", "HX-Request"])
    return response


def _id_param(params, name: str) -> int | None:
    value = params.get(name, "")
    if value.isascii() and value.isdecimal() and int(value) <= _MAX_ID:
        return int(value)
    return None


@functools.cache
def _languages() -> tuple[tuple[str, str], ...]:
    names = {code: LANG_INFO.get(code, {}).get("name") for code in DETECTABLE_LANGUAGES}
    names.update(_MORE_LANGUAGES)
    return tuple(sorted(((code, names[code] or code) for code in names), key=lambda p: p[1]))


def _language_name(code: str) -> str:
    if not code:
        return "Not known"
    return dict(_languages()).get(code) or LANG_INFO.get(code, {}).get("name") or code


def _duration(seconds: float | None) -> str:
    """A span as a person reads it: "45 s", "12 min", "3 h 5 min", "2 d 4 h"."""
    if seconds is None:
        return ""
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def _describe(item: InboundItem) -> str:
    """ "the reply from Amira K." — how results and labels name an item."""
    return f"the {item.get_kind_display().lower()} from {item.author_name or item.author_handle}"


def _decorate(items: list[InboundItem]) -> list[InboundItem]:
    for item in items:
        item.language_name = _language_name(item.language)
    return items


# The list --------------------------------------------------------------------------------------
class Scope:
    """What the filters and the bulk bar offer: the person's accounts and the people who may be
    given their items. Each is read when first asked for (one query each): the live update's
    poll, with no account or person in its filters, costs neither."""

    def __init__(self, user: User):
        self.user = user

    @functools.cached_property
    def accounts(self) -> list:
        return list(social_accounts_for(user=self.user).order_by("channel", "handle", "pk"))

    @functools.cached_property
    def people(self) -> list[User]:
        return list(selectors.inbox_people(user=self.user))

    def people_ids(self) -> set[int]:
        return {person.pk for person in self.people}


@dataclass
class Filtered:
    filters: selectors.ItemFilters | None
    errors: dict[str, list[str]]
    given: dict[str, str]

    @property
    def query(self) -> str:
        return urlencode([(name, value) for name, value in self.given.items() if value])


def _filtered(request, scope: Scope) -> Filtered:
    """The filters of the query string. An account that is not the person's is a 404, as any
    object outside their scope."""
    given = {name: request.GET.get(name, "").strip() for name in FILTER_FIELDS}
    form = InboxFilterForm(request.GET, me=request.user.pk, people=scope.people_ids)
    if not form.is_valid():
        errors = {name: list(found) for name, found in form.errors.items()}
        return Filtered(None, errors, given)
    account_id = form.cleaned_data["account"]
    if account_id is not None and all(account.pk != account_id for account in scope.accounts):
        raise Http404
    return Filtered(form.filters(), {}, given)


@dataclass
class Bulk:
    """The bulk bar as it was sent, when it comes back with an error."""

    error: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)
    checked: set[int] = field(default_factory=set)
    assignee: str = ""
    tag: str = ""

    @property
    def item_errors(self) -> str:
        """What is wrong with the choice of items or of action (shown under the bulk bar)."""
        return " ".join(
            message for name in ("items", "action") for message in self.errors.get(name, [])
        )

    @property
    def summary(self) -> list[tuple[str, str]]:
        """(the field's id, its messages) for the error summary's links. A list, not the dict:
        the template would read `errors.items` as the "items" field's errors."""
        anchors = {"tag": "bulk-tag", "assignee": "bulk-assignee"}
        return [
            (anchors.get(name, "bulk-items"), " ".join(found))
            for name, found in self.errors.items()
        ]


def _list_context(request, scope: Scope, filtered: Filtered, bulk: Bulk | None = None) -> dict:
    languages = list(_languages())
    chosen = filtered.given["language"].lower()
    if chosen and chosen != UNKNOWN_LANGUAGE and chosen not in dict(languages):
        languages.append((chosen, _language_name(chosen)))
    bulk = bulk or Bulk()
    context = {
        "accounts": scope.accounts,
        "people": scope.people,
        "languages": languages,
        "choices": {
            name: InboxFilterForm.base_fields[name].choices
            for name in ("network", "status", "sentiment", "has_post")
        },
        "given": filtered.given,
        "errors": filtered.errors,
        "filtered": any(filtered.given.values()),
        "query": filtered.query,
        "bulk": bulk,
        "checked": bulk.checked,
        "items": [],
        "poll_seconds": POLL_SECONDS,
    }
    if filtered.errors:
        return context
    before_id = _id_param(request.GET, "before")
    items = selectors.inbox_page(
        user=request.user, filters=filtered.filters, before_id=before_id, size=PAGE_SIZE
    )
    has_more = len(items) > PAGE_SIZE
    items = _decorate(items[:PAGE_SIZE])
    query = [(name, value) for name, value in filtered.given.items() if value]
    context.update(
        items=items,
        # The live update counts what came after the newest row, on the first page only.
        newest=(items[0].pk if items else 0) if before_id is None else None,
        older_url=f"?{urlencode([*query, ('before', items[-1].pk)])}" if has_more else None,
        newest_url=f"?{urlencode(query)}" if before_id is not None else None,
    )
    return context


@login_required
@require_GET
def inbox(request):
    scope = Scope(request.user)
    filtered = _filtered(request, scope)
    context = _list_context(request, scope, filtered)
    return render(request, "inbox/inbox.html", context, status=400 if filtered.errors else 200)


@login_required
@require_GET
def inbox_updates(request):
    """How many items came after `after` (with the page's filters): the live update's poll."""
    after = _id_param(request.GET, "after")
    scope = Scope(request.user)
    filtered = _filtered(request, scope)
    if after is None or filtered.errors:
        return HttpResponse("Give after= and valid filters.", status=400, content_type="text/plain")
    count = selectors.inbox_newer_count(
        user=request.user, after_id=after, filters=filtered.filters, limit=PAGE_SIZE
    )
    context = {"count": count, "more": count > PAGE_SIZE, "limit": PAGE_SIZE}
    return render(request, "inbox/_updates.html", context)


@login_required
@require_GET
def inbox_rows(request):
    """The rows of the items that came after `after`, newest first: what the live update puts on
    top of the list when the person asks for them."""
    after = _id_param(request.GET, "after")
    scope = Scope(request.user)
    filtered = _filtered(request, scope)
    if after is None or filtered.errors:
        return HttpResponse("Give after= and valid filters.", status=400, content_type="text/plain")
    items = selectors.inbox_newer(
        user=request.user, after_id=after, filters=filtered.filters, size=PAGE_SIZE
    )
    return render(request, "inbox/_rows.html", {"items": _decorate(items), "checked": set()})


@login_required
@require_POST
def inbox_bulk(request):
    """Assign, tag or close the checked items. The list's filters ride in the query string, so
    the answer comes back to the same list."""
    scope = Scope(request.user)
    form = BulkForm(request.POST)
    sent = Bulk(
        checked={pk for pk in map(_safe_int, request.POST.getlist("items")) if pk},
        assignee=request.POST.get("assignee", ""),
        tag=request.POST.get("tag", ""),
    )
    if not form.is_valid():
        sent.errors = {name: list(found) for name, found in form.errors.items()}
        sent.error = "Nothing was changed: " + " ".join(
            message for found in sent.errors.values() for message in found
        )
        return _list_again(request, scope, sent, status=400)
    data = form.cleaned_data
    ids, action = data["items"], data["action"]
    try:
        if action == "close":
            done = services.items_bulk_close(item_ids=ids, by=request.user)
            message = f"Closed {_count(done)}."
        elif action == "tag":
            done = services.items_bulk_tag(item_ids=ids, name=data["tag"], by=request.user)
            message = f"Tagged {_count(done)} “{services.tag_name(data['tag'])}”."
        else:
            assignee = _person(data["assignee"])
            done = services.items_bulk_assign(item_ids=ids, assignee=assignee, by=request.user)
            to = assignee or "nobody"
            message = f"Gave {_count(done)} to {to}."
    except services.ItemsNotFound:
        raise Http404 from None
    except ApplicationError as error:
        fields = error.extra.get("fields") if isinstance(error.extra, dict) else None
        names = {"name": "tag", "assignee": "assignee", "items": "items"}
        sent.errors = {
            names[name]: [str(m) for m in (found if isinstance(found, list) else [found])]
            for name, found in (fields or {}).items()
            if name in names
        }
        sent.error = f"Nothing was changed: {error.message}"
        return _list_again(request, scope, sent, status=error.status)
    messages.success(request, message)
    query = request.GET.urlencode()
    return redirect(f"{reverse('inbox')}?{query}" if query else reverse("inbox"))


def _safe_int(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isascii() and value.isdecimal() and len(value) < 19 else None


def _count(items: list) -> str:
    return f"{len(items)} item{'s' if len(items) != 1 else ''}"


def _person(person_id: int | None) -> User | None:
    if person_id is None:
        return None
    person = User.objects.filter(pk=person_id, is_active=True).first()
    if person is None:
        problem = "Choose someone from the list."
        raise ApplicationError(problem, {"fields": {"assignee": [problem]}})
    return person


def _list_again(request, scope: Scope, sent: Bulk, *, status: int):
    filtered = _filtered(request, scope)
    context = _list_context(request, scope, filtered, bulk=sent)
    return render(request, "inbox/inbox.html", context, status=status)


# An item: its panel and page ------------------------------------------------------------------
def _get_item(request, item_id: int) -> InboundItem:
    item = selectors.inbox_item_detail(user=request.user, item_id=item_id)
    if item is None:
        raise Http404
    return item


@dataclass
class Panel:
    """What came back from one of the panel's forms: the result, and each form's errors and
    values, keyed by form ("assign", "status", "tag", "note")."""

    result: str = ""
    failed: bool = False
    errors: dict[str, list[str]] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def _web_url(url: str) -> str:
    # Stored links are checked on the way in (services._web_url); checked again on the way out.
    return url if url.lower().startswith(("https://", "http://")) else ""


def _panel_context(request, item: InboundItem, panel: Panel | None = None) -> dict:
    people = list(selectors.item_assignees(account=item.account))
    _decorate([item])
    return {
        "item": item,
        "panel": panel or Panel(),
        "people": people,
        "may_take": any(person.pk == request.user.pk for person in people),
        "network": item.account.get_channel_display(),
        "network_url": _web_url(item.url),
        "thread": selectors.item_thread(user=request.user, item=item),
        "transitions": [
            (status, _STATUS_BUTTONS[status])
            for status in ItemStatus.values
            if status in ITEM_TRANSITIONS[item.status]
        ],
        "replies": selectors.item_replies(item=item),
        "response_time": _duration(item.response_seconds),
        "resolution_time": _duration(item.resolution_seconds),
        "describe": _describe(item),
    }


@login_required
@require_GET
def item_detail(request, item_id: int):
    item = _get_item(request, item_id)
    context = _panel_context(request, item)
    if _is_fragment(request):
        return _vary(render(request, "inbox/_panel.html", context))
    return _vary(render(request, "inbox/item.html", context))


def _answer(request, item_id: int, panel: Panel, status: int = 200):
    """After an action: the fragment for inbox.js, or (without it) the item's page again on an
    error and a redirect to it on success."""
    item = _get_item(request, item_id)
    if _is_fragment(request):
        context = _panel_context(request, item, panel)
        context["checked"] = set()
        return render(request, "inbox/_result.html", context, status=status)
    if not panel.failed:
        messages.success(request, panel.result)
        return redirect("inbox-item", item_id=item_id)
    context = _panel_context(request, item, panel)
    return render(request, "inbox/item.html", context, status=status)


def _act(request, item_id: int, form, name: str, act):
    """Run `act(item, cleaned_data) -> result` for the panel's form `name`; its errors go back
    beside that form's fields, with what was typed."""
    item = _get_item(request, item_id)
    # What was typed in the form's one field, to show it again beside its error.
    values = {name: request.POST.get(next(iter(form.fields)), "")}
    if not form.is_valid():
        errors = [message for found in form.errors.values() for message in found]
        panel = Panel(result=" ".join(errors), failed=True, errors={name: errors}, values=values)
        return _answer(request, item_id, panel, status=400)
    try:
        result = act(item, form.cleaned_data)
    except ApplicationError as error:
        panel = Panel(
            result=error.message, failed=True, errors={name: [error.message]}, values=values
        )
        return _answer(request, item_id, panel, status=error.status)
    return _answer(request, item_id, Panel(result=result))


@login_required
@require_POST
def item_assign(request, item_id: int):
    def act(item, data):
        assignee = _person(data["assignee"])
        services.item_assign(item=item, assignee=assignee, by=request.user)
        if assignee is None:
            return f"Gave {_describe(item)} to nobody."
        who = "you" if assignee.pk == request.user.pk else str(assignee)
        return f"Gave {_describe(item)} to {who}."

    return _act(request, item_id, AssignForm(request.POST), "assign", act)


@login_required
@require_POST
def item_status(request, item_id: int):
    def act(item, data):
        before = item.status
        item = services.item_set_status(item=item, status=data["status"], by=request.user)
        if item.status == before:
            return f"{_describe(item).capitalize()} is already {item.get_status_display().lower()}."
        return f"{_STATUS_DONE[item.status]} {_describe(item)}."

    return _act(request, item_id, StatusForm(request.POST), "status", act)


@login_required
@require_POST
def item_tag_add(request, item_id: int):
    def act(item, data):
        name = services.tag_name(data["name"])
        services.item_tag(item=item, name=name, by=request.user)
        return f"Tagged {_describe(item)} “{name}”."

    return _act(request, item_id, TagForm(request.POST), "tag", act)


@login_required
@require_POST
def item_tag_remove(request, item_id: int):
    def act(item, data):
        name = services.tag_name(data["name"])
        services.item_untag(item=item, name=name, by=request.user)
        return f"Took the tag “{name}” off {_describe(item)}."

    return _act(request, item_id, TagForm(request.POST), "untag", act)


@login_required
@require_POST
def item_note_add(request, item_id: int):
    def act(item, data):
        services.item_note_add(item=item, text=data["text"], by=request.user)
        return f"Added your note to {_describe(item)}."

    return _act(request, item_id, NoteForm(request.POST), "note", act)


@login_required
@require_POST
def item_reply(request, item_id: int):
    """Draft a reply (inbox/replies.py) and go to its post page, where it is checked, submitted
    for approval and followed like any post; an error comes back beside the reply's field."""
    item = _get_item(request, item_id)
    form = ReplyForm(request.POST)
    values = {"reply": request.POST.get("body", "")}
    try:
        if not form.is_valid():
            raise ApplicationError(" ".join(m for found in form.errors.values() for m in found))
        post = replies.item_reply_create(item=item, by=request.user, body=form.cleaned_data["body"])
    except ApplicationError as error:
        panel = Panel(
            result=error.message, failed=True, errors={"reply": [error.message]}, values=values
        )
        return _answer(request, item_id, panel, status=error.status)
    messages.success(
        request, f"Your reply to {_describe(item)} is a draft: check it and submit it for approval."
    )
    return redirect("post-detail", post_id=post.pk)
