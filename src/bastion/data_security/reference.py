"""The pinned trusted reference of a dataset, stored as one encrypted JSON bundle.

The bundle names (by digest) the merged profile of the accepted history at
the pin, the poisoning reference (trusted sample, label model inputs, history
hashes) and holds the bias baseline and the row counts of accepted versions.
Audits reuse it instead of rescanning the history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bastion.core.store.blobs import EncryptedBlobStore
from bastion.data_security.checks.bias_stats import BiasBaseline
from bastion.data_security.poisoning import PoisoningReference, RecentWindow
from bastion.data_security.profile.dataset import DatasetProfile


@dataclass(frozen=True)
class PinnedReference:
    pinned_version: int
    profile: DatasetProfile
    poisoning: PoisoningReference | None
    bias: BiasBaseline | None
    history_rows: tuple[int, ...]
    #: the versions the pin was built over (empty in pins written before erasure
    #: existed: then the accepted versions up to ``pinned_version``)
    versions: tuple[int, ...] = ()


def save_reference(blobs: EncryptedBlobStore, ref: PinnedReference) -> str:
    doc = {
        "v": 1,
        "pinned_version": ref.pinned_version,
        "profile": blobs.put_bytes(ref.profile.to_bytes()).digest,
        "poisoning": blobs.put_bytes(ref.poisoning.to_bytes()).digest if ref.poisoning else None,
        "bias": ref.bias.to_dict() if ref.bias else None,
        "history_rows": list(ref.history_rows),
        "versions": list(ref.versions),
    }
    return blobs.put_bytes(json.dumps(doc, sort_keys=True).encode()).digest


def load_reference(blobs: EncryptedBlobStore, digest: str) -> PinnedReference:
    doc = json.loads(blobs.read_bytes(digest))
    return PinnedReference(
        pinned_version=int(doc["pinned_version"]),
        profile=DatasetProfile.from_bytes(blobs.read_bytes(doc["profile"])),
        poisoning=PoisoningReference.from_bytes(blobs.read_bytes(doc["poisoning"]))
        if doc["poisoning"]
        else None,
        bias=BiasBaseline.from_dict(doc["bias"]) if doc["bias"] else None,
        history_rows=tuple(int(n) for n in doc["history_rows"]),
        versions=tuple(int(n) for n in doc.get("versions", ())),
    )


def reference_parts(blobs: EncryptedBlobStore, digest: str) -> tuple[str, ...]:
    """The digests a pin's bundle names (its profile and poisoning reference)."""
    doc = json.loads(blobs.read_bytes(digest))
    return tuple(str(doc[k]) for k in ("profile", "poisoning") if doc.get(k))


def save_recent(blobs: EncryptedBlobStore, recent: RecentWindow) -> str:
    return blobs.put_bytes(recent.to_bytes()).digest


def load_recent(blobs: EncryptedBlobStore, digest: str | None) -> RecentWindow | None:
    return RecentWindow.from_bytes(blobs.read_bytes(digest)) if digest else None


__all__ = [
    "PinnedReference",
    "load_recent",
    "load_reference",
    "reference_parts",
    "save_recent",
    "save_reference",
]
