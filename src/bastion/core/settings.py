"""Settings, read once at the edge (environment / CLI flags) and passed down frozen.

| variable              | meaning                                                  |
|-----------------------|----------------------------------------------------------|
| BASTION_HOME          | workspace folder (default ``~/.bastion``)               |
| BASTION_DATABASE_URL  | metadata DB (default SQLite in the workspace)            |
| BASTION_PASSPHRASE    | unlocks a passphrase-protected keyring                   |
| BASTION_MASTER_KEY    | base64 32-byte master key (keyring created in env mode)  |
| BASTION_TOKEN         | API token the CLI acts with (else the credentials file)  |
| BASTION_AUDIT_WITNESS | audit witness file, e.g. on another volume (overrides    |
|                       | ``audit_witness`` in workspace.json; docs/operations.md) |
| BASTION_API_*         | request limits of ``bastion serve`` (docs/security.md)   |
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bastion.core.crypto.keyring import MasterKeySource
from bastion.core.errors import KeyUnavailable

_MIB = 1024 * 1024
_GIB = 1024 * _MIB


class BastionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BASTION_", frozen=True, extra="ignore")

    home: Path = Path("~/.bastion")
    database_url: str | None = None
    passphrase: SecretStr | None = None
    master_key: SecretStr | None = None
    token: SecretStr | None = None
    #: the audit witness file (default: ``<home>/audit-head.json``, or what init recorded)
    audit_witness: Path | None = None

    # Request limits of the API server (bastion.api._limits.ApiLimits; docs/security.md).
    api_max_json_bytes: int = Field(default=1 * _MIB, ge=1024)
    api_max_upload_bytes: int = Field(default=2 * _GIB, ge=1024)
    api_max_model_bytes: int = Field(default=4 * _GIB, ge=1024)
    api_archive_max_bytes: int = Field(default=8 * _GIB, ge=1024)
    api_archive_max_members: int = Field(default=10_000, ge=1)
    api_archive_max_ratio: int = Field(default=100, ge=1)
    api_header_timeout: float = Field(default=10.0, gt=0)
    api_body_timeout: float = Field(default=30.0, gt=0)
    api_keep_alive: int = Field(default=5, ge=1)
    api_max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    api_max_connections: int = Field(default=512, ge=1)
    #: CIDRs of the proxies whose X-Forwarded-For / Forwarded is believed (api/_proxies.py)
    api_trusted_proxies: str = ""
    #: how long ``bastion serve`` trusts a verified token and a principal's role bindings
    #: without re-reading them (core/access/cache.py): the window in which a revocation
    #: made by another process is still honoured; 0 turns the cache off
    api_access_cache_seconds: float = Field(default=1.0, ge=0, le=60)

    # The prediction gateway (bastion.serving.gateway.GatewayOptions; docs/serving.md).
    serving_rate_principal: str = "50/second"  # per principal, every endpoint together
    serving_rate_endpoint: str = "500/second"  # per endpoint, every principal together
    serving_rate_storage: str = "memory://"  # redis://HOST:PORT shares limits across replicas
    serving_refresh_seconds: float = Field(default=1.0, gt=0)
    serving_verify_seconds: float = Field(default=60.0, gt=0)  # re-verify what serves
    serving_worker_memory_mib: int = Field(default=2048, ge=256)
    serving_request_timeout: float = Field(default=10.0, gt=0)
    #: what the adversarial-query detector does to a suspected principal (serving/adversarial.py)
    serving_adversarial: str = Field(default="throttle", pattern="^(flag|throttle|block)$")
    #: days the prediction log and decided canaries' samples are kept (serving/retention.py)
    serving_log_retention_days: int = Field(default=30, ge=1)

    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    def master_source(self) -> MasterKeySource:
        if self.master_key is not None:
            return MasterKeySource.from_env_key(self.master_key.get_secret_value())
        if self.passphrase is not None:
            return MasterKeySource.from_passphrase(self.passphrase.get_secret_value())
        raise KeyUnavailable(
            "no key material to unlock the keyring",
            hint="set BASTION_PASSPHRASE (or BASTION_MASTER_KEY for an env-keyed workspace)",
        )


__all__ = ["BastionSettings"]
