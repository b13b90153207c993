"""``bastion deploy manifests ENDPOINT``: from the real deployment record of a real
workspace (two approved credit scorers, SQLite), through the service and the real CLI."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from serving_fixtures import Credit, build_credit, run_cli

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.core.errors import AccessDenied, NotFound
from bastion.serving.manifests import IMAGE_PLACEHOLDER, endpoint_manifests
from bastion.serving.sandbox import MIB, SandboxLimits

P = "default"
LIMITS = SandboxLimits(memory_bytes=1024 * MIB)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Credit, str]]:
    key = base64.b64encode(os.urandom(32)).decode()
    c = build_credit(tmp_path_factory.mktemp("manifests"), MasterKeySource.from_env_key(key),
                     None)
    c.ws.deployments.deploy(c.admin, P, c.v1.ref, "scoring")
    yield c, key
    c.ws.close()


def _deployment(files: dict[str, str]) -> dict[str, object]:
    return next(d for d in yaml.safe_load_all(files["kubernetes.yaml"])
                if d["kind"] == "Deployment")


def test_manifests_pin_the_digest_of_the_version_in_service(
        deployed: tuple[Credit, str]) -> None:
    c, _ = deployed
    files = endpoint_manifests(c.ws.deployments, c.admin, P, "scoring", LIMITS)
    meta = _deployment(files)["metadata"]
    assert meta["annotations"]["bastion.dev/model-digest"] == f"sha256:{c.v1.root_digest}"  # type: ignore[index]
    assert meta["annotations"]["bastion.dev/model"] == c.v1.ref  # type: ignore[index]
    assert f"sha256:{c.v1.root_digest}" in files["Dockerfile"]
    read = c.ws.audit.query(AuditQuery(action="deployment.read", resource=f"project/{P}/"))
    assert read and read[-1].outcome == "allowed"


def test_manifests_by_a_principal_without_deployment_read_are_refused_and_audited(
        deployed: tuple[Credit, str]) -> None:
    c, _ = deployed
    ws = c.ws
    ws.access.create_principal(c.admin, "carla", PrincipalKind.USER)
    ws.access.bind(c.admin, "carla", "consumer", P)  # predict, but not deployment.read
    carla = ws.access.authenticate(ws.access.create_token(c.admin, "carla").secret)
    with pytest.raises(AccessDenied):
        endpoint_manifests(ws.deployments, carla, P, "scoring", LIMITS)
    denied = ws.audit.query(AuditQuery(actor="carla", action="deployment.read",
                                       outcome="denied"))
    assert denied and denied[-1].resource == f"project/{P}/endpoint/scoring"


def test_manifests_of_an_endpoint_never_deployed_are_not_found(
        deployed: tuple[Credit, str]) -> None:
    c, _ = deployed
    with pytest.raises(NotFound):
        endpoint_manifests(c.ws.deployments, c.admin, P, "nowhere", LIMITS)


def test_cli_deploy_manifests_writes_valid_files(deployed: tuple[Credit, str],
                                                 tmp_path: Path) -> None:
    c, key = deployed
    out = tmp_path / "k8s"
    code, text = run_cli(c.ws.home, key, "deploy", "manifests", "scoring", "--out", str(out))
    assert code == 0, text
    assert "placeholder" in text and IMAGE_PLACEHOLDER in text
    assert sorted(p.name for p in out.iterdir()) == ["Dockerfile", "kubernetes.yaml"]
    files = {p.name: p.read_text() for p in out.iterdir()}
    meta = _deployment(files)["metadata"]
    assert meta["annotations"]["bastion.dev/model-digest"] == f"sha256:{c.v1.root_digest}"  # type: ignore[index]
    tool = str(Path(sys.executable).parent / "kubernetes-validate")
    p = subprocess.run([tool, "--strict", str(out / "kubernetes.yaml")], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_api_manifests_route_answers_deployers_and_refuses_consumers(
        deployed: tuple[Credit, str]) -> None:
    import httpx
    from serving_fixtures import start_bastion_serve

    c, key = deployed
    ws = c.ws
    ws.access.create_principal(c.admin, "dora", PrincipalKind.USER)
    ws.access.bind(c.admin, "dora", "deployer", P)
    dora = ws.access.create_token(c.admin, "dora").secret
    ws.access.create_principal(c.admin, "connie", PrincipalKind.USER)
    ws.access.bind(c.admin, "connie", "consumer", P)
    connie = ws.access.create_token(c.admin, "connie").secret
    srv = start_bastion_serve(ws.home, key, {"BASTION_SERVING_WORKER_MEMORY_MIB": "768"})
    try:
        url = f"{srv.url}/v1/endpoints/scoring/manifests"
        r = httpx.get(url, headers={"Authorization": f"Bearer {dora}"}, timeout=30)
        assert r.status_code == 200, r.text
        files = r.json()
        assert set(files) == {"Dockerfile", "kubernetes.yaml"}
        container = _deployment(files)["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
        # the limits the server's sandbox uses: 512 MiB gateway + 768 MiB worker + 64 MiB /tmp
        assert container["resources"]["limits"]["memory"] == "1344Mi"
        refused = httpx.get(url, headers={"Authorization": f"Bearer {connie}"}, timeout=30)
        assert refused.status_code == 403, refused.text
        hostile = httpx.get(f"{srv.url}/v1/endpoints/a%0Akind:%20x/manifests",
                            headers={"Authorization": f"Bearer {dora}"}, timeout=30)
        assert hostile.status_code == 404, hostile.text  # no such endpoint: nothing rendered
        assert "apiVersion" not in hostile.text
    finally:
        srv.stop()
