"""Exported audit checkpoints: the signed tree head an operator keeps off the host.

``bastion audit checkpoint --export FILE`` writes one; ``bastion audit verify
--against FILE`` later proves (RFC 9162 consistency proof) that the log still
extends it.  The format is a small JSON object::

    {"format": "bastion-audit-checkpoint/v1",
     "tree_size": 1234, "root_hash": "<hex>", "ts": "<ISO time>",
     "key_id": "audit#1a2b3c4d", "signature": "<hex Ed25519 over signed_bytes()>",
     "public_key": "<PEM of the audit key, for reference only>"}

The embedded public key is informational (it lets an off-host tool check the
signature); verification inside Bastion always uses the keyring's key named by
``key_id``, so a file cannot vouch for itself.

Example::

    Path("cp.json").write_text(export_text(log.checkpoint(), public_pem))
    cp = read_checkpoint_file(Path("cp.json"))
    assert log.prove_extends(cp).ok
"""

from __future__ import annotations

import json
from pathlib import Path

from bastion.core.audit.entries import Checkpoint
from bastion.core.errors import InputError

FORMAT = "bastion-audit-checkpoint/v1"


def export_text(cp: Checkpoint, public_pem: str | None = None) -> str:
    doc: dict[str, object] = {"format": FORMAT, **cp.to_dict()}
    if public_pem:
        doc["public_key"] = public_pem
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def read_checkpoint_file(path: Path) -> Checkpoint:
    """Parse an exported checkpoint; InputError if it is not one."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"no checkpoint file at {path}") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path} is not a readable checkpoint file: {e}") from e
    if not isinstance(doc, dict) or doc.get("format", FORMAT) != FORMAT:
        raise InputError(
            f"{path} is not a Bastion audit checkpoint",
            hint="export one with `bastion audit checkpoint --export FILE`",
        )
    try:
        size = doc["tree_size"]
        fields = [doc[k] for k in ("root_hash", "ts", "key_id", "signature")]
    except KeyError as e:
        raise InputError(f"{path} lacks the checkpoint field {e.args[0]!r}") from None
    if type(size) is not int or size < 0 or not all(isinstance(f, str) for f in fields):
        raise InputError(f"{path} has a malformed checkpoint (size or fields of the wrong type)")
    root_hash, ts, key_id, signature = (str(f) for f in fields)
    return Checkpoint(size, root_hash, ts, key_id, signature)


__all__ = ["FORMAT", "export_text", "read_checkpoint_file"]
