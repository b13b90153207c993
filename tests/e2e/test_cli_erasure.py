"""``bastion data erase`` end to end through the real command: the human report, the
erased version in ``data versions``, an erased export refused by name, refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest_data import (  # noqa: F401  (the fixtures register by import)
    DATASET,
    DataWS,
    data_cli_fixture,
    data_ws_fixture,
)


def run(cli: Any, data: DataWS, who: str, *args: str) -> Any:
    return cli.run(*args, token=data.tokens[who])


def test_cli_erase_report_versions_and_refusals(
    data_cli: Any, data_ws: DataWS, tmp_path: Path
) -> None:
    subject = str(data_ws.trusted.get_column("application_id")[17])
    where = f"application_id={subject}"
    reason = "DSR-2026-101 Art. 17"
    r = run(
        data_cli, data_ws, "eve", "data", "erase", DATASET, "--where", where, "--reason", reason
    )
    assert r.returncode != 0 and "dataset.erase" in r.output
    r = run(data_cli, data_ws, "dana", "data", "erase", DATASET, "--where", "nope=1",
            "--reason", reason)  # fmt: skip
    assert r.returncode != 0 and "application_id" in r.output and "no column" in r.output

    r = run(
        data_cli, data_ws, "dana", "data", "erase", DATASET, "--where", where, "--reason", reason
    )
    assert r.returncode == 0, r.output
    assert "(done)" in r.output and "hmac-sha256:" in r.output and "shredded:" in r.output
    assert "@1 [accepted] 1 of" in r.output and "no model was trained" in r.output
    assert where not in r.output

    r = run(data_cli, data_ws, "dana", "data", "versions", DATASET)
    assert r.returncode == 0 and "erased" in r.output
    r = run(data_cli, data_ws, "dana", "data", "export", f"{DATASET}@1", "-o",
            str(tmp_path / "x.csv"))  # fmt: skip
    assert r.returncode != 0 and "erased by erasure request" in r.output
    assert not (tmp_path / "x.csv").exists()
    r = run(data_cli, data_ws, "olga", "data", "erasures", DATASET)
    assert r.returncode == 0 and "hmac-sha256:" in r.output and where not in r.output
    r = run(
        data_cli, data_ws, "dana", "data", "erase", DATASET, "--where", where, "--reason", reason
    )
    assert r.returncode == 0 and "already done" in r.output
