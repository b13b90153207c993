"""SQL implementation of the card repository (table ``model_cards``, migration 0008)."""

from __future__ import annotations

import dataclasses
import json

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bastion.core.store._adapters.sql.engine import reading, transaction
from bastion.governance.card_spec import CardSpec
from bastion.governance.values import CardVersion

_md = sa.MetaData()
cards = sa.Table(
    "model_cards",
    _md,
    *(
        sa.Column(n, sa.String)
        for n in ("id", "project", "model", "spec", "spec_sha256", "created_at", "created_by")
    ),
    sa.Column("version", sa.Integer),
    sa.Column("card_version", sa.Integer),
)


def _card(r: sa.Row[tuple[object, ...]]) -> CardVersion:
    m = r._mapping
    return CardVersion(
        m["id"],
        m["project"],
        m["model"],
        int(m["version"]),
        int(m["card_version"]),
        CardSpec.model_validate_json(m["spec"], strict=False),
        m["spec_sha256"],
        m["created_at"],
        m["created_by"],
    )


class SqlCardRepository:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    def add_card(self, card: CardVersion) -> CardVersion:
        # Two concurrent edits both compute latest + 1: the unique constraint on
        # (project, model, version, card_version) refuses the second (Conflict).
        with transaction(self._e, "storing a model card") as c:
            latest = c.execute(
                sa.select(sa.func.max(cards.c.card_version)).where(
                    cards.c.project == card.project,
                    cards.c.model == card.model,
                    cards.c.version == card.version,
                )
            ).scalar()
            numbered = dataclasses.replace(card, card_version=int(latest or 0) + 1)
            c.execute(
                cards.insert().values(
                    id=numbered.id,
                    project=numbered.project,
                    model=numbered.model,
                    version=numbered.version,
                    card_version=numbered.card_version,
                    spec=json.dumps(numbered.spec.model_dump(mode="json"), sort_keys=True),
                    spec_sha256=numbered.spec_sha256,
                    created_at=numbered.created_at,
                    created_by=numbered.created_by,
                )
            )
        return numbered

    def cards(self, project: str, model: str, version: int) -> list[CardVersion]:
        with reading(self._e, "reading model cards") as c:
            rows = c.execute(
                sa.select(cards)
                .where(cards.c.project == project, cards.c.model == model,
                       cards.c.version == version)
                .order_by(cards.c.card_version)
            ).all()  # fmt: skip
        return [_card(r) for r in rows]


__all__ = ["SqlCardRepository"]
