"""k8s/: the RayService is generated from the Serve config, every manifest validates against its schema
(KubeRay CRDs, Kubernetes' OpenAPI), placeholders render, and the pieces name each other consistently."""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from cali.deploy import kuberay
from tests.deploy.iac import KUBERAY, REPO, SAMPLE_VALUES, run_checkov, shared_dir, yaml_docs

CRD_FILES = {"RayService": "ray.io_rayservices.yaml", "RayJob": "ray.io_rayjobs.yaml",
             "RayCluster": "ray.io_rayclusters.yaml"}
KUBERNETES_VERSION = "1.34"  # infra/terraform/variables.tf kubernetes_version
CORE_KINDS = {"Namespace", "ServiceAccount", "ConfigMap", "NetworkPolicy", "Ingress", "ClusterRole"}


def rendered(path: Path) -> list[dict[str, Any]]:
    text = kuberay.render(path.read_text(), SAMPLE_VALUES, path.name)
    return [d for d in yaml.safe_load_all(text) if d]


def all_manifests() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in kuberay.manifest_files():
        if path.name in kuberay.HELM_VALUES:
            continue
        out += [(f"{path.parent.name}/{path.name}", doc) for doc in rendered(path)]
    return out


@cache
def crd_schema(kind: str) -> dict[str, Any]:
    path = shared_dir() / "kuberay" / "crds" / CRD_FILES[kind]
    crd = yaml.safe_load(path.read_text())
    return next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]


def unknown_fields(doc: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the schema does not declare: the API server would silently prune them (typos, wrong nesting)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found = []
    if isinstance(doc, dict) and "properties" in schema:
        for key, value in doc.items():
            if key not in schema["properties"]:
                found.append(f"{path}.{key}")
            else:
                found += unknown_fields(value, schema["properties"][key], f"{path}.{key}")
    elif isinstance(doc, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, value in doc.items():
            found += unknown_fields(value, schema["additionalProperties"], f"{path}.{key}")
    elif isinstance(doc, list) and "items" in schema:
        for i, item in enumerate(doc):
            found += unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found


def test_rayservice_yaml_is_generated_from_the_serve_config():
    assert (KUBERAY / "rayservice.yaml").read_text() == kuberay.generate(), \
        "k8s/kuberay/rayservice.yaml is stale: run python -m cali.deploy.kuberay generate"


KUBERAY_DOCS = [(name, doc) for name, doc in all_manifests() if doc["kind"] in CRD_FILES]


@pytest.mark.parametrize("name,doc", KUBERAY_DOCS, ids=[n for n, _ in KUBERAY_DOCS])
def test_kuberay_objects_validate_against_the_crd_schema(name, doc):
    schema = crd_schema(doc["kind"])
    jsonschema.validate(doc, schema, cls=jsonschema.Draft7Validator)
    assert not unknown_fields(doc, schema), f"{name}: fields the CRD does not know"


def test_the_schema_checks_reject_what_the_api_server_would():
    doc = next(d for _, d in KUBERAY_DOCS if d["kind"] == "RayService")
    bad = yaml.safe_load(yaml.safe_dump(doc))
    bad["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["minReplica"] = 1  # typo of minReplicas
    assert unknown_fields(bad, crd_schema("RayService")) == [".spec.rayClusterConfig.workerGroupSpecs[0].minReplica"]
    bad["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplicas"] = "eight"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, crd_schema("RayService"), cls=jsonschema.Draft7Validator)


CORE_DOCS = [(name, doc) for name, doc in all_manifests() if doc["kind"] in CORE_KINDS]


@pytest.mark.parametrize("name,doc", CORE_DOCS, ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in CORE_DOCS])
def test_core_objects_validate_with_kubernetes_validate(name, doc):
    import kubernetes_validate

    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_manifest_kind_is_validated():
    kinds = {doc["kind"] for _, doc in all_manifests()}
    # SecretProviderClass's CRD ships with the Secrets Store CSI driver, not here: test_secret_wiring checks it.
    assert kinds - CORE_KINDS - set(CRD_FILES) == {"SecretProviderClass"}


def _serve(doc_name="rayservice.yaml"):
    doc = yaml_docs(KUBERAY / doc_name)[0]
    return yaml.safe_load(doc["spec"]["serveConfigV2"])


def _local_serve():
    return yaml.safe_load((REPO / "cali" / "serve" / "config.yaml").read_text())


def test_serve_config_v2_carries_the_same_applications_as_config_yaml():
    cluster, local = _serve(), _local_serve()
    strip = lambda app: {k: v for k, v in app.items() if k != "args"}  # noqa: E731
    assert [strip(a) for a in cluster["applications"]] == [strip(a) for a in local["applications"]]
    overrides = yaml.safe_load((KUBERAY / "serve-overrides.yaml").read_text())
    for app in cluster["applications"]:
        if app["name"] not in overrides.get("applications", {}):
            assert app == next(a for a in local["applications"] if a["name"] == app["name"])
    assert cluster["http_options"]["host"] == "0.0.0.0"


def test_overrides_cannot_add_an_application_or_change_an_import_path():
    config = _local_serve()
    with pytest.raises(kuberay.DeployConfigError, match="does not have"):
        kuberay.serve_config(config, {"applications": {"ghost": {"args": {}}}})
    with pytest.raises(kuberay.DeployConfigError, match="only args"):
        kuberay.serve_config(config, {"applications": {"cali-analysis": {"import_path": "x:y"}}})


@pytest.mark.parametrize("app", _serve()["applications"], ids=lambda a: a["name"])
def test_every_import_path_imports(app):
    module_name, _, attr = app["import_path"].partition(":")
    module = importlib.import_module(module_name)
    assert getattr(module, attr, None) is not None, f"{app['import_path']}: no attribute {attr}"


def test_analysis_args_are_a_valid_serve_spec():
    from cali.serve.spec import ServeSpec

    for app in _serve()["applications"]:
        if app["import_path"] == "cali.serve.app:build_app":
            args = kuberay.render(yaml.safe_dump(app["args"]), SAMPLE_VALUES)
            ServeSpec.model_validate(yaml.safe_load(args))


def test_ray_version_matches_the_image_and_the_tested_ray():
    import ray

    pins = dict(line.split("==") for line in (REPO / "docker" / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    for name, doc in KUBERAY_DOCS:
        spec = doc["spec"].get("rayClusterConfig") or doc["spec"]["rayClusterSpec"]
        assert spec["rayVersion"] == pins["ray"] == ray.__version__, name


def _pod_specs(doc):
    spec = doc["spec"].get("rayClusterConfig") or doc["spec"].get("rayClusterSpec")
    yield "head", spec["headGroupSpec"]["template"]["spec"]
    for group in spec["workerGroupSpecs"]:
        yield group["groupName"], group["template"]["spec"]


@pytest.mark.parametrize("name,doc", KUBERAY_DOCS, ids=[n for n, _ in KUBERAY_DOCS])
def test_ray_pods_are_restricted_sized_and_probed(name, doc):
    for group, pod in _pod_specs(doc):
        assert pod["securityContext"]["runAsNonRoot"] is True, (name, group)
        assert pod["nodeSelector"] == {"cali.io/pool": "ray"}, (name, group)
        for c in pod["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, (name, group)
            assert c["resources"]["requests"] == c["resources"]["limits"], (name, group)
            assert c["readinessProbe"] and c["livenessProbe"], (name, group)
            assert c["image"] == SAMPLE_VALUES["IMAGE"], (name, group)
            assert {"configMapRef": {"name": "cali-config"}} in c["envFrom"], (name, group)


def test_rayservice_has_autoscaling_gcs_ft_and_a_lease_owner_per_cluster():
    doc = next(d for _, d in KUBERAY_DOCS if d["kind"] == "RayService")
    cluster = doc["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["gcsFaultToleranceOptions"]["redisAddress"].startswith("rediss://")
    assert doc["spec"]["upgradeStrategy"]["type"] == "NewCluster"
    for _, pod in _pod_specs(doc):
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        field = env["CALI_PIPELINE__WORKER_ID"]["valueFrom"]["fieldRef"]["fieldPath"]
        assert field == "metadata.labels['ray.io/cluster']"


def test_secret_wiring():
    """Every secretKeyRef names a Secret a SecretProviderClass syncs, and a key it writes."""
    synced = {}
    for _, doc in all_manifests():
        if doc["kind"] == "SecretProviderClass":
            aliases = {o["objectAlias"] for o in yaml.safe_load(doc["spec"]["parameters"]["objects"])}
            for obj in doc["spec"]["secretObjects"]:
                keys = {d["key"] for d in obj["data"]}
                assert {d["objectName"] for d in obj["data"]} <= aliases
                synced[obj["secretName"]] = keys
    refs = []

    def walk(node):
        if isinstance(node, dict):
            if "secretKeyRef" in node:
                refs.append((node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for _, doc in KUBERAY_DOCS:
        walk(doc)
        for _, pod in _pod_specs(doc):
            spcs = {v["csi"]["volumeAttributes"]["secretProviderClass"] for v in pod["volumes"] if "csi" in v}
            assert spcs, "a pod reading a synced Secret must mount its CSI volume (that is what syncs it)"
    assert refs and all(name in synced and key in synced[name] for name, key in refs), (refs, synced)


def test_network_policy_admits_serve_only_from_the_ingress_subnets():
    policy = next(d for _, d in all_manifests() if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "cali-ray")
    for rule in policy["spec"]["ingress"]:
        if any("ipBlock" in f for f in rule["from"]):
            assert rule["from"] == [{"ipBlock": {"cidr": SAMPLE_VALUES["INGRESS_SOURCE_CIDR"]}}]
            assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
        else:
            assert all("podSelector" in f for f in rule["from"]), "no rule admits everyone"


def test_ingress_routes_only_analyze_over_https():
    ingress = next(d for _, d in all_manifests() if d["kind"] == "Ingress")
    paths = [p for r in ingress["spec"]["rules"] for p in r["http"]["paths"]]
    assert [(p["path"], p["pathType"]) for p in paths] == [("/analyze", "Exact")]
    assert paths[0]["backend"]["service"]["name"] == "cali-serve-svc"  # KubeRay's <rayservice>-serve-svc
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'


def test_operator_values_use_keys_the_chart_has_and_pin_the_release():
    defaults_text = (shared_dir() / "kuberay" / "kuberay-operator-values.yaml").read_text()
    defaults = yaml.safe_load(defaults_text)
    values = yaml.safe_load((KUBERAY / "operator-values.yaml").read_text())
    for key in values:  # commented-out keys (watchNamespace) are documented options of the chart too
        assert key in defaults or f"# {key}:" in defaults_text, f"operator-values.yaml: unknown key {key}"
    assert values["image"]["tag"] == "v1.7.0"
    gates = {g["name"] for g in defaults["featureGates"]}
    assert {g["name"] for g in values["featureGates"]} <= gates
    assert "--version 1.7.0" in (KUBERAY / "operator-values.yaml").read_text()
    assert "kuberay/kuberay-operator --version 1.7.0" in (REPO / "docs" / "deploy.md").read_text()


def test_render_fills_every_placeholder_and_refuses_missing_ones():
    text = "a: ${AWS_REGION}\nb: ${IMAGE}\n"
    assert kuberay.render(text, {"AWS_REGION": "eu-west-1", "IMAGE": "img:1"}) == "a: eu-west-1\nb: img:1\n"
    with pytest.raises(kuberay.DeployConfigError, match=r"\$\{IMAGE\}"):
        kuberay.render(text, {"AWS_REGION": "eu-west-1", "IMAGE": ""})
    # Shell expansions in the RayJob entrypoint are not placeholders.
    assert kuberay.placeholders("--date ${CALI_REINDEX_DATE:-$(date)}") == set()


def test_render_command_writes_apply_order_helm_values_and_jobs(tmp_path):
    import json

    outputs = tmp_path / "tf.json"
    values = {k: v for k, v in SAMPLE_VALUES.items() if k != "IMAGE"}
    outputs.write_text(json.dumps({"k8s_values": {"value": values, "type": "map"}}))
    out = tmp_path / "k8s"
    assert kuberay.main(["render", "--tf-outputs", str(outputs), "--image", "img:1", "--out", str(out)]) == 0
    names = sorted(p.relative_to(tmp_path / "k8s").as_posix() for p in (tmp_path / "k8s").rglob("*.yaml"))
    assert names[0].endswith("namespace.yaml")
    assert "jobs/rayjob-reindex.yaml" in names and "helm/milvus-values.yaml" in names
    assert "helm/kuberay-operator-values.yaml" in names
    job = (out / "jobs" / "rayjob-reindex.yaml").read_text()
    assert "${" not in job.replace("${CALI_REINDEX_DATE:-", "")


def test_checkov_kubernetes_passes():
    result = run_checkov("-d", "k8s", "--framework", "kubernetes")
    assert result["passed"] > 0, result["stderr"][-2000:]
    assert not result["failed"], "\n".join(result["failed"])
