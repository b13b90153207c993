"""The Dockerfile and Kubernetes manifests of ``bastion deploy manifests``.

The manifests are validated offline against the Kubernetes schemas bundled with
``kubernetes-validate --strict`` (run without network when ``unshare`` allows it), and
every security setting is asserted here, one test per setting.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from bastion.core.errors import InputError
from bastion.serving.manifests import (
    GATEWAY_PORT,
    IMAGE_PLACEHOLDER,
    ManifestSpec,
    dockerfile,
    k8s_name,
    render,
)
from bastion.serving.sandbox import MIB, SandboxLimits

DIGEST = "3f0c9a1e5b7d2c44" * 4
SPEC = ManifestSpec("credit", "scoring", "scorer", 2, DIGEST,
                    SandboxLimits(memory_bytes=1024 * MIB, tmp_bytes=64 * MIB))
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _docs(spec: ManifestSpec = SPEC) -> dict[str, dict[str, Any]]:
    docs = list(yaml.safe_load_all(render(spec)["kubernetes.yaml"]))
    return {cast(str, d["kind"]): cast(dict[str, Any], d) for d in docs}


def _pod() -> dict[str, Any]:
    return cast(dict[str, Any], _docs()["Deployment"]["spec"]["template"]["spec"])


def _container() -> dict[str, Any]:
    containers = _pod()["containers"]
    assert len(containers) == 1
    return cast(dict[str, Any], containers[0])


def test_manifests_pass_kubernetes_validate_strict_offline(tmp_path: Path) -> None:
    for name, text in render(SPEC).items():
        (tmp_path / name).write_text(text)
    tool = str(Path(sys.executable).parent / "kubernetes-validate")
    argv = [tool, "--strict", str(tmp_path / "kubernetes.yaml")]
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        argv = [unshare, "-rn", *argv]  # no network at all: the schemas are bundled
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    for kind in ("serviceaccount", "deployment", "service", "networkpolicy"):
        assert f"passed for resource {kind}/" in p.stdout + p.stderr


def test_kubernetes_validate_strict_rejects_an_unknown_field(tmp_path: Path) -> None:
    """The validator really is strict (so the test above can fail)."""
    docs = _docs()
    docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["runAsRoot"] = False
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(docs["Deployment"]))
    tool = str(Path(sys.executable).parent / "kubernetes-validate")
    p = subprocess.run([tool, "--strict", str(path)], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0


def test_manifest_container_cannot_run_as_root() -> None:
    for ctx in (_pod()["securityContext"], _container()["securityContext"]):
        assert ctx["runAsNonRoot"] is True
        assert ctx["runAsUser"] > 0 and ctx["runAsGroup"] > 0
    assert "USER 10001:10001" in dockerfile(SPEC)


def test_manifest_root_filesystem_is_read_only() -> None:
    assert _container()["securityContext"]["readOnlyRootFilesystem"] is True


def test_manifest_privilege_escalation_is_disallowed() -> None:
    ctx = _container()["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False and ctx["privileged"] is False


def test_manifest_container_drops_all_capabilities() -> None:
    caps = _container()["securityContext"]["capabilities"]
    assert caps == {"drop": ["ALL"]}  # nothing added back


def test_manifest_seccomp_profile_is_runtime_default() -> None:
    for ctx in (_pod()["securityContext"], _container()["securityContext"]):
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}


def test_manifest_pod_shares_no_host_namespace() -> None:
    pod = _pod()
    assert pod["hostNetwork"] is False and pod["hostPID"] is False and pod["hostIPC"] is False


def test_manifest_resources_follow_the_sandbox_limits() -> None:
    res = _container()["resources"]
    # 512 MiB gateway + 1024 MiB worker address space + 64 MiB tmpfs
    assert res["limits"] == {"cpu": "2000m", "memory": "1600Mi"}
    assert res["requests"] == {"cpu": "250m", "memory": "576Mi"}
    env = {e["name"]: e.get("value") for e in _container()["env"]}
    assert env["BASTION_SERVING_WORKER_MEMORY_MIB"] == "1024"
    bigger = ManifestSpec("credit", "scoring", "scorer", 2, DIGEST,
                          SandboxLimits(memory_bytes=4096 * MIB))
    limits = _docs(bigger)["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert limits["resources"]["limits"]["memory"] == "4672Mi"


def test_manifest_probes_check_health_on_the_gateway_port() -> None:
    c = _container()
    for probe in (c["livenessProbe"], c["readinessProbe"]):
        assert probe["httpGet"] == {"path": "/health", "port": "http"}
    assert c["ports"] == [{"name": "http", "containerPort": GATEWAY_PORT, "protocol": "TCP"}]


def test_manifest_tmp_is_a_bounded_emptydir() -> None:
    mounts = {m["mountPath"]: m["name"] for m in _container()["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod()["volumes"]}
    tmp = volumes[mounts["/tmp"]]
    assert tmp["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Mi"}


def test_manifest_pins_the_model_digest() -> None:
    d = _docs()["Deployment"]
    for meta in (d["metadata"], d["spec"]["template"]["metadata"]):
        assert meta["annotations"]["bastion.dev/model-digest"] == f"sha256:{DIGEST}"
        assert meta["annotations"]["bastion.dev/model"] == "scorer@2"
        assert meta["labels"]["bastion.dev/model-digest"] == DIGEST[:32]
    assert f'"bastion.dev.model-digest"="sha256:{DIGEST}"' in dockerfile(SPEC)


def test_manifest_image_is_a_digest_placeholder_that_never_pulls() -> None:
    image = _container()["image"]
    assert image == IMAGE_PLACEHOLDER
    host, _, digest = image.partition("@")
    assert host.split("/")[0].endswith(".invalid")  # RFC 2606: never resolves
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    assert "PLACEHOLDER" in _docs()["Deployment"]["metadata"]["annotations"]["bastion.dev/image"]


def test_service_account_token_is_not_mounted() -> None:
    docs = _docs()
    assert docs["ServiceAccount"]["automountServiceAccountToken"] is False
    assert _pod()["automountServiceAccountToken"] is False
    assert _pod()["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]


def test_network_policy_denies_ingress_except_the_gateway_port() -> None:
    np = _docs()["NetworkPolicy"]["spec"]
    assert "Ingress" in np["policyTypes"]
    assert np["ingress"] == [{"ports": [{"protocol": "TCP", "port": GATEWAY_PORT}]}]
    name = _docs()["Deployment"]["metadata"]["name"]
    assert np["podSelector"] == {"matchLabels": {"app.kubernetes.io/instance": name}}


def test_network_policy_denies_egress() -> None:
    np = _docs()["NetworkPolicy"]["spec"]
    assert "Egress" in np["policyTypes"] and np["egress"] == []


def test_service_exposes_only_the_gateway_port() -> None:
    svc = _docs()["Service"]["spec"]
    assert svc["type"] == "ClusterIP"
    assert svc["ports"] == [{"name": "http", "port": GATEWAY_PORT, "targetPort": "http",
                             "protocol": "TCP"}]
    assert svc["selector"] == _docs()["Deployment"]["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("hostile", [
    "x\nkind: ClusterRole", "x: y", "a\n---\napiVersion: v1", "'quoted'", "-x", "x y",
    "{a: 1}", "x#y", "é", "x\u202e", "",
])
def test_hostile_endpoint_name_cannot_inject_yaml(hostile: str) -> None:
    with pytest.raises(InputError):
        ManifestSpec("credit", hostile, "scorer", 2, DIGEST)
    with pytest.raises(InputError):
        ManifestSpec("credit", "scoring", hostile, 2, DIGEST)


def test_hostile_digest_cannot_inject_yaml_or_dockerfile_lines() -> None:
    for bad in (DIGEST + "\nUSER root", DIGEST.upper(), DIGEST[:-1], "sha256:" + DIGEST):
        with pytest.raises(InputError):
            ManifestSpec("credit", "scoring", "scorer", 2, bad)


@pytest.mark.parametrize("tricky", ["true", "null", "1e3", "0x10", "yes", "07", "1.0", "on"])
def test_yaml_looking_names_stay_strings(tricky: str) -> None:
    spec = ManifestSpec("credit", tricky, tricky, 1, DIGEST)
    text = render(spec)["kubernetes.yaml"]
    docs = list(yaml.safe_load_all(text))
    assert len(docs) == 4
    for d in docs:
        assert d["metadata"]["annotations"]["bastion.dev/endpoint"] == tricky
        assert d["metadata"]["annotations"]["bastion.dev/model"] == f"{tricky}@1"
    assert f'"bastion.dev.endpoint"="{tricky}"' in dockerfile(spec)


def test_kubernetes_names_are_dns_labels_unique_per_endpoint() -> None:
    names = {k8s_name(p, e) for p, e in [("credit", "a.b"), ("credit", "a_b"), ("credit", "A-b"),
                                         ("other", "a.b"), ("credit", "x" * 100)]}
    assert len(names) == 5
    for n in names | {k8s_name("credit", "_-.")}:
        assert len(n) <= 63 and DNS_LABEL.fullmatch(n), n


def test_every_document_has_one_name() -> None:
    docs = _docs()
    assert {d["metadata"]["name"] for d in docs.values()} == {k8s_name("credit", "scoring")}


def test_manifest_master_key_comes_from_a_secret_not_the_image() -> None:
    env = {e["name"]: e for e in _container()["env"]}
    assert "value" not in env["BASTION_MASTER_KEY"]
    assert env["BASTION_MASTER_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "bastion-master-key"
    assert "MASTER_KEY" not in dockerfile(SPEC)
