"""A Dockerfile and Kubernetes manifests for running one endpoint in a cluster.

``render(ManifestSpec)`` is a pure function: from the endpoint's deployment record (model
``name@version``, the exact root digest the release gate passed and the registry verified,
the endpoint) and the resource limits the sandbox applies, it builds

- a ``Dockerfile`` for the gateway image (non-root user, ``bastion serve`` as entrypoint);
- ``kubernetes.yaml``: a ServiceAccount (no API token mounted), a Deployment (non-root,
  read-only root file system, no privilege escalation, every capability dropped, seccomp
  ``RuntimeDefault``, requests and limits from the sandbox limits, probes on ``/health``,
  an ``emptyDir`` at ``/tmp``, the model digest as label and annotation), a Service and a
  NetworkPolicy (every ingress denied but the gateway port, every egress denied).

Every document is built as data and serialized with PyYAML's safe dumper: no text
template ever holds a user's string, and every name is checked by ``core.names`` first
(Kubernetes object names are a DNS-1123 label derived from it plus a hash of
``project/endpoint``, so two endpoints never share one).

The image is referenced **by digest placeholder** (``IMAGE_PLACEHOLDER``, a ``.invalid``
host that can never resolve): build the Dockerfile, push it, and set the real
``registry/name@sha256:…`` before applying.

Example::

    spec = manifest_spec(status.active, SandboxLimits())
    files = render(spec)          # {"Dockerfile": "...", "kubernetes.yaml": "..."}
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

import yaml

from bastion.core.access.values import Actor
from bastion.core.errors import InputError
from bastion.core.names import check_name
from bastion.serving.deployments import DeploymentService
from bastion.serving.errors import NoDeployment
from bastion.serving.sandbox import MIB, SandboxLimits
from bastion.serving.values import Deployment

#: the image reference the user must replace (reserved ``.invalid`` TLD: it never pulls)
IMAGE_PLACEHOLDER = "image.invalid/set-me/bastion-gateway@sha256:" + "0" * 64
GATEWAY_PORT = 8700
RUN_UID = 10001
WORKSPACE_MOUNT = "/var/lib/bastion"
#: what the user provides: the workspace volume and the Secret holding its master key
WORKSPACE_CLAIM = "bastion-workspace"
MASTER_KEY_SECRET = "bastion-master-key"  # noqa: S105 (a Secret object's name)
#: what the gateway process itself needs next to its model worker
GATEWAY_MEMORY_BYTES = 512 * MIB
_LABEL = "bastion.dev"
#: the gateway listens on the pod's own interfaces; the NetworkPolicy admits only its port
_POD_ADDRESS = "0.0.0.0"  # noqa: S104
_TMP = "/tmp"  # noqa: S108 (the pod's own emptyDir, not a shared /tmp)
_HEX64 = re.compile(r"[0-9a-f]{64}")

Doc = dict[str, object]


@dataclass(frozen=True)
class ManifestSpec:
    """What the manifests are generated from (checked again here: a pure function's input)."""

    project: str
    endpoint: str
    model: str
    version: int
    root_digest: str  # 64 lowercase hex digits (sha256)
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    cpu_request_millis: int = 250
    cpu_limit_millis: int = 2000

    def __post_init__(self) -> None:
        check_name("project", self.project, allow_at=True)
        check_name("endpoint", self.endpoint, max_length=100)
        check_name("model", self.model)
        if isinstance(self.version, bool) or not isinstance(self.version, int) \
                or self.version < 1:
            raise InputError(f"invalid model version {self.version!r}")
        if not _HEX64.fullmatch(self.root_digest):
            raise InputError("the root digest must be 64 lowercase hex digits (sha256)",
                             hint="take it from bastion deploy status --json")

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


def manifest_spec(d: Deployment, limits: SandboxLimits) -> ManifestSpec:
    return ManifestSpec(d.project, d.endpoint, d.model, d.version,
                        d.root_digest.removeprefix("sha256:"), limits)


def k8s_name(project: str, endpoint: str) -> str:
    """A DNS-1123 label (<= 63 chars) unique per ``project/endpoint``."""
    slug = re.sub(r"[^a-z0-9]+", "-", endpoint.lower()).strip("-")[:40].strip("-")
    tag = hashlib.sha256(f"{project}/{endpoint}".encode()).hexdigest()[:8]
    return f"bastion-{slug}-{tag}" if slug else f"bastion-{tag}"


def _mib(n: int) -> str:
    return f"{-(-n // MIB)}Mi"


def _labels(spec: ManifestSpec, name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "bastion-gateway", "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": "prediction-gateway",
            f"{_LABEL}/model-digest": spec.root_digest[:32]}


def _annotations(spec: ManifestSpec) -> dict[str, str]:
    return {f"{_LABEL}/project": spec.project, f"{_LABEL}/endpoint": spec.endpoint,
            f"{_LABEL}/model": spec.ref, f"{_LABEL}/model-digest": f"sha256:{spec.root_digest}",
            f"{_LABEL}/image": "PLACEHOLDER: set spec.template.spec.containers[0].image to "
                               "your pushed image by digest (registry/name@sha256:...)"}


def _meta(spec: ManifestSpec, name: str) -> Doc:
    return {"name": name, "labels": _labels(spec, name), "annotations": _annotations(spec)}


def service_account(spec: ManifestSpec) -> Doc:
    name = k8s_name(spec.project, spec.endpoint)
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(spec, name),
            "automountServiceAccountToken": False}


def _container_security() -> Doc:
    return {"runAsNonRoot": True, "runAsUser": RUN_UID, "runAsGroup": RUN_UID,
            "allowPrivilegeEscalation": False, "privileged": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


def _resources(spec: ManifestSpec) -> Doc:
    lim = spec.limits
    # the worker's address-space limit + its tmpfs /tmp (counted as memory) + the gateway
    memory = GATEWAY_MEMORY_BYTES + lim.memory_bytes + lim.tmp_bytes
    return {"requests": {"cpu": f"{spec.cpu_request_millis}m",
                         "memory": _mib(GATEWAY_MEMORY_BYTES + lim.tmp_bytes)},
            "limits": {"cpu": f"{spec.cpu_limit_millis}m", "memory": _mib(memory)}}


def _probe(initial: int) -> Doc:
    return {"httpGet": {"path": "/health", "port": "http"}, "initialDelaySeconds": initial,
            "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3}


def deployment(spec: ManifestSpec) -> Doc:
    name = k8s_name(spec.project, spec.endpoint)
    selector = {"app.kubernetes.io/instance": name}
    container: Doc = {
        "name": "gateway", "image": IMAGE_PLACEHOLDER, "imagePullPolicy": "IfNotPresent",
        "args": ["serve", "--host", _POD_ADDRESS, "--port", str(GATEWAY_PORT)],
        "ports": [{"name": "http", "containerPort": GATEWAY_PORT, "protocol": "TCP"}],
        "env": [{"name": "BASTION_HOME", "value": WORKSPACE_MOUNT},
                # the workspace's master key from a Secret you create (never in the image;
                # the sandboxed worker's environment is cleared)
                {"name": "BASTION_MASTER_KEY", "valueFrom": {"secretKeyRef": {
                    "name": MASTER_KEY_SECRET, "key": "master-key", "optional": False}}},
                {"name": "BASTION_SERVING_WORKER_MEMORY_MIB",
                 "value": str(spec.limits.memory_bytes // MIB)}],
        "securityContext": _container_security(), "resources": _resources(spec),
        "livenessProbe": _probe(20), "readinessProbe": _probe(5),
        "volumeMounts": [{"name": "tmp", "mountPath": _TMP},
                         {"name": "workspace", "mountPath": WORKSPACE_MOUNT}],
    }
    pod: Doc = {
        "serviceAccountName": name, "automountServiceAccountToken": False,
        "enableServiceLinks": False, "hostNetwork": False, "hostPID": False, "hostIPC": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_UID, "runAsGroup": RUN_UID,
                            "fsGroup": RUN_UID, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory",
                                                 "sizeLimit": _mib(spec.limits.tmp_bytes)}},
                    {"name": "workspace",
                     "persistentVolumeClaim": {"claimName": WORKSPACE_CLAIM}}],
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(spec, name),
            "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                     "strategy": {"type": "Recreate"},
                     "template": {"metadata": {"labels": _labels(spec, name),
                                               "annotations": _annotations(spec)},
                                  "spec": pod}}}


def service(spec: ManifestSpec) -> Doc:
    name = k8s_name(spec.project, spec.endpoint)
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(spec, name),
            "spec": {"type": "ClusterIP",
                     "selector": {"app.kubernetes.io/instance": name},
                     "ports": [{"name": "http", "port": GATEWAY_PORT, "targetPort": "http",
                                "protocol": "TCP"}]}}


def network_policy(spec: ManifestSpec) -> Doc:
    """Deny everything for the endpoint's pods but TCP ingress to the gateway port.

    No egress at all, not even DNS: the model worker has no network (its sandbox), and the
    gateway on a file (SQLite) workspace resolves no names.  A PostgreSQL or Redis
    workspace needs one egress rule to those hosts (and DNS if named): add it yourself.
    """
    name = k8s_name(spec.project, spec.endpoint)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": _meta(spec, name),
            "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": name}},
                     "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"ports": [{"protocol": "TCP", "port": GATEWAY_PORT}]}],
                     "egress": []}}


def documents(spec: ManifestSpec) -> list[Doc]:
    return [service_account(spec), deployment(spec), service(spec), network_policy(spec)]


def dockerfile(spec: ManifestSpec) -> str:
    """The gateway image.  Only checked names and hex reach it, each JSON-quoted."""
    labels = {f"{_LABEL}.endpoint": spec.endpoint, f"{_LABEL}.model": spec.ref,
              f"{_LABEL}.model-digest": f"sha256:{spec.root_digest}"}
    label_lines = " \\\n      ".join(f"{json.dumps(k)}={json.dumps(v)}"
                                     for k, v in labels.items())
    return "\n".join([
        "# Bastion prediction gateway for one endpoint (generated by bastion deploy "
        "manifests).",
        "# Pin the base image by digest (python:3.12-slim@sha256:...) before building;",
        "# build from a folder holding Bastion's wheel: docker build -t REGISTRY/NAME .",
        "# then set the pushed image digest in kubernetes.yaml (it holds a placeholder).",
        "FROM python:3.12-slim",
        "RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap "
        "util-linux \\",
        "    && rm -rf /var/lib/apt/lists/*",
        "COPY *.whl /tmp/wheels/",
        "RUN pip install --no-cache-dir /tmp/wheels/*.whl && rm -rf /tmp/wheels",
        f"RUN groupadd --gid {RUN_UID} bastion \\",
        f"    && useradd --uid {RUN_UID} --gid {RUN_UID} --no-create-home --shell "
        "/usr/sbin/nologin bastion",
        f"LABEL {label_lines}",
        f"ENV BASTION_HOME={WORKSPACE_MOUNT}",
        f"USER {RUN_UID}:{RUN_UID}",
        f"EXPOSE {GATEWAY_PORT}",
        'ENTRYPOINT ["bastion"]',
        f'CMD ["serve", "--host", "{_POD_ADDRESS}", "--port", "{GATEWAY_PORT}"]',
        "",
    ])


def render(spec: ManifestSpec) -> dict[str, str]:
    """File name -> content: ``Dockerfile`` and ``kubernetes.yaml`` (four documents)."""
    text = yaml.safe_dump_all(documents(spec), sort_keys=False, default_flow_style=False,
                              explicit_start=True)
    return {"Dockerfile": dockerfile(spec), "kubernetes.yaml": text}


def endpoint_manifests(deployments: DeploymentService, actor: Actor, project: str,
                       endpoint: str, limits: SandboxLimits) -> dict[str, str]:
    """Authorize ``deployment.read`` (``status`` does, audited), then render what serves."""
    status = deployments.status(actor, project, endpoint)
    if status.active is None:
        raise NoDeployment(f"endpoint {endpoint!r} in project {project} has nothing in service",
                           hint="deploy a version first: bastion deploy MODEL@V --endpoint NAME")
    return render(manifest_spec(status.active, limits))


__all__ = [
    "GATEWAY_PORT",
    "IMAGE_PLACEHOLDER",
    "ManifestSpec",
    "dockerfile",
    "documents",
    "endpoint_manifests",
    "k8s_name",
    "manifest_spec",
    "render",
]
