"""Identity and access: tokens, principals, role bindings and ``authorize``.

``authorize(actor, action, resource)`` is the single decision point: deny by
default, and every decision, allowed or denied, is appended to the audit log
before the caller proceeds.  Routes and commands never check permissions.

Example::

    actor = access.authenticate(token)
    access.authorize(actor, "dataset.read", "project/credit/dataset/loans")
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence

from bastion.core.access.auth_failures import FailedAuthentications
from bastion.core.access.cache import AccessCache, Subject, VerifiedToken
from bastion.core.access.ports import AccessRepository
from bastion.core.access.roles import PERMISSIONS, SELF_SERVICE, Role
from bastion.core.access.values import (
    GLOBAL,
    Actor,
    Decision,
    IssuedToken,
    Principal,
    PrincipalId,
    PrincipalKind,
    Project,
    RoleBinding,
    TokenId,
    TokenRecord,
    check_name,
    project_of,
)
from bastion.core.audit.entries import AuditRecord, Outcome
from bastion.core.audit.log import AuditLog
from bastion.core.canonical import JSON
from bastion.core.errors import (
    AccessDenied,
    AuthenticationFailed,
    BastionError,
    Conflict,
    InputError,
    NotFound,
    NotVisible,
)

TOKEN_PREFIX = "bst"  # noqa: S105 - a public prefix, not a secret
_TOUCH_EVERY = dt.timedelta(seconds=60)
_TOKEN_ID = re.compile(r"[0-9a-f]{16}")
#: system resources that name one thing (``system/principals/<name>``): hidden when denied
_NAMED_SYSTEM = frozenset({"principals", "tokens"})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds")


def _hash(salt: bytes, secret: str) -> bytes:
    # Tokens carry 256 bits of randomness, so a salted SHA-256 is the right
    # tool (as for GitHub or PyPI tokens); a slow KDF would only add latency.
    return hashlib.sha256(salt + secret.encode("ascii")).digest()


class AccessService:
    def __init__(self, repo: AccessRepository, audit: AuditLog,
                 cache: AccessCache | None = None) -> None:
        self._repo = repo
        self._audit = audit
        self._failures = FailedAuthentications(audit)
        #: verified tokens and bindings for at most ``cache.ttl`` s (core/access/cache.py);
        #: off unless given (``bastion serve`` turns it on for its hot path)
        self.cache = cache if cache is not None else AccessCache(ttl=0.0)

    # -- authentication ---------------------------------------------------------
    def authenticate(
        self, token: str | None, *, request_id: str | None = None, source: str = ""
    ) -> Actor:
        """Resolve a bearer token to an Actor or raise AuthenticationFailed.

        Every refusal is audited, aggregated per (reason, token id prefix,
        ``source``) and time window so a flood adds a bounded number of entries
        (:mod:`bastion.core.access.auth_failures`)."""
        rid = request_id or uuid.uuid4().hex

        def refuse(reason: str, message: str, tid: str = "", hint: str | None = None) -> Exception:
            self._failures.record(reason, tid, source)
            return AuthenticationFailed(message, hint=hint)

        if not token:
            raise refuse(
                "missing",
                "no API token was given",
                hint="set BASTION_TOKEN, or pass 'Authorization: Bearer <token>'",
            )
        if not token.isascii() or not token.isprintable():  # never hashed/queried: 401, not 500
            raise refuse("malformed", "the API token is malformed")
        parts = token.strip().split("_")
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
            raise refuse("malformed", "the API token is malformed")
        key = hashlib.sha256(token.encode("ascii")).digest()  # only this exact secret hits
        cached = self._cached(key, rid)
        if cached is not None:
            return cached
        generation = self.cache.generation  # a change from here on voids what we read
        record = self._repo.token(TokenId(parts[1]))
        # Compare against a dummy hash when the id is unknown, so timing does
        # not reveal which token ids exist.
        salt = record.salt if record else b"\x00" * 16
        expected = record.hash if record else b"\x00" * 32
        if not hmac.compare_digest(_hash(salt, parts[2]), expected) or record is None:
            raise refuse("unknown", "the API token is not valid")
        now = _now()
        if record.revoked_at is not None:
            raise refuse("revoked", "the API token has been revoked", record.id)
        if record.expires_at is not None and dt.datetime.fromisoformat(record.expires_at) <= now:
            raise refuse(
                "expired", "the API token has expired", record.id,
                hint="ask an admin for a new token",
            )
        principal = self._repo.principal_by_id(record.principal_id)
        if principal is None or principal.disabled:
            raise refuse("principal_disabled", "the token's principal is disabled", record.id)
        last = dt.datetime.fromisoformat(record.last_used_at) if record.last_used_at else None
        if last is None or now - last > _TOUCH_EVERY:
            self._repo.touch_token(record.id, _iso(now))
        expires = dt.datetime.fromisoformat(record.expires_at) if record.expires_at else None
        self.cache.put_token(
            key, VerifiedToken(principal.id, principal.name, record.id, expires), generation)
        return Actor(principal.id, principal.name, record.id, rid)

    def cached_actor(self, token: str | None, *, request_id: str) -> Actor | None:
        """The actor of ``token`` if it verified within the cache window, else None.

        No I/O and no audit entry: a miss says nothing (call ``authenticate``, which
        verifies, audits refusals and fills the cache); refusals are never cached."""
        if self.cache.ttl <= 0 or not token or not token.isascii():
            return None
        return self._cached(hashlib.sha256(token.encode("ascii")).digest(), request_id)

    def _cached(self, key: bytes, request_id: str) -> Actor | None:
        """The cached verified token under ``key``, unless it has expired since."""
        hit = self.cache.token(key)
        if hit is None or (hit.expires_at is not None and hit.expires_at <= _now()):
            return None
        return Actor(hit.principal_id, hit.name, hit.token_id, request_id)

    def flush_failed_authentications(self) -> None:
        """Audit the counts of repeated failures still pending (call at shutdown)."""
        self._failures.flush()

    # -- the decision point -----------------------------------------------------
    def authorize(
        self,
        actor: Actor,
        action: str,
        resource: str,
        *,
        details: Mapping[str, JSON] | None = None,
    ) -> Decision:
        """Allow or deny (default deny); audit either way; raise AccessDenied if denied."""
        outcome = self.authorize_many([(actor, action, resource, details)])[0]
        if isinstance(outcome, BastionError):
            raise outcome
        return outcome

    def authorize_many(
        self,
        asks: Sequence[tuple[Actor, str, str, Mapping[str, JSON] | None]],
        *,
        on_decided: Callable[[list[bool]], None] | None = None,
    ) -> list[Decision | BastionError]:
        """``authorize`` for several (actor, action, resource, details) at once.

        Each is decided alone and every decision is appended to the audit log in one
        durable group commit (``AuditLog.append_many``) before this returns; a refusal
        comes back as the error ``authorize`` would raise (the caller raises it).
        ``on_decided`` is told who is allowed once all are decided, *before* the commit:
        a caller may prepare its work meanwhile, but must release nothing until this
        returns (the decisions are durable only then)."""
        decided = [(ask, *self._decide(ask[0], ask[1], ask[2])) for ask in asks]
        if on_decided is not None:
            on_decided([allowed for _, allowed, _ in decided])
        entries = self._audit.append_many([
            AuditRecord(
                actor=actor.name,
                action=action,
                resource=resource,
                outcome=Outcome.ALLOWED if allowed else Outcome.DENIED,
                request_id=actor.request_id,
                details={"reason": reason, **(details or {})},
            )
            for (actor, action, resource, details), allowed, reason in decided
        ])
        out: list[Decision | BastionError] = []
        for ((actor, action, resource, _), allowed, reason), entry in zip(
            decided, entries, strict=True
        ):
            if allowed:
                out.append(Decision(True, actor.name, action, resource, reason, entry.seq))
            else:
                out.append(self._refusal(actor, action, resource, reason))
        return out

    def _refusal(self, actor: Actor, action: str, resource: str, reason: str) -> BastionError:
        if not self._sees(actor, resource):
            # The caller has no role where the resource lives: answer as for a missing
            # one, with a message that does not depend on whether it exists.
            return NotVisible(
                f"{resource} not found",
                hint="check the name and the project; access needs a role in that project",
            )
        return AccessDenied(
            f"{actor.name} may not {action} on {resource}",
            hint=f"{reason}; ask an admin for a role that grants {action!r}",
        )

    def record(
        self,
        actor: Actor,
        action: str,
        resource: str,
        outcome: Outcome,
        details: Mapping[str, JSON] | None = None,
    ) -> int:
        """Append an event (not a decision), e.g. the result of an allowed action."""
        return self._audit.append(
            AuditRecord(actor.name, action, resource, outcome, actor.request_id, details or {})
        ).seq

    def _sees(self, actor: Actor, resource: str) -> bool:
        """Whether ``actor`` may learn that ``resource`` exists.

        True for system-wide collections (the audit log, the key list: the route
        exists for everyone, so a 403 reveals nothing), for the caller's own
        principal, and where a binding of the caller covers the resource's project
        (global bindings cover all). A named resource in a project the caller has
        no role in, or another principal or token, is not visible.
        """
        parts = resource.split("/")
        named_system = parts[0] == "system" and len(parts) >= 3 and parts[1] in _NAMED_SYSTEM
        if parts[0] == "system" and not named_system:
            return True
        if parts[1:3] == ["principals", actor.name]:
            return True  # one's own principal: its tokens are self-service
        project = project_of(resource)
        return any(
            b.project == GLOBAL or (project is not None and b.project == project)
            for b in self._subject(actor.principal_id).bindings
        )

    def _subject(self, pid: PrincipalId) -> Subject:
        """The principal and its bindings as ``authorize`` decides on them (cached)."""
        hit = self.cache.subject(pid)
        if hit is not None:
            return hit
        generation = self.cache.generation
        found = Subject(self._repo.principal_by_id(pid), tuple(self._repo.bindings(pid)))
        self.cache.put_subject(pid, found, generation)
        return found

    def allowed_from_cache(self, actor: Actor, action: str, resource: str) -> bool | None:
        """Whether ``authorize`` would allow this now, from the access cache alone (no
        database read, so callable on an event loop); ``None`` when the cache does not
        hold the principal. Decides and records nothing: the caller still authorizes,
        and that audited decision is the one that counts."""
        subject = self.cache.subject(actor.principal_id)
        if subject is None:
            return None
        return self._decide(actor, action, resource, subject)[0]

    def _decide(self, actor: Actor, action: str, resource: str,
                subject: Subject | None = None) -> tuple[bool, str]:
        subject = subject or self._subject(actor.principal_id)
        principal = subject.principal
        if principal is None or principal.disabled:
            return False, "principal unknown or disabled"
        if action.startswith("role.") and action != "role.read":
            target = resource.rsplit("/", 1)[-1] if "/roles/" in resource else ""
            if target == principal.name:
                return False, "no principal may change its own role bindings"
        if action in SELF_SERVICE and resource == f"system/principals/{principal.name}":
            return True, "self-service on own tokens"
        project = project_of(resource)
        for b in subject.bindings:
            if b.project != GLOBAL and b.project != project:
                continue
            if action in PERMISSIONS.get(Role(b.role), frozenset()):
                return True, f"role {b.role} in {b.project}"
        return False, "no role binding grants this action"

    # -- principals ---------------------------------------------------------------
    def bootstrap_admin(self, name: str) -> tuple[Principal, IssuedToken]:
        """Create the first admin (only when no principal exists yet)."""
        if self._repo.principals():
            raise Conflict("the workspace already has principals; bootstrap runs once")
        principal = self._new_principal(name, PrincipalKind.USER, None)
        self._repo.add_binding(
            RoleBinding(principal.id, name, Role.ADMIN.value, GLOBAL, _iso(_now()), "bootstrap")
        )
        issued = self._issue(
            principal, "initial admin token", _iso(_now() + dt.timedelta(days=365))
        )
        self._audit.append(
            AuditRecord(
                name,
                "workspace.init",
                f"system/principals/{name}",
                Outcome.OK,
                uuid.uuid4().hex,
                {"role": "admin", "project": GLOBAL},
            )
        )
        return principal, issued

    def _new_principal(self, name: str, kind: PrincipalKind, by: str | None) -> Principal:
        check_name("principal", name)
        if self._repo.principal_by_name(name) is not None:
            raise Conflict(f"principal {name!r} already exists")
        p = Principal(PrincipalId(uuid.uuid4().hex), name, kind, _iso(_now()))
        self._repo.add_principal(p, by)
        return p

    def create_principal(self, actor: Actor, name: str, kind: PrincipalKind) -> Principal:
        self.authorize(actor, "principal.create", f"system/principals/{name}")
        return self._new_principal(name, kind, actor.principal_id)

    def principals(self, actor: Actor) -> list[Principal]:
        self.authorize(actor, "principal.read", "system/principals")
        return self._repo.principals()

    def disable_principal(self, actor: Actor, name: str) -> Principal:
        self.authorize(actor, "principal.disable", f"system/principals/{name}")
        target = self._principal(name)
        if target.id == actor.principal_id:
            raise InputError("you cannot disable yourself")
        self._repo.set_disabled(target.id, True)
        self.cache.invalidate()
        return self._principal(name)

    def _principal(self, name: str) -> Principal:
        p = self._repo.principal_by_name(name)
        if p is None:
            raise NotFound(f"no principal named {name!r}", hint="list them: bastion users list")
        return p

    def whoami(self, actor: Actor) -> tuple[Principal, list[RoleBinding]]:
        return self._principal(actor.name), self._repo.bindings(actor.principal_id)

    # -- tokens -------------------------------------------------------------------
    def create_token(
        self,
        actor: Actor,
        principal_name: str,
        *,
        description: str = "",
        expires_in: dt.timedelta | None = dt.timedelta(days=90),
    ) -> IssuedToken:
        """Issue a token; its lineage (the token ``actor`` used) is recorded.

        A token issued for oneself expires no later than the token that issued
        it, so a leaked short-lived token cannot mint a long-lived one; a token
        that never expires needs ``token.create_unexpiring`` (admins only).
        Revoking a token revokes every token issued under it.
        """
        self.authorize(actor, "token.create", f"system/principals/{principal_name}")
        if expires_in is not None and expires_in <= dt.timedelta(0):
            raise InputError("token lifetime must be positive")
        if expires_in is None:
            self.authorize(actor, "token.create_unexpiring", f"system/principals/{principal_name}")
        target = self._principal(principal_name)
        parent = self._repo.token(actor.token_id) if actor.token_id else None
        expires = _now() + expires_in if expires_in else None
        if parent is not None and parent.expires_at is not None and target.id == actor.principal_id:
            ceiling = dt.datetime.fromisoformat(parent.expires_at)
            expires = min(expires, ceiling) if expires else ceiling
        return self._issue(
            target, description, _iso(expires) if expires else None, parent.id if parent else None
        )

    def _issue(
        self,
        principal: Principal,
        description: str,
        expires_at: str | None,
        parent: TokenId | None = None,
    ) -> IssuedToken:
        tid = TokenId(secrets.token_hex(8))
        secret = secrets.token_urlsafe(32).replace("_", "-")
        salt = secrets.token_bytes(16)
        record = TokenRecord(
            tid,
            principal.id,
            salt,
            _hash(salt, secret),
            description[:200],
            _iso(_now()),
            expires_at,
            None,
            None,
            parent,
        )
        if not self._repo.add_token(record):
            raise AuthenticationFailed("the API token that issues this one has been revoked")
        return IssuedToken(record, f"{TOKEN_PREFIX}_{tid}_{secret}")

    def tokens(self, actor: Actor, principal_name: str) -> list[TokenRecord]:
        self.authorize(actor, "token.read", f"system/principals/{principal_name}")
        return self._repo.tokens_of(self._principal(principal_name).id)

    def revoke_token(self, actor: Actor, token_id: str) -> TokenRecord:
        """Revoke a token and, with it, every token issued under it (each audited)."""
        record = self._repo.token(TokenId(token_id)) if _TOKEN_ID.fullmatch(token_id) else None
        owner = self._repo.principal_by_id(record.principal_id) if record else None
        # Authorize on the owner before revealing anything: someone else's token
        # and a token that does not exist both read "no token" to a non-owner.
        try:
            self.authorize(
                actor, "token.revoke", f"system/principals/{owner.name if owner else '?'}"
            )
        except AccessDenied as e:
            raise NotFound(f"no token {token_id!r}") from e
        if record is None:
            raise NotFound(f"no token {token_id!r}")
        revoked_ids = self._repo.revoke_token(record.id, _iso(_now()))
        self.cache.invalidate()  # this process refuses it at once; others within cache.ttl
        for tid in revoked_ids:
            if tid != record.id:
                self.record(
                    actor,
                    "token.revoked",
                    f"system/tokens/{tid}",
                    Outcome.OK,
                    {"reason": "the token that issued it was revoked", "parent": record.id},
                )
        revoked = self._repo.token(record.id)
        assert revoked is not None
        return revoked

    # -- roles and projects ---------------------------------------------------------
    def bind(self, actor: Actor, principal_name: str, role: str, project: str) -> RoleBinding:
        # Authorize on the names first: a caller without the right learns nothing
        # about which principals and projects exist (and the attempt is audited).
        role_value = _role(role)
        self.authorize(
            actor,
            "role.bind",
            _roles_resource(project, principal_name),
            details={"role": role_value, "project": project},
        )
        self._scope(project)
        target = self._principal(principal_name)
        binding = RoleBinding(target.id, target.name, role_value, project, _iso(_now()), actor.name)
        if not self._repo.add_binding(binding):
            raise Conflict(f"{principal_name} already has role {role_value} in {project}")
        self.cache.invalidate()
        return binding

    def unbind(self, actor: Actor, principal_name: str, role: str, project: str) -> None:
        self.authorize(
            actor,
            "role.unbind",
            _roles_resource(project, principal_name),
            details={"role": role, "project": project},
        )
        self._scope(project)
        target = self._principal(principal_name)
        if not self._repo.remove_binding(target.id, _role(role), project):
            raise NotFound(f"{principal_name} has no role {role} in {project}")
        self.cache.invalidate()

    def _scope(self, project: str) -> str:
        if project == GLOBAL:
            return "system"
        if self._repo.project(project) is None:
            raise NotFound(f"no project {project!r}", hint="create it: bastion projects create")
        return f"project/{project}"

    def bindings(self, actor: Actor, principal_name: str | None = None) -> list[RoleBinding]:
        self.authorize(actor, "role.read", "system/roles")
        pid = self._principal(principal_name).id if principal_name else None
        return self._repo.bindings(pid)

    def create_project(self, actor: Actor, name: str, description: str = "") -> Project:
        check_name("project", name)
        self.authorize(actor, "project.create", f"project/{name}")
        project = Project(name, description[:500], _iso(_now()), actor.name)
        if not self._repo.add_project(project):
            raise Conflict(f"project {name!r} already exists")
        return project

    def ensure_project(self, name: str, by: str) -> Project:
        """Create a project without a decision (workspace bootstrap only)."""
        check_name("project", name)
        project = Project(name, "", _iso(_now()), by)
        self._repo.add_project(project)
        found = self._repo.project(name)
        assert found is not None
        return found

    def projects(self, actor: Actor) -> list[Project]:
        """Every project for a workspace-wide role; a project-bound role sees its own."""
        bound = {b.project for b in self._repo.bindings(actor.principal_id)}
        if GLOBAL in bound or not bound:
            self.authorize(actor, "project.read", "system/projects")
            return self._repo.projects()
        visible: list[Project] = []
        for project in self._repo.projects():
            if project.name not in bound:
                continue
            try:
                self.authorize(actor, "project.read", f"project/{project.name}")
            except AccessDenied:
                continue
            visible.append(project)
        return visible

    def require_project(self, name: str) -> Project:
        project = self._repo.project(name)
        if project is None:
            raise NotFound(f"no project {name!r}", hint="create it: bastion projects create NAME")
        return project


def _roles_resource(project: str, principal_name: str) -> str:
    scope = "system" if project == GLOBAL else f"project/{project}"
    return f"{scope}/roles/{principal_name}"


def _role(role: str) -> str:
    try:
        return Role(role).value
    except ValueError:
        raise InputError(
            f"unknown role {role!r}", hint="roles: " + ", ".join(r.value for r in Role)
        ) from None


__all__ = ["TOKEN_PREFIX", "AccessService"]
