"""Stage a verified model version for a worker: the bytes that passed, and only them.

The registry materializes the stored files, verifies the signature, the signer and every
digest, and re-scans (``ModelRegistry.verified_checkout``); from that verified copy the one
pickled estimator is copied into the worker's own folder (read-only: files 0444, folder
0555, inside the workspace's private scratch area), and its SHA-256 is checked against
the signed manifest on the way.  That folder is all the sandbox mounts (at ``/model``).

Example::

    staged = stage_artifact(registry, "credit", "scorer@3", runtime / "d-1")
    staged.root_digest   # the signed root digest of exactly what is loaded
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from bastion.model_security.registry import ModelRegistry
from bastion.model_security.values import Framework, ModelVersion
from bastion.serving.errors import DeploymentRefused

_PICKLED = (Framework.SKLEARN, Framework.XGBOOST, Framework.LIGHTGBM)


@dataclass(frozen=True)
class StagedArtifact:
    version: ModelVersion
    folder: Path  # mounted read-only at /model
    model_file: str
    digest: str  # SHA-256 of the model file

    @property
    def root_digest(self) -> str:
        return self.version.root_digest


def stage_artifact(registry: ModelRegistry, project: str, ref: str, dest: Path) -> StagedArtifact:
    """Verify, re-scan and copy the version's estimator into ``dest/model`` (read-only)."""
    with registry.verified_checkout(project, ref) as (v, root):
        if v.framework not in _PICKLED:
            raise DeploymentRefused(
                f"{v.ref} is a {v.framework.value} model; the gateway serves pickled "
                "estimators (scikit-learn, XGBoost, LightGBM) for now")
        files = [f for f in v.manifest if f.path.endswith((".joblib", ".pkl"))]
        if len(files) != 1:
            raise DeploymentRefused(f"{v.ref} has {len(files)} joblib/pickle files; expected one")
        data = (root / files[0].path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != files[0].digest:
        raise DeploymentRefused(f"{files[0].path} changed between verification and staging")
    folder = dest / "model"
    folder.mkdir(parents=True)
    name = Path(files[0].path).name
    target = folder / name
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(target, 0o444)  # the worker runs as its own uid; it may read, never write
    os.chmod(folder, 0o555)  # noqa: S103 - read-only for the worker uid
    os.chmod(dest, 0o755)  # noqa: S103 - inside the 0700 scratch area, no other user gets here
    return StagedArtifact(v, folder, name, digest)


__all__ = ["StagedArtifact", "stage_artifact"]
