"""Data contracts: what every batch of a dataset must look like.

- ``model``  — ``DataContract``, ``ColumnContract``; steward-editable JSON with validation
- ``infer``  — ``infer_contract(profile)`` proposes a contract from the first accepted version
- ``check``  — ``check_contract(df, contract) -> CheckResult`` names violating rows/columns

Example::

    from bastion.data_security.contract import DataContract, check_contract, infer_contract
    contract = infer_contract(profile_frame(first_version))
    contract = DataContract.from_json(contract.to_json())
    result = check_contract(next_batch, contract)
"""

from __future__ import annotations

from bastion.data_security.contract.check import check_contract
from bastion.data_security.contract.infer import InferenceOptions, infer_contract
from bastion.data_security.contract.model import (
    CONTRACT_FORMAT,
    ColumnContract,
    DataContract,
    parse_contract,
)

__all__ = [
    "CONTRACT_FORMAT",
    "ColumnContract",
    "DataContract",
    "InferenceOptions",
    "check_contract",
    "infer_contract",
    "parse_contract",
]
