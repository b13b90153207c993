"""Layer 4: governance — what decides whether a model may ship, and the evidence.

- ``card_spec``   the hand-written part of a model card (strict YAML -> ``CardSpec``)
- ``values``      card versions and the assembled ``ModelCard`` (typed, frozen)
- ``facts``       what Bastion knows and nobody may type: lineage, verified evaluations,
                  signer, scan result
- ``cards``       ``CardService``: edit (versioned, audited) and read a card
- ``render``      Markdown / HTML (user text escaped, never markup) / JSON
- ``mlbom``       the CycloneDX ML-BOM export, validated against the CycloneDX schema
- ``errors``      ``GovernanceError`` and its children
"""
