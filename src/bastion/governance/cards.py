"""Model cards: written by the ML engineer (versioned, audited), completed by evidence.

``edit`` parses a strict YAML card (:mod:`bastion.governance.card_spec`), stores
it as the next card version of that model version (nothing is overwritten) and
audits the edit; a refused file is audited too and changes nothing.  ``card``
assembles the latest (or a chosen) card version with the facts Bastion knows
(:mod:`bastion.governance.facts`).  Every call is one ``authorize`` first, on
the requested name, before anything is looked up.

Example::

    cv = cards.edit(actor, "credit", "scorer@1", Path("card.yaml").read_text())
    card = cards.card(actor, "credit", "scorer@1")
    print(render_markdown(card))
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import Outcome
from bastion.core.canonical import canonical_json
from bastion.core.errors import NotFound
from bastion.governance.card_spec import CardSpec, parse_card_yaml
from bastion.governance.errors import CardInvalid
from bastion.governance.facts import Evidence, gather_facts, resolve_version
from bastion.governance.ports import CardRepository
from bastion.governance.values import CardVersion, ModelCard
from bastion.model_security.values import ModelRef, ModelVersion


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _resource(project: str, name: str) -> str:
    return f"project/{project}/model/{name}"


def spec_digest(spec: CardSpec) -> str:
    """SHA-256 of the card's canonical JSON: what an approval will bind to."""
    return hashlib.sha256(canonical_json(spec.model_dump(mode="json"))).hexdigest()


class CardService:
    def __init__(self, access: AccessService, repo: CardRepository, evidence: Evidence) -> None:
        self._access = access
        self._repo = repo
        self._evidence = evidence

    def edit(
        self, actor: Actor, project: str, ref: str, text: str, *, source: str = "card file"
    ) -> CardVersion:
        """Store ``text`` (card YAML) as the next card version of ``ref`` (MODEL@V)."""
        r = ModelRef.parse(ref)
        resource = _resource(project, r.name)
        self._access.authorize(actor, "card.edit", resource, details={"version": r.version})
        v = self._resolve(project, r, exact=True)
        try:
            spec = parse_card_yaml(text, source=source)
        except CardInvalid as e:
            self._access.record(
                actor, "card.refused", resource, Outcome.FAILED,
                {"version": v.version, "reason": e.message[:500]},
            )  # fmt: skip
            raise
        card = self._repo.add_card(
            CardVersion(
                uuid.uuid4().hex,
                project,
                v.name,
                v.version,
                0,
                spec,
                spec_digest(spec),
                _now(),
                actor.name,
            )
        )
        self._access.record(
            actor,
            "card.edited",
            resource,
            Outcome.OK,
            {
                "version": v.version,
                "card_version": card.card_version,
                "card_sha256": card.spec_sha256,
                "root_digest": v.root_digest,
            },
        )
        return card

    def card(
        self, actor: Actor, project: str, ref: str, *, card_version: int | None = None
    ) -> ModelCard:
        """The card of ``ref`` (latest version unless ``@V``): hand-written part plus facts."""
        r = ModelRef.parse(ref)
        self._access.authorize(actor, "card.read", _resource(project, r.name))
        v = self._resolve(project, r)
        history = self._repo.cards(project, v.name, v.version)
        chosen = history[-1] if history else None
        if card_version is not None:
            picked = [c for c in history if c.card_version == card_version]
            if not picked:
                raise NotFound(f"{v.ref} has no card version {card_version}")
            chosen = picked[0]
        return ModelCard(gather_facts(v, self._evidence), chosen)

    def history(self, actor: Actor, project: str, ref: str) -> list[CardVersion]:
        """Every card version of ``ref``, oldest first (who edited, when, digest)."""
        r = ModelRef.parse(ref)
        self._access.authorize(actor, "card.read", _resource(project, r.name))
        v = self._resolve(project, r)
        return self._repo.cards(project, v.name, v.version)

    def _resolve(self, project: str, r: ModelRef, *, exact: bool = False) -> ModelVersion:
        if r.version is None and exact:
            raise CardInvalid(
                f"say which version of {r.name} the card is for",
                hint=f"use {r.name}@VERSION: a card belongs to one model version",
            )
        return resolve_version(self._evidence.models, project, r)


__all__ = ["CardService", "spec_digest"]
