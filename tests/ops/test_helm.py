"""The Helm chart (deploy/helm/guard), checked offline: `helm lint --strict` is clean and `helm template`
renders manifests that validate against the Kubernetes schemas, for both modes (the `ci/*-values.yaml`
scenarios); the pod keeps the settings the guard relies on; values that cannot work fail at render time
with the fix in the message; and every `GUARD_*` variable the chart sets is one `guard serve` reads."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from guard.commands import serve
from guard.commands.env_settings import env_name
from tests.ops.tools import DEPLOY, REPO, tool

CHART = DEPLOY / "helm" / "guard"
MODES = ("standalone", "sidecar")
K8S_VERSIONS = ("1.30.0", "1.37.0")
# Variables the guard reads that are not flags (secrets, see guard/review/wiring.py).
ENV_ONLY = {"GUARD_AUDIT_HMAC_KEY", "GUARD_REVIEW_WEBHOOK_URL", "GUARD_ADMIN_PUBLIC_URL"}


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("helm"), *args], capture_output=True, text=True, timeout=120, check=False)


def render(*args: str) -> list[dict[str, Any]]:
    done = helm("template", "g", str(CHART), *args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def values(mode: str) -> str:
    return str(CHART / "ci" / f"{mode}-values.yaml")


def guard_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "guard"]
    return container


@pytest.mark.parametrize("mode", MODES)
def test_helm_lint_is_clean(mode: str) -> None:
    done = helm("lint", str(CHART), "--strict", "-f", values(mode))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("mode", MODES)
def test_template_validates_offline(mode: str, version: str) -> None:
    docs = render("-f", values(mode))
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "ConfigMap", "Service", "ServiceAccount", "NetworkPolicy"} <= kinds, kinds
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":  # a Prometheus Operator CRD: not in the Kubernetes schemas
            assert doc["spec"]["endpoints"] == [{"port": "admin", "path": "/metrics", "interval": "30s"}]
            continue
        kubernetes_validate.validate(doc, version, strict=True)


def test_standalone_has_replicas_pdb_monitor_and_model_only_via_guard() -> None:
    docs = render("-f", values("standalone"))
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 3
    assert [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    # ServiceMonitor on: the pods carry no scrape annotations (scraped once, not twice).
    assert "prometheus.io/scrape" not in deployment["spec"]["template"]["metadata"]["annotations"]
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    model = policies["g-guard-model-only-via-guard"]
    assert model["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "model-server"}}
    assert model["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "guard"
    env = {e["name"]: e for e in guard_container(docs)["env"]}
    assert env["GUARD_HOST"]["value"] == "0.0.0.0"
    assert env["GUARD_AUDIT_FILE"]["value"] == "/etc/guard/postgres/dsn"  # the DSN from a Secret file


def test_sidecar_listens_on_loopback_and_limits_egress() -> None:
    docs = render("-f", values("sidecar"))
    container = guard_container(docs)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GUARD_HOST"] == "127.0.0.1"
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    app = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "app"][0]
    assert {"name": "OPENAI_BASE_URL", "value": "http://127.0.0.1:8080/v1"} in app["env"]
    (service,) = [d for d in docs if d["kind"] == "Service"]
    assert "http" not in {p["targetPort"] for p in service["spec"]["ports"]}, "the proxy port is never exposed"
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert policy["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "203.0.113.0/24"}}]
    assert not [d for d in docs if d["kind"] == "PodDisruptionBudget"]


@pytest.mark.parametrize("mode", MODES)
def test_pod_keeps_probes_resources_and_security(mode: str) -> None:
    container = guard_container(render("-f", values(mode)))
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "768Mi"}, "limits": {"cpu": "2", "memory": "1536Mi"}}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"] == {"drop": ["ALL"]}


def test_shipped_policy_is_the_default_and_a_change_rolls_the_pods() -> None:
    assert (CHART / "files" / "policy.yaml").read_bytes() == (REPO / "policies" / "default.yaml").read_bytes()

    def checksum(*args: str) -> str:
        (deployment,) = [d for d in render(*args) if d["kind"] == "Deployment"]
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/policy"])

    assert checksum() != checksum("--set", "policy.content=name: other")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "mode=sidecar"), "mode: sidecar needs app.image"),
        (("--set", "replicaCount=3"), "replicaCount > 1 needs postgres.existingSecret"),
        (("--set", "mode=bogus"), "mode must be one of"),
        (("--set", "typo=1"), "Additional property typo is not allowed"),
        (("--set", "upstream=http://m:8000/v1?x=1"), "upstream"),
    ],
)
def test_values_that_cannot_work_fail_at_render_time(args: tuple[str, ...], message: str) -> None:
    done = helm("template", "g", str(CHART), *args)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


@pytest.mark.parametrize("mode", MODES)
def test_every_guard_variable_the_chart_sets_is_read_by_guard_serve(mode: str) -> None:
    parser = argparse.ArgumentParser()
    serve.configure(parser)
    names = {env_name(a) for a in parser._actions} - {None}
    readable = names | {f"{n}_FILE" for n in names if n} | ENV_ONLY
    for env in guard_container(render("-f", values(mode)))["env"]:
        if env["name"].startswith("GUARD_"):
            assert env["name"] in readable, f"{env['name']} is set by the chart but read by nothing"
