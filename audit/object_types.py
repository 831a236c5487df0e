"""The names ("app_label.model") under which events were recorded for a kind of object before its
model moved to another app. The trail is never rewritten, so a look-up by either name finds the
object's whole history."""

# Former name → current name. The social accounts moved from accounts to networks (issue 14,
# networks/migrations/0001_initial.py).
RENAMED = {
    "accounts.socialaccount": "networks.socialaccount",
    "accounts.oauthapp": "networks.oauthapp",
}


def object_type_names(object_type: str) -> tuple[str, ...]:
    """Every name the events of `object_type`'s kind carry: the current one first, then the
    former ones (a name never renamed comes back alone)."""
    current = RENAMED.get(object_type, object_type)
    return (current, *sorted(old for old, new in RENAMED.items() if new == current))
