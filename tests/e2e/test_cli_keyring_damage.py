"""A damaged keyring is a clear ``key_unavailable`` error, exit code 4, never a traceback."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import CLI

Mutation = Callable[[dict[str, object]], None]


def _kek(doc: dict[str, object]) -> dict[str, object]:
    keks = doc["keks"]
    assert isinstance(keks, list)
    first = keks[0]
    assert isinstance(first, dict)
    return first


def _signing(doc: dict[str, object]) -> dict[str, object]:
    keys = doc["signing"]
    assert isinstance(keys, list)
    first = keys[0]
    assert isinstance(first, dict)
    return first


MUTATIONS: dict[str, Mutation] = {
    "kek_wrapped_truncated": lambda d: _kek(d).update(wrapped="AAAA"),
    "kek_wrapped_not_base64": lambda d: _kek(d).update(wrapped="!!not-base64"),
    "kek_version_not_a_number": lambda d: _kek(d).update(version="x"),
    "kek_status_missing": lambda d: _kek(d).pop("status"),
    "master_check_not_a_string": lambda d: d.update(master={"source": "env", "check": 5}),
    "signing_public_key_garbage": lambda d: _signing(d).update(public_pem="junk"),
    "signing_status_unknown": lambda d: _signing(d).update(status="weird"),
    "keks_not_a_list": lambda d: d.update(keks={"a": 1}),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[CLI, bytes]:
    import base64

    cli = CLI(tmp_path_factory.mktemp("kr") / "ws", base64.b64encode(os.urandom(32)).decode())
    assert cli.run("init").returncode == 0
    payload = cli.home.parent / "hello.txt"
    payload.write_text("hello")
    assert cli.run("store", "put", str(payload)).returncode == 0
    return cli, (cli.home / "keyring.json").read_bytes()


@pytest.mark.parametrize("damage", sorted(MUTATIONS))
def test_corrupted_keyring_entry_is_key_unavailable_exit_4(
    pristine: tuple[CLI, bytes], damage: str, tmp_path: Path
) -> None:
    cli, original = pristine
    path = cli.home / "keyring.json"
    doc = json.loads(original)
    MUTATIONS[damage](doc)
    path.write_text(json.dumps(doc))
    os.chmod(path, 0o600)
    try:
        # A read needs the KEK; a verification needs the signing keys' public halves.
        read = cli.run("store", "get", "hello.txt", "--output", str(tmp_path / "out.txt"))
        verify = cli.run("audit", "verify")
    finally:
        path.write_bytes(original)
        os.chmod(path, 0o600)
    # A damaged structure stops every command at open; a damaged sealed value
    # stops the commands that need it (the KEK for reads, public keys to verify).
    needs = {"kek_wrapped_truncated": (read,), "kek_wrapped_not_base64": (read,)}
    needs["signing_public_key_garbage"] = (verify,)
    for r in needs.get(damage, (read, verify)):
        assert "Traceback" not in r.output and "internal" not in r.output, r.output
        assert r.returncode == 4, r.output
        assert "key_unavailable" in r.stderr
    if read in needs.get(damage, (read,)):
        assert not (tmp_path / "out.txt").exists()
