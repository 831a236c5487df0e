"""The notifications page: my notifications, newest first, unread ones marked in words, each
linking to what it is about; and "Mark all as read"."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from .models import Notification
from .notifications import notifications_mark_read

PAGE_SIZE = 50


def _local_url(url: str) -> str:
    """Only links inside the site (a path): a notification never sends anyone elsewhere."""
    return url if url.startswith("/") and not url.startswith(("//", "/\\")) else ""


@login_required
@require_http_methods(["GET", "POST"])
def notifications_page(request):
    user = request.user
    if request.method == "POST":
        marked = notifications_mark_read(user=user)
        if marked:
            messages.success(request, f"Marked {marked} notification{'s' * (marked != 1)} read.")
        else:
            messages.info(request, "Nothing was unread.")
        return redirect("notifications")
    before = request.GET.get("before", "")
    before_id = (
        int(before) if before.isascii() and before.isdecimal() and len(before) < 19 else None
    )
    # Keyset on the id (ids grow with time): no COUNT, no OFFSET, one query per page.
    rows = Notification.objects.filter(user=user).order_by("-id")
    if before_id is not None:
        rows = rows.filter(pk__lt=before_id)
    items = list(rows[: PAGE_SIZE + 1])
    has_more = len(items) > PAGE_SIZE
    items = items[:PAGE_SIZE]
    for item in items:
        item.link = _local_url(item.url)
    context = {
        "items": items,
        "older_url": f"?{urlencode({'before': items[-1].pk})}" if has_more else None,
        "paged": before_id is not None,
    }
    return render(request, "accounts/notifications.html", context)
