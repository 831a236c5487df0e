"""Comparing versions of a post, for the post page, the review page and the timeline."""

import difflib


def line_diff_lines(old: list[str], new: list[str]) -> list[tuple[str, str]]:
    """(kind, line) with kind "added", "removed" or "same"; difflib's hint lines left out."""
    rows = []
    for line in difflib.ndiff(old, new):
        kind = {"+ ": "added", "- ": "removed", "  ": "same"}.get(line[:2])
        if kind:
            rows.append((kind, line[2:]))
    return rows


def line_diff(old: str, new: str) -> list[tuple[str, str]]:
    """The line diff of two texts."""
    return line_diff_lines(old.splitlines(), new.splitlines())


def version_notes(old: dict, new: dict, handles: dict[int, str]) -> list[str]:
    """What changed besides the main text, between two content snapshots, in words."""
    notes = []
    if old.get("link") != new.get("link"):
        notes.append(f"Link: {old.get('link') or '(none)'} → {new.get('link') or '(none)'}")
    before = {t["social_account"]: t["body"] for t in old.get("targets", [])}
    after = {t["social_account"]: t["body"] for t in new.get("targets", [])}

    def name(pk: int) -> str:
        return handles.get(pk, f"account {pk}")

    added = [name(pk) for pk in after if pk not in before]
    removed = [name(pk) for pk in before if pk not in after]
    if added:
        notes.append("Accounts added: " + ", ".join(added))
    if removed:
        notes.append("Accounts removed: " + ", ".join(removed))
    for pk in after:
        if pk in before and before[pk] != after[pk]:
            notes.append(f"Own text for {name(pk)} changed")
    old_media = [(m["id"], m["alt_text"]) for m in old.get("media", [])]
    new_media = [(m["id"], m["alt_text"]) for m in new.get("media", [])]
    if old_media != new_media:
        notes.append(f"Images changed ({len(old_media)} before, {len(new_media)} now)")
    return notes
