"""The Kubernetes manifests in ``deploy/kubernetes/`` are valid, complete and locked down.

Checked offline, as CI has no cluster: every object against the Kubernetes 1.37 schemas
(``kubernetes-validate``, strict, so a misspelt field fails), the Kustomize base against
the files it lists, and the settings that make the API safe to run there.
"""

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "deploy" / "kubernetes"
KUBERNETES = "1.37.0"


def objects() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(BASE.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def kustomization() -> dict:
    return yaml.safe_load((BASE / "kustomization.yaml").read_text())


def of_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in objects() if doc["kind"] == kind}


@pytest.mark.parametrize(
    "name, manifest", objects(), ids=lambda v: v if isinstance(v, str) else v["kind"]
)
def test_every_object_is_valid_for_kubernetes(name, manifest):
    kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_validation_is_strict_enough_to_catch_a_typo():
    deployment = copy.deepcopy(of_kind("Deployment")["penguins-api"])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")  # one letter missing
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_the_kustomization_lists_every_file_and_makes_the_secrets_used():
    base = kustomization()
    files = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(base["resources"]) == files
    generated = {secret["name"] for secret in base["secretGenerator"]}
    volumes = of_kind("Deployment")["penguins-api"]["spec"]["template"]["spec"]["volumes"]
    used = {v["secret"]["secretName"] for v in volumes if "secret" in v}
    used |= {t["secretName"] for t in of_kind("Ingress")["penguins-api"]["spec"]["tls"]}
    assert used == generated
    images = {image["name"] for image in base["images"]}
    for deployment in of_kind("Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["image"] in images


@pytest.mark.parametrize("name", ["penguins-api", "penguins-redis"])
def test_pods_run_unprivileged_read_only_and_bounded(name):
    pod = of_kind("Deployment")[name]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        assert "readinessProbe" in container and "livenessProbe" in container


def test_the_api_probes_its_health_routes_and_shares_its_limits():
    container = of_kind("Deployment")["penguins-api"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["API_RATE_LIMIT_STORAGE"] == "redis://penguins-redis:6379"
    assert "penguins-redis" in of_kind("Service")
    assert of_kind("HorizontalPodAutoscaler")["penguins-api"]["spec"]["minReplicas"] >= 2


def test_network_policies_deny_by_default():
    policies = of_kind("NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    redis_from = policies["penguins-redis"]["spec"]["ingress"][0]["from"]
    assert redis_from == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "penguins-api"}}}
    ]
