"""The sidecar overlay's NetworkPolicy (issue 9): the pod admits traffic only on the app's port and the
admin port (never the guard's proxy port), and reaches out only to DNS and the model endpoint on 443."""

from __future__ import annotations

import kubernetes_validate

from tests.ops.test_deploy import K8S_VERSIONS, KUSTOMIZE, by_kind, render


def test_the_sidecar_pod_is_fenced_to_the_app_port_dns_and_the_model() -> None:
    docs = render(KUSTOMIZE / "overlays" / "sidecar")
    (policy,) = by_kind(docs, "NetworkPolicy")
    kubernetes_validate.validate(policy, K8S_VERSIONS[-1], strict=True)
    (deployment,) = by_kind(docs, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= labels.items(), "the NetworkPolicy must select the sidecar pod"
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ingress_ports == {"app-http", "admin"}
    containers = deployment["spec"]["template"]["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for c in containers for p in c.get("ports", [])}
    assert {"app-http", "admin"} <= named.keys() and named["http"] not in ingress_ports
    egress_ports = {(p["port"], p["protocol"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {(53, "UDP"), (53, "TCP"), (443, "TCP")}
