"""infra/terraform, offline: it parses, it is formatted, checkov passes, and it has what the design needs."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.deploy.iac import (
    KUBERAY,
    PLACEHOLDER,
    REPO,
    TERRAFORM,
    load_hcl,
    root_module,
    run_checkov,
    tf_text,
    tool,
)

HCL_FILES = sorted([*TERRAFORM.rglob("*.tf"), *TERRAFORM.rglob("*.tfvars"), *TERRAFORM.rglob("*.tfbackend")])


@pytest.mark.parametrize("path", HCL_FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_file_parses(path):
    assert load_hcl(path) is not None


def test_terraform_fmt():
    terraform = tool("bin", "terraform")
    proc = subprocess.run([str(terraform), "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"terraform fmt would change:\n{proc.stdout}{proc.stderr}"


def test_checkov_terraform_passes():
    result = run_checkov("-d", "infra/terraform", "--framework", "terraform")
    assert result["passed"] > 100, result["stderr"][-2000:]
    assert not result["failed"], "\n".join(result["failed"])


def _resources(rtype):
    return root_module()["resource"].get(rtype, {})


def _one(rtype):
    found = _resources(rtype)
    assert found, f"no {rtype} in infra/terraform"
    return next(iter(found.values()))


def test_kinesis_stream_encrypted_with_capacity_mode_variable():
    stream = _one("aws_kinesis_stream")
    assert stream["encryption_type"] == "KMS"
    assert "var.kinesis_on_demand" in stream["stream_mode_details"][0]["stream_mode"]
    assert "var.kinesis_shard_count" in stream["shard_count"]


def test_firehose_copies_the_stream_to_s3_and_indexes_into_opensearch():
    streams = _resources("aws_kinesis_firehose_delivery_stream")
    to_s3 = [s for s in streams.values() if s["destination"] == "extended_s3"]
    to_os = [s for s in streams.values() if s["destination"] == "opensearch"]
    assert to_s3 and "aws_kinesis_stream.logs.arn" in to_s3[0]["kinesis_source_configuration"][0]["kinesis_stream_arn"]
    opensearch = to_os[0]["opensearch_configuration"][0]
    assert opensearch["s3_backup_mode"] == "FailedDocumentsOnly"
    assert opensearch["vpc_config"], "the domain is in the VPC, so Firehose must deliver through it"


def test_buckets_are_versioned_encrypted_private_and_expire():
    buckets = _one("aws_s3_bucket")
    assert "local.buckets" in buckets["for_each"]
    names = root_module()["locals"]["buckets"]
    assert {"archive", "reports"} <= set(names)
    for rtype in ("aws_s3_bucket_versioning", "aws_s3_bucket_public_access_block",
                  "aws_s3_bucket_server_side_encryption_configuration", "aws_s3_bucket_policy"):
        assert any("aws_s3_bucket.this" in r.get("for_each", "") for r in _resources(rtype).values()), rtype
    archive_rules = {r["id"] for r in _resources("aws_s3_bucket_lifecycle_configuration")["archive"]["rule"]}
    assert {"raw", "dlq"} <= archive_rules


def test_dynamodb_tables_match_the_state_design():
    tables = root_module()["locals"]["tables"]
    assert tables["checkpoints"]["hash"] == {"name": "shard_key", "type": "S"}
    assert tables["checkpoints"]["range"] is None
    assert tables["state"]["hash"] == {"name": "pk", "type": "S"}
    assert tables["state"]["range"] == {"name": "sk", "type": "S"}
    assert tables["outbox"]["hash"] == {"name": "pk", "type": "S"}
    assert tables["outbox"]["range"] == {"name": "seq", "type": "N"}
    table = _one("aws_dynamodb_table")
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["point_in_time_recovery"][0]["enabled"] is True
    assert table["server_side_encryption"][0]["enabled"] is True


def test_secrets_exist_without_values():
    app = root_module()["locals"]["app_secrets"]
    assert {"slack-webhook", "slack-bot-token", "llm-api-key", "analyze-api-token"} <= set(app)
    versions = _resources("aws_secretsmanager_secret_version")
    # Only the Redis AUTH token gets a value from Terraform, and it is generated, never written down.
    assert list(versions) == ["redis_auth"]
    assert versions["redis_auth"]["secret_string"] == "${random_password.redis_auth.result}"


def test_opensearch_in_vpc_encrypted_with_fine_grained_access():
    domain = _one("aws_opensearch_domain")
    assert domain["vpc_options"]
    assert domain["encrypt_at_rest"][0]["enabled"] is True
    assert domain["node_to_node_encryption"][0]["enabled"] is True
    assert domain["domain_endpoint_options"][0]["enforce_https"] is True
    security = domain["advanced_security_options"][0]
    assert security["enabled"] is True and security["anonymous_auth_enabled"] is False


def test_redis_for_gcs_fault_tolerance_is_encrypted():
    redis = _one("aws_elasticache_replication_group")
    assert redis["engine"] == "redis"
    assert redis["transit_encryption_enabled"] is True and redis["at_rest_encryption_enabled"] is True
    assert "random_password.redis_auth" in redis["auth_token"]


def test_ecr_scans_on_push():
    repo = _one("aws_ecr_repository")
    assert repo["image_scanning_configuration"][0]["scan_on_push"] is True
    assert repo["image_tag_mutability"] == "IMMUTABLE"


def test_alarms_cover_iterator_age_firehose_and_dlq():
    metrics = {a["metric_name"] for a in _resources("aws_cloudwatch_metric_alarm").values()}
    assert "GetRecords.IteratorAgeMilliseconds" in metrics
    assert {"DeliveryToAmazonOpenSearchService.Success", "DeliveryToS3.Success"} <= metrics
    dlq = _resources("aws_cloudwatch_metric_alarm")["dlq_growth"]
    assert "aws_s3_bucket_metric.dlq" in dlq["dimensions"]["FilterId"]
    assert _resources("aws_s3_bucket_metric")["dlq"]["filter"][0]["prefix"] == "dlq/"


def test_community_modules_pinned_to_exact_versions():
    modules = root_module()["module"]
    assert {"vpc", "eks"} <= set(modules)
    assert modules["vpc"]["source"] == "terraform-aws-modules/vpc/aws"
    assert modules["eks"]["source"] == "terraform-aws-modules/eks/aws"
    for name, module in modules.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", module["version"]), f"module {name}: pin an exact version"


def test_eks_has_managed_node_groups_pod_identity_and_network_policy():
    eks = root_module()["module"]["eks"]
    assert {"system", "ray"} <= set(eks["eks_managed_node_groups"])
    assert "eks-pod-identity-agent" in eks["addons"]
    assert "enableNetworkPolicy" in eks["addons"]["vpc-cni"]["configuration_values"]


def test_remote_state_in_s3_with_lock_file():
    versions = load_hcl(TERRAFORM / "versions.tf")
    assert "s3" in versions["terraform"][0]["backend"][0]
    for env in ("dev", "prod"):
        backend = load_hcl(TERRAFORM / "envs" / f"{env}.s3.tfbackend")
        assert backend["use_lockfile"] is True and backend["encrypt"] is True
        assert "bucket" not in backend, "the bucket name (with the account id) is passed at init, not written"


def test_variables_have_description_and_type_and_tfvars_set_only_them():
    variables = root_module()["variable"]
    for name, var in variables.items():
        assert var.get("description") and var.get("type"), f"variable {name} needs a description and a type"
    for env in ("dev", "prod"):
        assigned = set(load_hcl(TERRAFORM / "envs" / f"{env}.tfvars"))
        assert assigned <= set(variables), f"{env}.tfvars sets undeclared {sorted(assigned - set(variables))}"


def _policy(name):
    return root_module()["data"]["aws_iam_policy_document"][name]


def _actions(name):
    return {a for s in _policy(name)["statement"] for a in s["actions"]}


def test_fluent_bit_role_can_only_put_records():
    assert _actions("fluent_bit") == {"kinesis:PutRecords", "kinesis:PutRecord", "kinesis:DescribeStream",
                                      "firehose:PutRecordBatch", "kms:GenerateDataKey"}


def test_ray_role_has_the_table_actions_of_the_state_design():
    dynamodb = {a for a in _actions("ray") if a.startswith("dynamodb:")}
    assert dynamodb == {f"dynamodb:{a}" for a in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query",
                                                   "ConditionCheckItem", "BatchGetItem", "DescribeTable")}
    s3 = [s for s in _policy("ray")["statement"] if s["actions"] == ["s3:PutObject"]][0]
    assert sorted(s3["resources"]) == ["${local.archive_arn}/dlq/*", "${local.archive_arn}/raw/*"]


def test_pod_roles_cover_every_service_account_the_manifests_use():
    from tests.deploy.iac import yaml_docs

    pod_roles = root_module()["locals"]["pod_roles"]
    bound = set(re.findall(r'namespace = "([a-z-]+)", service_account = "([a-z-]+)"', pod_roles))
    used = set()
    for path in KUBERAY.glob("*.yaml"):
        text = path.read_text()
        used |= {("cali", sa) for sa in re.findall(r"serviceAccountName: ([a-z-]+)", text)}
    assert used and used <= bound, f"service accounts without a role: {sorted(used - bound)}"
    declared = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in yaml_docs(KUBERAY / "serviceaccount.yaml")}
    assert used <= declared


def test_github_trust_subjects_are_repo_scoped():
    roles = root_module()["locals"]["github_roles"]
    subjects = re.findall(r'"(repo:\$\{var\.github_repository\}:[^"]+)"', roles)
    assert sorted(set(s.split(":", 2)[2] for s in subjects)) == [
        "environment:${var.github_environment}", "pull_request", "ref:refs/heads/main"]
    trust = _policy("github_trust")["statement"][0]
    tests = {(c["test"], c["variable"]) for c in trust["condition"]}
    assert {("StringEquals", "${local.github_host}:sub"), ("StringEquals", "${local.github_host}:aud")} <= tests


def test_every_manifest_placeholder_is_a_terraform_output():
    keys = set(root_module()["output"]["k8s_values"]["value"])
    used: dict[str, set[str]] = {}
    for path in [*KUBERAY.glob("*.yaml"), *(REPO / "k8s" / "milvus").glob("*.yaml")]:
        if path.name == "rayservice.in.yaml":
            continue
        for name in PLACEHOLDER.findall(path.read_text()):
            used.setdefault(name, set()).add(path.name)
    missing = {n: sorted(f) for n, f in used.items() if n not in keys | {"IMAGE"}}
    assert not missing, f"placeholders with no k8s_values output: {missing}"


# --- nothing secret or account-specific in the repository ---------------------------------------
DEPLOY_FILES = sorted(p for p in [*TERRAFORM.rglob("*"), *(REPO / "k8s").rglob("*"), *(REPO / ".github").rglob("*"),
                                  *(REPO / "infra").glob("*.yaml"), *(REPO / "infra" / "tools").glob("*.txt"),
                                  REPO / "Dockerfile", REPO / "docs" / "deploy.md"] if p.is_file())
FORBIDDEN = {
    "AWS account id": re.compile(r"(?<![\w.])\d{12}(?![\w.])"),  # not inside a hash or a version
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    "AWS secret access key": re.compile(r"(?i)aws_secret_access_key\s*[:=]\s*[\"']?[A-Za-z0-9/+]{40}"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Slack webhook URL": re.compile(r"hooks\.slack\.com/services/T[A-Z0-9]+/"),
    "OpenAI-style key": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}
# Values that look like account ids but are not: AWS's own service accounts never appear here either,
# so the only exemption is the all-zero placeholder account the tests render with.
ALLOWED = {"000000000000"}


def test_no_secret_or_account_id_in_deploy_files():
    found = []
    for path in DEPLOY_FILES:
        text = path.read_text(errors="replace")
        for what, pattern in FORBIDDEN.items():
            found += [f"{path.relative_to(REPO)}: {what}: {m.group(0)[:24]}" for m in pattern.finditer(text)
                      if m.group(0) not in ALLOWED]
    assert not found, "\n".join(found)


def test_no_literal_secret_assignment_in_terraform():
    literal = re.compile(r'^\s*(\w*(?:password|secret_string|auth_token|api_key|token))\s*=\s*"(?!\$\{)', re.M)
    assert not literal.findall(tf_text())


def test_the_secret_scan_catches_what_it_looks_for():
    samples = {"AWS account id": "arn:aws:iam::123456789012:role/x", "AWS access key id": "AKIAABCDEFGHIJKLMNOP",
               "Slack token": "xoxb-1234567890-abcdef", "Slack webhook URL": "https://hooks.slack.com/services/T0/B0/x",
               "OpenAI-style key": "sk-abcdefghijklmnopqrstuvwx", "private key": "-----BEGIN RSA PRIVATE KEY-----"}
    for what, sample in samples.items():
        assert FORBIDDEN[what].search(sample), what
    assert FORBIDDEN["AWS account id"].search("bucket cali-archive-123456789012-eu-west-1")
    assert not FORBIDDEN["AWS account id"].search("version 1.10.0 and 10.40.224.0/20, 3600 s, sha256:ab633882321827cd")
