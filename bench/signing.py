"""Benchmark: Bastion model signing vs the upstream OpenSSF ``model_signing``.

Signs and verifies the same 1 GiB model (a folder of a few large files) with
Bastion's API, the upstream Python API and the upstream CLI, side by side in
one run, and writes docs/bench/signing.md.

    .venv/bin/python bench/signing.py [--size-mib 1024] [--files 4] [--repeat 3]

The upstream CLI is taken from the venv (``model_signing`` next to the Python
running this script) or from ``MODEL_SIGNING_CLI``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from collect import results_block
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import hashing as ms_hashing
from model_signing import signing as ms_signing
from model_signing import verifying as ms_verifying

from bastion.model_security.signing import (
    Identity,
    SignerIdentity,
    TrustedKey,
    open_verified,
    sign_model,
    verify_model,
)

ID = "project:bench/signer:v1"
OUT = Path(__file__).resolve().parents[1] / "docs" / "bench" / "signing.md"


def _time(fn: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def _make_model(root: Path, size_mib: int, files: int) -> Path:
    model = root / "model"
    model.mkdir()
    per_file = size_mib * (1 << 20) // files
    block = os.urandom(1 << 20)
    for i in range(files):
        with open(model / f"shard-{i:02d}.safetensors", "wb") as f:
            for j in range(per_file >> 20):
                f.write(block[j % 7 :] + block[: j % 7])  # distinct 1 MiB blocks
    (model / "config.json").write_text('{"arch": "bench"}')
    return model


def _machine() -> str:
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    return (
        f"- `uname -a`: {' '.join(platform.uname())}\n"
        f"- cores: {os.cpu_count()}, memory: {mem}\n"
        f"- python: {sys.version.split()[0]}, model_signing 1.1.1\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cli = Path(os.environ.get("MODEL_SIGNING_CLI", Path(sys.executable).with_name("model_signing")))
    if not cli.exists():
        sys.exit(f"upstream CLI not found at {cli}; set MODEL_SIGNING_CLI")

    key = ec.generate_private_key(ec.SECP256R1())
    priv = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    pub = key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    trusted = [TrustedKey("k1", pub, ID)]
    policy = Identity(ID)

    with tempfile.TemporaryDirectory(prefix="bastion-bench-") as tmp_s:
        tmp = Path(tmp_s)
        print(f"generating {args.size_mib} MiB model in {args.files} files ...", flush=True)
        model = _make_model(tmp, args.size_mib, args.files)
        (tmp / "key.pem").write_bytes(priv)
        (tmp / "key.pub").write_bytes(pub)
        b_sig, u_sig, c_sig = tmp / "bastion.sig", tmp / "api.sig", tmp / "cli.sig"

        def bastion_sign() -> None:
            b_sig.write_bytes(sign_model(model, priv, signer=SignerIdentity("k1", ID)).bundle)

        def api_sign() -> None:
            ms_signing.Config().use_elliptic_key_signer(
                private_key=tmp / "key.pem"
            ).set_hashing_config(
                ms_hashing.Config().set_ignored_paths(paths=[], ignore_git_paths=False)
            ).sign(model, u_sig)

        def cli_sign() -> None:
            subprocess.run(
                [cli, "sign", "key", model, "--signature", c_sig, "--private_key", tmp / "key.pem"],
                check=True,
                capture_output=True,
            )

        def bastion_verify() -> None:
            verify_model(model, b_sig.read_bytes(), trusted_keys=trusted, policy=policy)

        def api_verify() -> None:
            ms_verifying.Config().use_elliptic_key_verifier(public_key=tmp / "key.pub").verify(
                model, u_sig
            )

        def cli_verify() -> None:
            subprocess.run(
                [
                    cli,
                    "verify",
                    "key",
                    model,
                    "--signature",
                    c_sig,
                    "--public_key",
                    tmp / "key.pub",
                ],
                check=True,
                capture_output=True,
            )

        def snapshot_into(workdir: Path) -> Callable[[], None]:
            def run() -> None:
                with open_verified(
                    model, b_sig.read_bytes(), trusted_keys=trusted, policy=policy, workdir=workdir
                ):
                    pass

            return run

        shm = Path("/dev/shm")

        os.sync()  # flush the generated model so disk writeback does not skew early runs
        _time(bastion_sign, 1)  # warm the page cache so every contender reads from memory
        contenders: list[tuple[str, Callable[[], object]]] = [
            ("sign: Bastion sign_model", bastion_sign),
            ("sign: upstream API", api_sign),
            ("sign: upstream CLI", cli_sign),
            ("verify: Bastion verify_model", bastion_verify),
            ("verify: upstream API", api_verify),
            ("verify: upstream CLI", cli_verify),
            ("verify+snapshot: Bastion open_verified (disk)", snapshot_into(tmp)),
            *(
                [("verify+snapshot: Bastion open_verified (tmpfs)", snapshot_into(shm))]
                if shm.is_dir()
                else []
            ),
        ]
        # Interleaved rounds, order rotated each round, so drift hits every contender alike.
        runs: dict[str, list[float]] = {name: [] for name, _ in contenders}
        for r in range(args.repeat):
            order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
            for name, fn in order:
                runs[name].append(_time(fn, 1))
                os.sync()
        rows = {name: statistics.median(runs[name]) for name, _ in contenders}
        best = {name: min(runs[name]) for name, _ in contenders}
        for name, secs in rows.items():
            print(f"{name:48s} {secs:7.2f} s  runs={[round(x, 2) for x in runs[name]]}", flush=True)
        # cross-check: the CLI verifies Bastion's bundle on the same model
        subprocess.run(
            [cli, "verify", "key", model, "--signature", b_sig, "--public_key", tmp / "key.pub"],
            check=True,
            capture_output=True,
        )
        shutil.rmtree(model)

    _report(rows, best, args)


def _report(rows: dict[str, float], best: dict[str, float], args: argparse.Namespace) -> None:
    size = args.size_mib / 1024
    pairs = {
        "sign vs upstream API": ("sign: Bastion sign_model", "sign: upstream API"),
        "sign vs upstream CLI": ("sign: Bastion sign_model", "sign: upstream CLI"),
        "verify vs upstream API": ("verify: Bastion verify_model", "verify: upstream API"),
        "verify vs upstream CLI": ("verify: Bastion verify_model", "verify: upstream CLI"),
        "open_verified (disk) vs upstream API verify": (
            "verify+snapshot: Bastion open_verified (disk)",
            "verify: upstream API",
        ),
    }
    ratios = {k: (rows[a] / rows[b], best[a] / best[b]) for k, (a, b) in pairs.items()}
    for k, (med, low) in ratios.items():
        print(f"ratio {k:44s} median {med:5.2f}x  best {low:5.2f}x (target <= 1.2x)")
    lines = [
        "## Model signing (bench/signing.py)",
        "",
        f"{size:.2f} GiB model, {args.files} files + config.json, SHA-256 per file, ECDSA P-256;",
        f"median of {args.repeat} interleaved rounds, page cache warm; upstream CLI times include",
        "its process start-up. The upstream CLI verified Bastion's bundle in the same run.",
        "",
        "| operation | median s | best s | GiB/s (best) |",
        "|---|---:|---:|---:|",
        *[f"| {k} | {v:.2f} | {best[k]:.2f} | {size / best[k]:.2f} |" for k, v in rows.items()],
        "",
        "| ratio (Bastion / upstream) | median | best | target |",
        "|---|---:|---:|---:|",
        *[f"| {k} | {m:.2f}x | {b:.2f}x | <= 1.2x |" for k, (m, b) in ratios.items()],
        "",
        "`open_verified` also copies every file into a private snapshot (the TOCTOU",
        "defence), so it writes the model once more: its cost is the write speed of the",
        "snapshot directory (this VM's disk is slow to write; tmpfs is faster). It is not",
        "held to the 1.2x target, which applies to sign and verify.",
        "",
        "Machine:",
        "",
        _machine(),
        "",
        results_block({
            "signing.sign_vs_cli": f"{ratios['sign vs upstream CLI'][0]:.2f}",
            "signing.verify_vs_cli": f"{ratios['verify vs upstream CLI'][0]:.2f}",
            "signing.sign_vs_api": f"{ratios['sign vs upstream API'][0]:.2f}",
            "signing.verify_vs_api": f"{ratios['verify vs upstream API'][0]:.2f}",
        }),
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
