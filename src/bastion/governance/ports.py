"""Ports of the governance layer."""

from __future__ import annotations

from typing import Protocol

from bastion.governance.values import CardVersion


class CardRepository(Protocol):
    def add_card(self, card: CardVersion) -> CardVersion:
        """Store the next card version (``card_version`` is assigned: latest + 1)."""

    def cards(self, project: str, model: str, version: int) -> list[CardVersion]:
        """Every card version of a model version, oldest first."""


__all__ = ["CardRepository"]
