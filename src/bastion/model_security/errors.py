"""Errors of the model-security layer (all derive from ``BastionError``).

::

    ModelSecurityError
    ├── MaliciousArtifact     the scanner refused an artifact (or could not parse it)
    │   └── DisallowedGlobal  the restricted loader refused a global (nothing ran)
    ├── ScanPolicyInvalid     a scan-policy entry is malformed or never allowable (InputError)
    ├── FrameworkMismatch     declared framework differs from the content (InputError)
    ├── SignatureInvalid      signature / digest verification failed (a VerificationFailed)
    │   ├── SignerNotTrusted  unknown, revoked or rotated-out key, or identity not allowed
    │   └── ArtifactMismatch  files differ from the signed manifest (extra / missing / digest)
    ├── SigningUnavailable    a signing mode cannot run here (e.g. keyless without network)
    ├── EvaluationError       an evaluation could not run
    │   └── EvaluationInputInvalid  bad frame / label / constraints (also an InputError)
    ├── TrainingSpecInvalid   a training spec fails validation (also an InputError)
    └── TrainingFailed        fitting a model from a valid spec failed
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bastion.core.errors import BastionError, InputError, IntegrityError, VerificationFailed

if TYPE_CHECKING:
    from bastion.model_security.signing.types import Mismatch


class ModelSecurityError(BastionError):
    code = "model_security_error"


class MaliciousArtifact(ModelSecurityError, IntegrityError):
    """The artifact was refused by the scanner; scanner errors are refusals too."""

    code = "malicious_artifact"


class SignatureInvalid(ModelSecurityError, VerificationFailed):
    """A model's signature, signer identity or file digests do not verify."""

    code = "signature_invalid"


class SignerNotTrusted(SignatureInvalid):
    """The signature is by a key or identity the project's policy does not accept."""

    code = "signer_not_trusted"


class ArtifactMismatch(SignatureInvalid):
    """The model's files differ from the signed manifest.

    ``mismatches`` lists each difference (``kind``: extra / missing / digest and
    the file name); ``diagnostics()`` prints them one per line.
    """

    code = "artifact_mismatch"

    def __init__(
        self, message: str, *, mismatches: Sequence[Mismatch], hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.mismatches: tuple[Mismatch, ...] = tuple(mismatches)

    def diagnostics(self) -> str:
        lines = [self.message] + [f"  - {m.describe()}" for m in self.mismatches]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class SigningUnavailable(ModelSecurityError):
    """A signing mode cannot run in this environment (fail closed, nothing signed)."""

    code = "signing_unavailable"


class EvaluationError(ModelSecurityError):
    code = "evaluation_error"


class EvaluationInputInvalid(EvaluationError, InputError):
    """The frame, label, sensitive columns or constraints given to an evaluation are invalid."""

    code = "evaluation_input_invalid"


class TrainingSpecInvalid(ModelSecurityError, InputError):
    """A training spec does not parse or fails validation; the message names the field."""

    code = "training_spec_invalid"


class TrainingFailed(ModelSecurityError):
    """Fitting a model from a valid spec failed (e.g. a single class in the label)."""

    code = "training_failed"


__all__ = [
    "ArtifactMismatch",
    "EvaluationError",
    "EvaluationInputInvalid",
    "MaliciousArtifact",
    "ModelSecurityError",
    "SignatureInvalid",
    "SignerNotTrusted",
    "SigningUnavailable",
    "TrainingFailed",
    "TrainingSpecInvalid",
]


# -- drift and performance monitoring (monitoring/) --


class MonitoringInputInvalid(ModelSecurityError, InputError):
    """A frame, column, label vector or policy given to drift/decay monitoring is unusable."""

    code = "monitoring_input_invalid"


class DriftReferenceInvalid(ModelSecurityError, InputError):
    """Serialized drift-reference bytes are malformed, of an unknown version, or inconsistent."""

    code = "drift_reference_invalid"


__all__ += ["DriftReferenceInvalid", "MonitoringInputInvalid"]


# -- scanner policy and loading (scanning/) --


class ScanPolicyInvalid(ModelSecurityError, InputError):
    """A scan-policy entry that is malformed or can never be allowed (e.g. ``os.system``)."""

    code = "scan_policy_invalid"


class FrameworkMismatch(ModelSecurityError, InputError):
    """The declared ``--framework`` does not match what the artifact's content is."""

    code = "framework_mismatch"


class DisallowedGlobal(MaliciousArtifact):
    """The restricted loader refused a global the allow-list does not name (nothing ran)."""

    code = "disallowed_global"


__all__ += ["DisallowedGlobal", "FrameworkMismatch", "ScanPolicyInvalid"]
