"""Erasure of a data subject (GDPR Art. 17): rewrite, crypto-shred, report.

- ``values``   the request, its refusals, the pseudonymous report
- ``rewrite``  the subject mask, re-serialized batches, scrubbed audit reports
- ``ports``    the erasure repository and the keyed pseudonym (keyring HMAC)
- ``service``  ``Erasures.erase``: the whole use case, atomic and idempotent
"""
