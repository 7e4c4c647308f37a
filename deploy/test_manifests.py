"""Checks deploy/kubernetes: every document validates against the Kubernetes API schemas (kubernetes-validate,
which ships them; there is no cluster here for `kubectl --dry-run`), and the fields that make hotroute work are as
they must be. Run by scripts/test-packages with pytest; HOTROUTE_BIN (the built binary) lets the memory check
measure a real idle server."""

import os
import pathlib
import re
import subprocess
import time

import kubernetes_validate
import pytest
import yaml

HERE = pathlib.Path(__file__).parent / "kubernetes"
DOCS = list(yaml.safe_load_all((HERE / "hotroute.yaml").read_text()))
BY_KIND = {doc["kind"]: doc for doc in DOCS}


def quantity(text):
    """A Kubernetes quantity (`32Mi`, `10m`, `1`) as a number of bytes or cores."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 1e-3, "": 1}
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", text).groups()
    return float(number) * units[unit]


def container():
    return BY_KIND["Deployment"]["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d["kind"])
def test_each_document_validates_against_the_kubernetes_schemas(doc):
    # strict: a misspelt field (readinesProbe) is an error, not silently ignored as the API server would.
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_the_kinds_are_a_configmap_a_deployment_and_a_service():
    assert sorted(BY_KIND) == ["ConfigMap", "Deployment", "Service"]
    assert len(DOCS) == 3


def test_the_routes_configmap_is_mounted_as_a_folder_so_it_hot_reloads():
    pod = BY_KIND["Deployment"]["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "routes"]
    assert volume["configMap"]["name"] == BY_KIND["ConfigMap"]["metadata"]["name"]
    [mount] = container()["volumeMounts"]
    assert mount["name"] == "routes" and mount["mountPath"] == "/routes"
    assert "subPath" not in mount  # a subPath mount is never updated: no reload
    assert container()["args"][0] == "/routes/routes.toml"
    assert "routes.toml" in BY_KIND["ConfigMap"]["data"]


def test_probes_ask_the_health_endpoint_on_the_served_port():
    c = container()
    [port] = c["ports"]
    assert port["containerPort"] == 3000 and port["name"] == "http"
    assert c["args"][1:] == ["--listen", "0.0.0.0:3000"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/__admin/health", "port": "http"}, probe


def test_the_service_targets_the_named_port_and_selects_the_pods():
    svc = BY_KIND["Service"]["spec"]
    labels = BY_KIND["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert svc["selector"].items() <= labels.items()
    assert svc["ports"][0]["targetPort"] == "http"


def test_the_admin_token_comes_from_a_secret_and_the_pod_runs_unprivileged():
    c = container()
    [env] = [e for e in c["env"] if e["name"] == "HOTROUTE_ADMIN_TOKEN"]
    assert "secretKeyRef" in env["valueFrom"]
    pod = BY_KIND["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True


def idle_rss(binary, routes_toml, tmp_path):
    """The RSS in bytes of a hotroute serving `routes_toml` on 127.0.0.1:0, after it is up and idle."""
    routes = tmp_path / "routes.toml"
    routes.write_text(routes_toml)
    proc = subprocess.Popen([binary, str(routes), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout.readline().startswith(b"listening on ")
        time.sleep(0.5)  # not a timed test: lets the watcher and workers settle before reading RSS
        status = pathlib.Path(f"/proc/{proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_the_memory_request_covers_a_measured_idle_server(tmp_path):
    resources = container()["resources"]
    request, limit = quantity(resources["requests"]["memory"]), quantity(resources["limits"]["memory"])
    binary = os.environ.get("HOTROUTE_BIN")
    if not binary:
        pytest.skip("HOTROUTE_BIN not set: no binary to measure")
    rss = idle_rss(binary, BY_KIND["ConfigMap"]["data"]["routes.toml"], tmp_path)
    print(f"idle RSS of {binary}: {rss / 2**20:.1f} MiB; request {request / 2**20:.0f} MiB, limit {limit / 2**20:.0f} MiB")
    assert rss <= request, f"an idle server takes {rss / 2**20:.1f} MiB, more than the {request / 2**20:.0f} MiB asked"
    assert limit >= 4 * request  # room for the journal and reloads above idle
    assert quantity(resources["requests"]["cpu"]) > 0


# deploy/kubernetes/replicas: 3 replicas sharing their state through one Valkey (issue 19).
REPLICAS = list(yaml.safe_load_all((HERE / "replicas" / "replicas.yaml").read_text()))


@pytest.mark.parametrize("doc", REPLICAS, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_each_replicas_document_validates_against_the_kubernetes_schemas(doc):
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_the_replicas_share_state_through_the_store_service():
    deployments = {d["metadata"]["name"]: d for d in REPLICAS if d["kind"] == "Deployment"}
    services = {d["metadata"]["name"]: d for d in REPLICAS if d["kind"] == "Service"}
    hotroute = deployments["hotroute-replicas"]
    assert hotroute["spec"]["replicas"] == 3
    [c] = hotroute["spec"]["template"]["spec"]["containers"]
    [state] = [e for e in c["env"] if e["name"] == "HOTROUTE_STATE"]
    store = services["hotroute-state"]
    host, port = re.fullmatch(r"redis://([a-z-]+):(\d+)/0", state["value"]).groups()
    assert host == store["metadata"]["name"] and int(port) == store["spec"]["ports"][0]["port"]
    assert store["spec"]["selector"].items() <= deployments["hotroute-state"]["spec"]["template"]["metadata"]["labels"].items()
    assert c["readinessProbe"]["httpGet"]["path"] == "/__admin/health?require=state"
    assert "state_prefix" in next(d for d in REPLICAS if d["kind"] == "ConfigMap")["data"]["routes.toml"]
