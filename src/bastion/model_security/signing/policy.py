"""Signer policies: which verified signers a project accepts.

A valid signature only proves *some* trusted key signed; a policy decides
whether that signer may vouch for *this* project's artifacts.  Policies are
small values behind the :class:`SignerPolicy` Protocol and compose with
:class:`AllOf` / :class:`AnyOf`, like sigstore-python's ``verify/policy.py``.
There is deliberately no "accept any signer" policy.

Example::

    policy = AnyOf(
        Identity("project:credit/signer:v2"),
        IdentityPrefix("project:credit/release-bot:"),
    )
    policy.check(signer)   # SignerNotTrusted if refused
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bastion.core.errors import InputError
from bastion.model_security.errors import SignatureInvalid, SignerNotTrusted
from bastion.model_security.signing.types import VerifiedSigner


@runtime_checkable
class SignerPolicy(Protocol):
    """Decides whether a verified signer is allowed; raises SignerNotTrusted if not."""

    def check(self, signer: VerifiedSigner) -> None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Identity:
    """Allow exactly one signer identity."""

    identity: str

    def __post_init__(self) -> None:
        if not self.identity.strip():
            raise InputError("a policy identity must not be empty")

    def check(self, signer: VerifiedSigner) -> None:
        if signer.identity != self.identity:
            raise SignerNotTrusted(
                f"signer {signer.identity!r} (key {signer.key_id!r}) is not allowed: "
                f"expected {self.identity!r}",
                hint="the key is trusted, but its identity is not allowed for this project",
            )

    def describe(self) -> str:
        return f"identity == {self.identity!r}"


@dataclass(frozen=True)
class AllowedIdentities:
    """Allow any identity from a fixed set (the project's signers)."""

    identities: frozenset[str]

    @classmethod
    def of(cls, identities: Iterable[str]) -> AllowedIdentities:
        return cls(frozenset(identities))

    def __post_init__(self) -> None:
        if not self.identities or any(not i.strip() for i in self.identities):
            raise InputError("AllowedIdentities needs at least one non-empty identity")

    def check(self, signer: VerifiedSigner) -> None:
        if signer.identity not in self.identities:
            raise SignerNotTrusted(
                f"signer {signer.identity!r} (key {signer.key_id!r}) is not among the "
                f"allowed identities {sorted(self.identities)}",
            )

    def describe(self) -> str:
        return f"identity in {sorted(self.identities)}"


@dataclass(frozen=True)
class IdentityPrefix:
    """Allow identities under a namespace, e.g. ``"project:credit/"``."""

    prefix: str

    def __post_init__(self) -> None:
        # A too-short prefix ("" or "project:") would silently trust every project.
        if "/" not in self.prefix or not self.prefix.endswith(("/", ":")):
            raise InputError(
                f"identity prefix {self.prefix!r} must name a project namespace "
                "(contain '/' and end with '/' or ':')",
                hint='e.g. IdentityPrefix("project:credit/")',
            )

    def check(self, signer: VerifiedSigner) -> None:
        if not signer.identity.startswith(self.prefix):
            raise SignerNotTrusted(
                f"signer {signer.identity!r} is outside the allowed namespace {self.prefix!r}"
            )

    def describe(self) -> str:
        return f"identity starts with {self.prefix!r}"


@dataclass(frozen=True)
class KeyIds:
    """Allow only specific key ids (pin keys in addition to identities)."""

    key_ids: frozenset[str]

    def check(self, signer: VerifiedSigner) -> None:
        if signer.key_id not in self.key_ids:
            raise SignerNotTrusted(
                f"key {signer.key_id!r} is not among the pinned keys {sorted(self.key_ids)}"
            )

    def describe(self) -> str:
        return f"key id in {sorted(self.key_ids)}"


@dataclass(frozen=True, init=False)
class AllOf:
    """Every child policy must accept the signer (an empty AllOf is refused)."""

    children: tuple[SignerPolicy, ...]

    def __init__(self, *children: SignerPolicy) -> None:
        if not children:
            raise InputError("AllOf needs at least one policy")
        object.__setattr__(self, "children", children)

    def check(self, signer: VerifiedSigner) -> None:
        for child in self.children:
            child.check(signer)

    def describe(self) -> str:
        return "all of (" + "; ".join(c.describe() for c in self.children) + ")"


@dataclass(frozen=True, init=False)
class AnyOf:
    """At least one child policy must accept the signer."""

    children: tuple[SignerPolicy, ...]

    def __init__(self, *children: SignerPolicy) -> None:
        if not children:
            raise InputError("AnyOf needs at least one policy")
        object.__setattr__(self, "children", children)

    def check(self, signer: VerifiedSigner) -> None:
        reasons: list[str] = []
        for child in self.children:
            try:
                child.check(signer)
            except SignatureInvalid as e:
                reasons.append(e.message)
            else:
                return
        raise SignerNotTrusted(
            f"signer {signer.identity!r} matches none of the allowed policies: "
            + "; ".join(reasons)
        )

    def describe(self) -> str:
        return "any of (" + "; ".join(c.describe() for c in self.children) + ")"


def apply_policy(policy: SignerPolicy, signer: VerifiedSigner) -> None:
    """Run a policy, turning any unexpected error into a refusal (fail closed)."""
    try:
        policy.check(signer)
    except SignatureInvalid:
        raise
    except Exception as e:
        raise SignerNotTrusted(f"the signer policy failed while checking: {e}") from e


__all__ = [
    "AllOf",
    "AllowedIdentities",
    "AnyOf",
    "Identity",
    "IdentityPrefix",
    "KeyIds",
    "SignerPolicy",
    "apply_policy",
]
