"""Bastion secures the whole life of a machine-learning model.

Map of the package (one sub-package per security layer over a shared kernel):

- ``bastion.core``            keyring and envelope encryption, metadata and blob
                              stores, principals/roles/``authorize``, the
                              tamper-evident audit log, lineage.
- ``bastion.data_security``   encrypted versioned datasets, ingestion audits,
                              quarantine of poisoned batches.
- ``bastion.model_security``  signed model versions, malicious-serialization
                              scanning, evaluation, drift monitors.
- ``bastion.workspace``       the composition root: ``Bastion.open(home)``.
- ``bastion.cli`` / ``bastion.api``  thin edges (the ``bastion`` command, REST).

Example::

    from bastion.workspace import Bastion
    bastion = Bastion.open("~/.bastion")
"""

__version__ = "0.1.0"
