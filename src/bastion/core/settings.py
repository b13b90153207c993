"""Settings, read once at the edge (environment / CLI flags) and passed down frozen.

| variable              | meaning                                                  |
|-----------------------|----------------------------------------------------------|
| BASTION_HOME          | workspace folder (default ``~/.bastion``)               |
| BASTION_DATABASE_URL  | metadata DB (default SQLite in the workspace)            |
| BASTION_PASSPHRASE    | unlocks a passphrase-protected keyring                   |
| BASTION_MASTER_KEY    | base64 32-byte master key (keyring created in env mode)  |
| BASTION_TOKEN         | API token the CLI acts with (else the credentials file)  |
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bastion.core.crypto.keyring import MasterKeySource
from bastion.core.errors import KeyUnavailable


class BastionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BASTION_", frozen=True, extra="ignore")

    home: Path = Path("~/.bastion")
    database_url: str | None = None
    passphrase: SecretStr | None = None
    master_key: SecretStr | None = None
    token: SecretStr | None = None

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
