"""The standalone verifier (audit/verifier.py) against real exports: it accepts an honest one, CSV
and JSON Lines, run as a separate process with no Django to import, and refuses each tampered one,
naming the problem. Its canonical form of an exported event is, byte for byte, the leaf the
sealer hashed."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from audit.checkpoint import NoteSigner, load_signing_key, sign_note_with
from audit.hashing import event_leaf
from audit.models import AuditEvent
from audit.services import record
from audit.verifier import NoteVerifier, export_event, read_csv, verify_export
from tests.settings import TEST_AUDIT_VERIFIER_KEY

from ..factories import UserFactory

URL = "/api/v1/audit/events/"
VERIFIER = Path(__file__).resolve().parents[2] / "audit" / "verifier.py"
KEYS = [NoteVerifier.from_vkey(TEST_AUDIT_VERIFIER_KEY)]


def export(user, fmt: str, **params) -> str:
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(URL, {"format": fmt, **params})
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


def check(text: str, **kwargs):
    return verify_export(text, KEYS, **kwargs)


def run_verifier(tmp_path, text: str, *args: str) -> subprocess.CompletedProcess:
    """The verifier as an auditor runs it, in a fresh `python -I` (no PYTHONPATH, no user site,
    not even the script's folder on the path) where importing Django or cxhub fails."""
    path = tmp_path / "export.txt"
    path.write_text(text, encoding="utf-8", newline="")
    blocker = (
        "import runpy, sys\n"
        "for name in ('django', 'cxhub', 'audit', 'rest_framework'):\n"
        "    sys.modules[name] = None  # any import of them raises ImportError\n"
        f"sys.argv = [{str(VERIFIER)!r}, *sys.argv[1:]]\n"
        f"runpy.run_path({str(VERIFIER)!r}, run_name='__main__')\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO")}
    return subprocess.run(
        [sys.executable, "-I", "-c", blocker, str(path), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )


def jsonl_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.split("\n") if line]


def jsonl_text(lines: list[dict]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


# Honest exports ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_verifier_accepts_an_honest_export_as_a_process_without_django(
    tmp_path, lead, trail, fmt
):
    text = export(lead, fmt)

    result = run_verifier(tmp_path, text, "--key", TEST_AUDIT_VERIFIER_KEY, "--expect", "6")

    assert result.returncode == 0, result.stderr
    [summary] = result.stdout.splitlines()
    assert summary.startswith("OK: 6 of 6 events verified: included in the tree of ")
    assert "signed by cxhub.test/audit+0ae2332e" in summary


def test_a_filtered_export_verifies_too(lead, org, trail):
    report = check(export(lead, "csv", team=org["south"].pk, action="post.*"))

    assert report.ok, report.problems
    assert report.events == report.proven > 0


def test_the_verifier_names_each_problem_and_exits_1(tmp_path, lead, trail):
    lines = jsonl_lines(export(lead, "jsonl"))
    lines[2]["actor_name"] = "mallory"
    lines[4]["data"] = {"body": "rewritten"}

    result = run_verifier(tmp_path, jsonl_text(lines), "--key", TEST_AUDIT_VERIFIER_KEY)

    assert result.returncode == 1
    assert result.stdout == ""
    problems = result.stderr.splitlines()
    assert problems[0].startswith("FAILED: 2 problems")
    assert problems[1].startswith(f"- line 3 (event seq {lines[2]['seq']}): not in the signed tree")
    assert problems[2].startswith(f"- line 5 (event seq {lines[4]['seq']}): not in the signed tree")


def test_the_verifier_reads_its_keys_strictly(tmp_path, lead, trail):
    result = run_verifier(tmp_path, export(lead, "jsonl"), "--key", "cxhub.test/audit+00+AAAA")

    assert result.returncode == 1
    assert "--key" in result.stderr


# The canonical form -----------------------------------------------------------------------------

DATA = [
    {},
    {"text": 'héllo ✓ 𝄞 \u2028 "quoted" \\ back\nslash'},
    {"nested": {"b": [1, {"z": None, "a": True}], "a": {"deep": {"deeper": ["x"]}}}},
    {"big": 2**70, "negative": -(2**65), "small": 1},
    {"float": 1e16, "tenth": 0.1, "third": 1 / 3, "huge": 1.5e300, "tiny": 5e-324, "zero": -0.0},
    {"list": [1.0, 2.5, "3", [], {}], "empty": "", "bool": False},
    {"=cmd": "=cmd|' /C calc'!A0", "'quote": "'already", "+": "-1"},
]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_verifiers_leaf_of_an_exported_event_is_the_sealers_byte_for_byte(org, fmt):
    operator = UserFactory(username="=root", is_superuser=True)
    with transaction.atomic():
        for n, data in enumerate(DATA):
            record(actor=operator if n % 2 else None, action="test.data", data=data)
        record(actor=operator, action="'test.quoted", team=org["north"], data={"n": 1})

    text = export(operator, fmt)

    report = check(text)
    assert report.ok, report.problems
    assert report.proven == len(DATA) + 1
    if fmt == "jsonl":
        records = jsonl_lines(text)[1:]
        events = [export_event(line, f"line {n}") for n, line in enumerate(records, start=2)]
    else:
        events = read_csv(text).events
    stored = {event.seq: event for event in AuditEvent.objects.all()}
    assert [event.leaf for event in events] == [event_leaf(stored[e.seq]) for e in events]


# Tampering --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_edited_field_in_one_event_is_named(lead, trail, fmt):
    text = export(lead, fmt)
    if fmt == "jsonl":
        lines = jsonl_lines(text)
        lines[3]["at"] = "2025-03-02T10:00:01Z"
        tampered, seq = jsonl_text(lines), lines[3]["seq"]
    else:
        rows = csv_rows(text)
        rows[3][rows[0].index("object_id")] = "999"
        tampered, seq = csv_text(rows), int(rows[3][0])

    report = check(tampered)

    assert len(report.problems) == 1
    place = "line 4" if fmt == "jsonl" else "row 4"
    assert report.problems[0].startswith(f"{place} (event seq {seq}): not in the signed tree")
    assert report.proven == 5


def test_a_removed_event_leaves_the_other_proofs_valid_and_only_a_count_can_tell(lead, trail):
    lines = jsonl_lines(export(lead, "jsonl"))
    del lines[2]
    tampered = jsonl_text(lines)

    # An export is a selection: alone it cannot prove that nothing was left out.
    assert check(tampered).ok
    report = check(tampered, expect=6)
    assert report.problems == ["5 events in the export, 6 expected"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_swapped_proofs_are_named_for_both_events(lead, trail, fmt):
    text = export(lead, fmt)
    if fmt == "jsonl":
        lines = jsonl_lines(text)
        lines[1]["inclusion_proof"], lines[2]["inclusion_proof"] = (
            lines[2]["inclusion_proof"],
            lines[1]["inclusion_proof"],
        )
        tampered = jsonl_text(lines)
    else:
        rows = csv_rows(text)
        column = rows[0].index("inclusion_proof")
        rows[1][column], rows[2][column] = rows[2][column], rows[1][column]
        tampered = csv_text(rows)

    report = check(tampered)

    unit = "line" if fmt == "jsonl" else "row"
    assert [problem.split(" (")[0] for problem in report.problems] == [f"{unit} 2", f"{unit} 3"]
    assert all("not in the signed tree" in problem for problem in report.problems)


def _resign(note: str, signer: NoteSigner, edit=lambda body: body) -> str:
    body = note[: note.rindex("\n\n") + 1]
    return sign_note_with(edit(body), [signer])


def _with_checkpoint(text: str, fmt: str, note: str) -> str:
    if fmt == "jsonl":
        lines = jsonl_lines(text)
        lines[0]["checkpoint"] = note
        return jsonl_text(lines)
    rows = csv_rows(text)
    rows[1][rows[0].index("checkpoint")] = note
    return csv_text(rows)


def _note(text: str, fmt: str) -> str:
    if fmt == "jsonl":
        return jsonl_lines(text)[0]["checkpoint"]
    rows = csv_rows(text)
    return rows[1][rows[0].index("checkpoint")]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_altered_checkpoint_fails_its_signature(lead, trail, fmt):
    text = export(lead, fmt)
    note = _note(text, fmt)
    origin, size, rest = note.split("\n", 2)
    altered = f"{origin}\n{int(size) - 1}\n{rest}"

    report = check(_with_checkpoint(text, fmt, altered))

    assert report.problems == [
        "the checkpoint does not check out: the signature by cxhub.test/audit+0ae2332e does not "
        "match the note's text"
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_checkpoint_signed_by_another_key_is_refused(lead, trail, fmt):
    text = export(lead, fmt)
    # The same name, another key: what someone holding the database but not the key could do.
    forged = _resign(_note(text, fmt), NoteSigner.generate("cxhub.test/audit"))

    report = check(_with_checkpoint(text, fmt, forged))

    assert report.problems == [
        "the checkpoint does not check out: the note is not signed by any of the keys given"
    ]


def test_a_checkpoint_of_another_log_is_refused(lead, trail):
    text = export(lead, "jsonl")
    other = _resign(
        _note(text, "jsonl"),
        load_signing_key(),
        lambda body: body.replace("cxhub.test/audit\n", "other.example/log\n", 1),
    )

    report = check(_with_checkpoint(text, "jsonl", other))

    assert report.problems == [
        "the checkpoint does not check out: the checkpoint is for 'other.example/log', not "
        "'cxhub.test/audit'"
    ]
    # And an honest export, checked for another origin than its own.
    assert check(text, origin="other.example/log").problems == [
        "the checkpoint does not check out: the checkpoint is for 'cxhub.test/audit', not "
        "'other.example/log'"
    ]


def test_events_newer_than_the_checkpoint_are_counted_as_unproven(lead, trail):
    lines = jsonl_lines(export(lead, "jsonl"))
    for line in lines[-2:]:
        line.update(leaf_index=None, tree_size=None, inclusion_proof=[])
    tampered = jsonl_text(lines)

    report = check(tampered)
    assert report.ok
    assert (report.proven, report.unproven) == (4, 2)
    seqs = f"{lines[-2]['seq']}, {lines[-1]['seq']}"
    assert report.summary().endswith(f"; 2 newer than the checkpoint, unproven (seq {seqs})")
    assert check(tampered, all_proven=True).problems == [
        "2 events carry no proof (newer than the checkpoint)"
    ]


def test_a_duplicated_event_and_a_missing_checkpoint_are_named(lead, trail):
    lines = jsonl_lines(export(lead, "jsonl"))

    duplicated = check(jsonl_text([*lines, lines[1]]))
    assert duplicated.problems == [
        f"line 8 (event seq {lines[1]['seq']}): leaf {lines[1]['leaf_index']} again (already on "
        "line 2)"
    ]
    lines[0]["checkpoint"] = None
    assert check(jsonl_text(lines)).problems == [
        "the export has proofs but no checkpoint to check them against"
    ]
    for line in lines[1:]:
        line.update(leaf_index=None, tree_size=None, inclusion_proof=[])
    assert check(jsonl_text(lines)).problems == [
        "the export carries no checkpoint: none of its 6 events is proven"
    ]
    assert check(jsonl_text(lines[:1])).summary() == "OK: the export holds no events"
    assert check("not an export\n").problems == [
        "line 1 is not the header of a cxhub audit export with proofs"
    ]
