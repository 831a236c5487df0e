"""Proofs for anyone: an event's inclusion proof against a signed checkpoint, a consistency proof
between two tree sizes, the proofs of a batch of exported events, and the check of a proof with
the standalone verifier's own functions (audit/verifier.py), as an auditor would run it.

Design note
-----------
* A proof is only worth something against a signed checkpoint, so every proof is made against
  one: ``covering_checkpoint`` seals what has committed (audit.sealer.seal, which signs when
  the tree grew) and signs a fresh checkpoint when the latest still does not cover the whole
  tree (one sealed earlier without signing). Without a signing key there is no checkpoint, and
  no proof.
* The keys an auditor is told to trust are the signing key's verifier key and the extra ones of
  CXHUB_AUDIT_VERIFIER_KEYS (old keys after a rotation). They travel with a proof for
  convenience only: an auditor checks against a key they got some other way.
* Hashes travel as standard base64, as in the checkpoint itself.
"""

import base64
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from cxhub.errors import ApplicationError

from . import merkle_store
from .hashing import event_leaf
from .models import AuditCheckpoint, AuditEvent, AuditLeaf
from .sealer import latest_checkpoint, locked_tree_head, seal, sign_checkpoint, signers, tree_head
from .verifier import (
    NoteError,
    NoteVerifier,
    leaf_hash,
    signed_checkpoint,
    verify_inclusion,
)


class NoCheckpoint(ApplicationError):
    """Nothing to prove against: no checkpoint can be signed (no signing key is set)."""

    status = 409

    def __init__(self) -> None:
        super().__init__(
            "The audit log has no signed checkpoint to prove against yet.",
            {"status": "unsigned"},
        )


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def verifier_keys() -> list[str]:
    """The verifier keys of the checkpoints: the signing key's, then CXHUB_AUDIT_VERIFIER_KEYS."""
    keys = [signer.vkey for signer in signers()]
    for key in settings.CXHUB_AUDIT_VERIFIER_KEYS:
        if key not in keys:
            keys.append(key)
    return keys


def covering_checkpoint() -> AuditCheckpoint | None:
    """A signed checkpoint of the whole tree, once every committed event is sealed into it;
    None without a signing key."""
    seal()
    latest = latest_checkpoint()
    size, _ = tree_head()
    if latest is None or latest.size < size:
        with transaction.atomic():
            latest = sign_checkpoint(locked_tree_head(), force=True) or latest_checkpoint()
    return latest


@dataclass(frozen=True)
class EventProof:
    event: AuditEvent
    leaf_index: int
    tree_size: int
    proof: list[bytes]
    leaf: bytes  # the canonical leaf data (audit.hashing.event_leaf)
    checkpoint: AuditCheckpoint

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.leaf)


def _leaf_index(event: AuditEvent) -> int | None:
    return AuditLeaf.objects.filter(event_id=event.seq).values_list("index", flat=True).first()


def event_proof(event: AuditEvent) -> EventProof | None:
    """The inclusion proof of ``event`` in the tree of the latest checkpoint, sealing and signing
    first when the event is not in a checkpoint yet; None when none can be signed (no key)."""
    index = _leaf_index(event)
    checkpoint = latest_checkpoint()
    if index is None or checkpoint is None or index >= checkpoint.size:
        checkpoint = covering_checkpoint()
        index = _leaf_index(event)
        if index is None or checkpoint is None or index >= checkpoint.size:
            return None
    return EventProof(
        event=event,
        leaf_index=index,
        tree_size=checkpoint.size,
        proof=merkle_store.inclusion_proof(index=index, size=checkpoint.size),
        leaf=event_leaf(event),
        checkpoint=checkpoint,
    )


def batch_proofs(leaf_indexes: list[int | None], size: int) -> dict[int, list[bytes]]:
    """The inclusion proofs, in the tree of ``size`` leaves, of those of ``leaf_indexes`` below
    ``size`` (the others are newer than the checkpoint, or not sealed: None), in one query."""
    return merkle_store.inclusion_proofs(
        indexes={index for index in leaf_indexes if index is not None and index < size}, size=size
    )


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    first_root: bytes
    second_root: bytes
    proof: list[bytes]
    checkpoint: AuditCheckpoint


def consistency(*, first: int, second: int, checkpoint: AuditCheckpoint) -> ConsistencyProof:
    """The proof that the tree of ``first`` leaves is a prefix of that of ``second``; the caller
    checked 0 <= first <= second <= checkpoint.size."""
    return ConsistencyProof(
        first=first,
        second=second,
        first_root=merkle_store.merkle_root(size=first),
        second_root=merkle_store.merkle_root(size=second),
        proof=merkle_store.consistency_proof(first=first, second=second),
        checkpoint=checkpoint,
    )


def check_event_proof(proof: EventProof) -> str:
    """Check ``proof`` as the standalone verifier does, against the keys of ``verifier_keys``:
    the checkpoint's signature and origin, then the leaf's path to its root. The sentence to
    show when it holds; NoteError or MerkleProofError (both ValueError) saying what fails."""
    verifiers = [NoteVerifier.from_vkey(key) for key in verifier_keys()]
    if not verifiers:
        raise NoteError("no verifier key is configured")
    checkpoint, signed_by = signed_checkpoint(
        proof.checkpoint.note, verifiers, origins=[key.name for key in verifiers]
    )
    verify_inclusion(
        leaf_hash(proof.leaf), proof.leaf_index, checkpoint.size, proof.proof, checkpoint.root
    )
    keys = ", ".join(f"{key.name}+{key.key_id.hex()}" for key in signed_by)
    events = "event" if checkpoint.size == 1 else "events"
    return f"verified: included in the tree of {checkpoint.size} {events} signed by {keys}"


def origin(checkpoint: AuditCheckpoint) -> str:
    return checkpoint.note.split("\n", 1)[0]


def checkpoint_document(checkpoint: AuditCheckpoint) -> dict:
    """A checkpoint as the API shows it."""
    return {
        "size": checkpoint.size,
        "root": b64(bytes(checkpoint.root)),
        "at": checkpoint.at,
        "origin": origin(checkpoint),
        "note": checkpoint.note,
        "verifier_keys": verifier_keys(),
    }


def proof_document(proof: EventProof, event: dict) -> dict:
    """An event's proof as the API shows it and the verify page downloads it; ``event`` is the
    event as the API shows it. audit/verifier.py checks this document as it is."""
    return {
        "seq": proof.event.seq,
        "leaf_index": proof.leaf_index,
        "tree_size": proof.tree_size,
        "inclusion_proof": [b64(value) for value in proof.proof],
        "leaf": proof.leaf.decode("utf-8"),
        "leaf_hash": b64(proof.leaf_hash),
        "checkpoint": proof.checkpoint.note,
        "origin": origin(proof.checkpoint),
        "verifier_keys": verifier_keys(),
        "event": event,
    }


def consistency_document(proof: ConsistencyProof) -> dict:
    return {
        "first": proof.first,
        "second": proof.second,
        "first_root": b64(proof.first_root),
        "second_root": b64(proof.second_root),
        "proof": [b64(value) for value in proof.proof],
        "checkpoint": proof.checkpoint.note,
        "verifier_keys": verifier_keys(),
    }
