"""Keys and encryption: keyring, envelope encryption, signing keys.

- ``interface``  the ``KeyManager`` port (local keyring now; KMS / Vault later)
- ``keyring``    the local keyring file: passphrase- or env-protected master key,
                 versioned key-encryption keys, wrapped signing keys
- ``envelope``   chunked AES-256-GCM streaming format for blobs

Example::

    ring = LocalKeyring.create(path, MasterKeySource.from_passphrase("s3cret"))
    wrapped = ring.wrap(os.urandom(32), b"context")
"""

from bastion.core.crypto.envelope import CHUNK_SIZE, StreamDecryptor, StreamEncryptor
from bastion.core.crypto.interface import KeyManager, SigningKeyInfo, WrappedKey
from bastion.core.crypto.keyring import LocalKeyring, MasterKeySource

__all__ = [
    "CHUNK_SIZE",
    "KeyManager",
    "LocalKeyring",
    "MasterKeySource",
    "SigningKeyInfo",
    "StreamDecryptor",
    "StreamEncryptor",
    "WrappedKey",
]
