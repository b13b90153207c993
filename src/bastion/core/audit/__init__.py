"""The tamper-evident audit log: hash chain, RFC 6962 Merkle tree, signed checkpoints."""
