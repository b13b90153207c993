"""Identity values: principals, tokens, role bindings, the acting principal."""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field
from typing import NewType

from bastion.core.canonical import JSON
from bastion.core.errors import InputError

PrincipalId = NewType("PrincipalId", str)
TokenId = NewType("TokenId", str)

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,99}$")
GLOBAL = "*"
#: the project every workspace starts with
DEFAULT_PROJECT = "default"


def check_name(kind: str, name: str) -> str:
    if not _NAME_RE.match(name):
        raise InputError(
            f"invalid {kind} name {name!r}",
            hint="use 1-100 lowercase letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit",
        )
    return name


class PrincipalKind(enum.StrEnum):
    USER = "user"
    SERVICE = "service"


@dataclass(frozen=True)
class Principal:
    id: PrincipalId
    name: str
    kind: PrincipalKind
    created_at: str
    disabled: bool = False

    def to_dict(self) -> dict[str, JSON]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind.value,
            "created_at": self.created_at,
            "disabled": self.disabled,
        }


@dataclass(frozen=True)
class TokenRecord:
    id: TokenId
    principal_id: PrincipalId
    salt: bytes
    hash: bytes
    description: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None
    #: the token that issued this one (None: bootstrap or issued before lineage)
    parent_id: TokenId | None = None

    def to_dict(self) -> dict[str, JSON]:
        return {
            "id": self.id,
            "parent_id": self.parent_id,
            "principal_id": self.principal_id,
            "description": self.description,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
        }


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued token: ``secret`` is shown once and never stored."""

    record: TokenRecord
    secret: str


@dataclass(frozen=True)
class RoleBinding:
    principal_id: PrincipalId
    principal_name: str
    role: str
    project: str
    created_at: str
    created_by: str

    def to_dict(self) -> dict[str, JSON]:
        return {
            "principal": self.principal_name,
            "role": self.role,
            "project": self.project,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class Project:
    name: str
    description: str
    created_at: str
    created_by: str

    def to_dict(self) -> dict[str, JSON]:
        return {
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class Actor:
    """The authenticated principal on whose behalf a service call runs."""

    principal_id: PrincipalId
    name: str
    token_id: TokenId | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def with_request(self, request_id: str) -> Actor:
        return Actor(self.principal_id, self.name, self.token_id, request_id)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    actor: str
    action: str
    resource: str
    reason: str
    audit_seq: int


def project_of(resource: str) -> str | None:
    """``project/<p>/...`` -> ``p``; system resources have no project."""
    parts = resource.split("/")
    if len(parts) >= 2 and parts[0] == "project" and parts[1]:
        return parts[1]
    return None


__all__ = [
    "DEFAULT_PROJECT",
    "GLOBAL",
    "Actor",
    "Decision",
    "IssuedToken",
    "Principal",
    "PrincipalId",
    "PrincipalKind",
    "Project",
    "RoleBinding",
    "TokenId",
    "TokenRecord",
    "check_name",
    "project_of",
]
