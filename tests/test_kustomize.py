"""The kustomize base and the zero-to-jupyterhub overlay render, validate and say what
the docs say.

Renders each with ``kubectl kustomize`` (kustomize is built into kubectl), then validates
every object against the Kubernetes schema offline with kubernetes-validate, as
tests/test_scheduling.py does for the raw manifests. A missing kubectl fails with the
install step, never skips: CI must run these.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.scheduling

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "cron" / "kubernetes"
BASE = K8S / "base"
Z2JH = K8S / "overlays" / "zero-to-jupyterhub"
KUBERNETES_DOC = REPO / "docs" / "how-to" / "kubernetes.md"
# Which sample each kustomization's ConfigMap must carry, byte for byte.
SAMPLE_OF = {
    BASE: REPO / "config" / "idle-cull.toml",
    Z2JH: REPO / "config" / "zero-to-jupyterhub.toml",
}
K8S_MIN_VERSION = "1.30"  # as tests/test_scheduling.py
HEX_TOKEN = re.compile(r"\b[0-9a-fA-F]{32,}\b")
KINDS = {"CronJob", "ConfigMap", "NetworkPolicy"}
DIRS = [pytest.param(BASE, id="base"), pytest.param(Z2JH, id="zero-to-jupyterhub")]


def _kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail(
            "kubectl not found; it renders the kustomize base: install a current kubectl "
            "(tested with 1.32; kustomize is built in), see scripts/install"
        )
    return path


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize directory`` prints, as an operator would see them."""
    result = subprocess.run(
        [_kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    template: dict[str, Any] = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]
    return template


def volume(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [v[kind] for v in pod_of(docs)["spec"]["volumes"] if kind in v]
    return dict(found)


@pytest.mark.parametrize("directory", DIRS)
def test_renders_and_validates_against_the_kubernetes_schema(directory: Path) -> None:
    kv = importlib.import_module("kubernetes_validate")  # the test extra; no type stubs
    latest = importlib.import_module("kubernetes_validate.utils").latest_version()

    docs = render(directory)
    assert {doc["kind"] for doc in docs} == KINDS
    assert len(docs) == len(KINDS)
    for version in (K8S_MIN_VERSION, ".".join(latest.split(".")[:2])):
        for doc in docs:
            try:
                kv.validate(doc, version, strict=True)
            except Exception as exc:  # ValidationError, SchemaNotFoundError, ...
                message = getattr(exc, "message", exc)
                pytest.fail(f"{directory.name}: {doc['kind']} invalid for {version}: {message}")


def test_a_broken_kustomization_fails_to_render(tmp_path: Path) -> None:
    """Control: a render error is a failure, not an empty list that validates."""
    shutil.copytree(K8S, tmp_path / "kubernetes")
    (tmp_path / "kubernetes" / "overlays" / "zero-to-jupyterhub" / "idle-cull.toml").unlink()
    with pytest.raises(pytest.fail.Exception, match="kubectl kustomize"):
        render(tmp_path / "kubernetes" / "overlays" / "zero-to-jupyterhub")


@pytest.mark.parametrize("directory", DIRS)
def test_the_configmap_carries_the_sample_the_cronjob_reads(directory: Path) -> None:
    docs = render(directory)
    config_map = one(docs, "ConfigMap")
    mounted = volume(docs, "configMap")
    assert mounted["name"] == config_map["metadata"]["name"], "the CronJob must mount it"
    (item,) = mounted["items"]
    (container,) = pod_of(docs)["spec"]["containers"]
    assert f"--config=/etc/idle-cull-config/{item['path']}" in container["args"]
    sample = SAMPLE_OF[directory]
    assert config_map["data"][item["key"]] == sample.read_text(encoding="utf-8"), (
        f"{directory.relative_to(REPO)}/idle-cull.toml must be a copy of "
        f"{sample.relative_to(REPO)}: cp {sample.relative_to(REPO)} "
        f"{directory.relative_to(REPO)}/idle-cull.toml"
    )


@pytest.mark.parametrize("directory", DIRS)
def test_the_token_is_referenced_never_carried(directory: Path) -> None:
    docs = render(directory)
    assert "Secret" not in {doc["kind"] for doc in docs}
    assert not HEX_TOKEN.search(yaml.safe_dump_all(docs))
    secret = volume(docs, "secret")
    (container,) = pod_of(docs)["spec"]["containers"]
    (item,) = secret["items"]
    assert f"--api-token-file=/etc/idle-cull/{item['path']}" in container["args"]
    assert not secret["defaultMode"] & 0o007, "others must not read the token"


def test_base_refers_to_the_secret_the_docs_create() -> None:
    secret = volume(render(BASE), "secret")
    (item,) = secret["items"]
    command = f"create secret generic {secret['secretName']} --from-file={item['key']}=./api-token"
    assert command in KUBERNETES_DOC.read_text(encoding="utf-8")


def test_the_network_policy_selects_the_culler_and_lets_nothing_in() -> None:
    for directory in (BASE, Z2JH):
        docs = render(directory)
        policy = one(docs, "NetworkPolicy")["spec"]
        selector = policy["podSelector"]["matchLabels"]
        labels = pod_of(docs)["metadata"]["labels"]
        assert selector.items() <= labels.items(), "the policy must select the culler pod"
        assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
        assert not policy.get("ingress"), "nothing connects to the culler"
        ports = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
        assert {("UDP", 53), ("TCP", 53), ("TCP", 8081)} <= ports


def _values_yaml_service() -> str:
    """The hub service name the how-to's values.yaml registers."""
    text = KUBERNETES_DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    (values,) = [yaml.safe_load(_dedent(b)) for b in blocks if "loadRoles" in b]
    (name,) = values["hub"]["services"]
    assert values["hub"]["loadRoles"][name]["services"] == [name]
    assert values["cull"]["enabled"] is False, "the chart's culler must be turned off"
    return str(name)


def _dedent(block: str) -> str:
    import textwrap  # noqa: PLC0415

    return textwrap.dedent(block)


def test_zero_to_jupyterhub_overlay() -> None:
    docs = render(Z2JH)
    namespaces = {doc["metadata"].get("namespace") for doc in docs}
    assert len(namespaces) == 1
    assert None not in namespaces, "the overlay sets the release's namespace"

    # The chart writes each hub.services entry's token into its Secret "hub".
    secret = volume(docs, "secret")
    assert secret["secretName"] == "hub"
    (item,) = secret["items"]
    assert item["key"] == f"hub.services.{_values_yaml_service()}.apiToken"

    labels = pod_of(docs)["metadata"]["labels"]
    assert labels["hub.jupyter.org/network-access-hub"] == "true"
    assert labels["hub.jupyter.org/network-access-proxy-http"] == "true"

    # cull.every: 600 -> a pass every 10 minutes.
    assert one(docs, "CronJob")["spec"]["schedule"] == "*/10 * * * *"

    # The probes' URL is the chart's proxy-public Service.
    config = one(docs, "ConfigMap")["data"]["idle-cull.toml"]
    assert re.search(r'^proxy-url = "http://proxy-public"$', config, flags=re.MULTILINE)

    # Egress goes to the chart's hub pod (API) and proxy pod (probes) only.
    egress = one(docs, "NetworkPolicy")["spec"]["egress"]
    targets = {
        (rule["to"][0]["podSelector"]["matchLabels"]["component"], rule["ports"][0]["port"])
        for rule in egress
        if rule.get("to")
    }
    assert targets == {("hub", 8081), ("proxy", 8000)}


def test_base_is_not_tied_to_zero_to_jupyterhub() -> None:
    docs = render(BASE)
    labels = pod_of(docs)["metadata"]["labels"]
    assert not [k for k in labels if k.startswith("hub.jupyter.org/")]
    assert all("namespace" not in doc["metadata"] for doc in docs)
    assert volume(docs, "secret")["secretName"] == "idle-cull-token"
