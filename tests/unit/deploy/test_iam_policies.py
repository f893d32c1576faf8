"""docs/iam (written by scripts/iam_docs.py with `sluiceway iam`): current, valid, and
covering every S3 location the deployed jobs use, and no more."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
from pathlib import Path

import pytest

from sluiceway.deploy.aws import Uploaded, artifacts_prefix
from sluiceway.deploy.emr import EmrSubmitOptions, driver_log_uri, start_job_run_request
from sluiceway.deploy.glue import GlueJobOptions, job_definition
from sluiceway.deploy.package import build_artifacts

ROOT = Path(__file__).resolve().parents[3]


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location("sluiceway_iam_docs_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


iam_docs = _load_script(ROOT / "scripts" / "iam_docs.py")
POLICIES = ROOT / "docs" / "iam"
VALUES = {
    "ArtifactsBucket": "acme-artifacts",
    "ArtifactsPrefix": "sluiceway",
    "Pipeline": "tpch_demo",
    "DataBucket": "acme-lake",
    "DataPrefix": "tpch_demo",
    "SecretName": "rds/tpch",
    "SaltSecretName": "etl/salt",
    "ConnectionName": "rds-vpc",
    "Region": "eu-west-1",
    "Account": "123456789012",
    "JobName": "tpch",
    "GlueRoleName": "sluiceway-glue",
    "EmrRoleName": "sluiceway-emr",
}


def policy(name: str) -> dict:
    text = (POLICIES / name).read_text()
    used = set(re.findall(r"\$\{(\w+)\}", text))
    assert used <= set(VALUES), f"{name}: unknown placeholders {used - set(VALUES)}"
    for key, value in VALUES.items():
        text = text.replace("${" + key + "}", value)
    doc = json.loads(text)
    assert doc["Version"] == "2012-10-17"
    for statement in doc["Statement"]:
        assert statement.keys() >= {"Sid", "Effect", "Action", "Resource"}, statement
        assert statement["Effect"] == "Allow"
    return doc


def allowed(doc: dict, action: str, resource: str) -> bool:
    for statement in doc["Statement"]:
        if action in statement["Action"] and any(
            fnmatch.fnmatchcase(resource, pattern) for pattern in statement["Resource"]
        ):
            return True
    return False


def s3_arn(uri: str) -> str:
    return "arn:aws:s3:::" + uri.removeprefix("s3://")


@pytest.fixture(scope="module")
def uploaded(tmp_path_factory):
    artifacts = build_artifacts(ROOT / "pipelines" / "tpch_demo.toml", tmp_path_factory.mktemp("d"))
    base = f"s3://acme-artifacts/{artifacts_prefix('sluiceway', artifacts)}"
    uris = {f.role: f"{base}/{f.path}" for f in artifacts.files if f.role != "jar"}
    jars = tuple(f"{base}/{f.path}" for f in artifacts.jars)
    return artifacts, Uploaded("acme-artifacts", base, uris, jars, 0, 0)


@pytest.mark.parametrize("name", sorted(p.name for p in POLICIES.glob("*.json")))
def test_policies_are_valid_and_never_grant_everything(name):
    doc = policy(name)
    for statement in doc["Statement"]:
        actions = statement["Action"]
        assert not [a for a in actions if a.endswith(":*") or a == "*"], statement["Sid"]
        if "*" in statement["Resource"]:
            # Only actions that cannot be scoped to a resource, each with a reason in its Sid.
            assert set(actions) <= UNSCOPED, statement["Sid"]


# Actions AWS does not scope to a resource (or, for ENIs, whose resources Glue names).
UNSCOPED = {
    "cloudwatch:PutMetricData",
    "emr-serverless:ListApplications",
    "emr-serverless:CreateApplication",
    "redshift-data:DescribeStatement",
    "redshift-data:GetStatementResult",
    "ec2:DescribeSubnets",
    *iam_docs.iam.GLUE_VPC_ACTIONS,
}


def test_docs_iam_is_what_sluiceway_iam_prints_now(capsys):
    assert iam_docs.main(["--check"]) == 0, capsys.readouterr().out


def test_glue_role_covers_what_the_glue_job_reads_and_writes(uploaded):
    artifacts, up = uploaded
    doc = policy("glue-job-role.json")
    definition = job_definition(GlueJobOptions("tpch", "r", "acme-artifacts"), artifacts, up, "r")
    args = definition["DefaultArguments"]
    reads = [definition["Command"]["ScriptLocation"], args["--spec"], args["--extra-py-files"]]
    reads += args["--extra-jars"].split(",")
    for uri in reads:
        assert allowed(doc, "s3:GetObject", s3_arn(uri)), uri
        assert not allowed(doc, "s3:PutObject", s3_arn(uri)), f"the job may not rewrite {uri}"
    assert allowed(doc, "s3:PutObject", s3_arn(args["--TempDir"] + "part-0001"))
    for key in ("warehouse/tpch_demo/orders/data/x.parquet", "bronze/lineitem/x.parquet",
                "_state/tpch_demo/runs/latest.json", "_staging/orders/x.parquet",
                "_quarantine/orders/x.parquet"):  # fmt: skip
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert allowed(doc, action, f"arn:aws:s3:::acme-lake/tpch_demo/{key}"), (action, key)
    assert not allowed(doc, "s3:PutObject", "arn:aws:s3:::acme-lake/other_pipeline/x")
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds/tpch-AbCdEf"
    assert allowed(doc, "secretsmanager:GetSecretValue", secret)
    assert not allowed(doc, "secretsmanager:GetSecretValue", secret.replace("tpch", "other"))


def test_emr_role_covers_what_the_job_run_reads_and_writes(uploaded):
    artifacts, up = uploaded
    doc = policy("emr-serverless-execution-role.json")
    options = EmrSubmitOptions("app", "r", "acme-artifacts")
    request = start_job_run_request(options, artifacts, up, "00abc", "r", "t")
    driver = request["jobDriver"]["sparkSubmit"]
    params = driver["sparkSubmitParameters"].split()
    reads = [driver["entryPoint"], driver["entryPointArguments"][1]]
    reads += [
        params[params.index("--py-files") + 1],
        *params[params.index("--jars") + 1].split(","),
    ]
    for uri in reads:
        assert allowed(doc, "s3:GetObject", s3_arn(uri)), uri
    log_uri = request["configurationOverrides"]["monitoringConfiguration"][
        "s3MonitoringConfiguration"
    ]["logUri"]
    assert allowed(doc, "s3:PutObject", s3_arn(driver_log_uri(log_uri, "00abc", "00run")))
    assert allowed(doc, "s3:PutObject", "arn:aws:s3:::acme-lake/tpch_demo/bronze/lineitem/x")
    assert not allowed(doc, "s3:PutObject", s3_arn(driver["entryPoint"]))


@pytest.mark.parametrize(
    ("name", "service", "role"),
    [
        ("deployer-glue.json", "glue.amazonaws.com", "sluiceway-glue"),
        ("deployer-emr.json", "emr-serverless.amazonaws.com", "sluiceway-emr"),
    ],
)
def test_deployer_may_pass_the_job_role_only_to_its_service(name, service, role):
    doc = policy(name)
    passes = [s for s in doc["Statement"] if s["Action"] == ["iam:PassRole"]]
    assert passes == [
        {
            "Sid": "PassTheJobRole",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": [f"arn:aws:iam::123456789012:role/{role}"],
            "Condition": {"StringEquals": {"iam:PassedToService": service}},
        }
    ]
    # HeadBucket (check_bucket) needs ListBucket on the bucket, with no prefix condition.
    assert allowed(doc, "s3:ListBucket", "arn:aws:s3:::acme-artifacts")
    assert not [s for s in doc["Statement"] if "s3:prefix" in json.dumps(s)]


def test_the_glue_deployer_may_create_the_network_connection_and_run_its_job():
    doc = policy("deployer-glue.json")
    connection = "arn:aws:glue:eu-west-1:123456789012:connection/rds-vpc"
    for action in ("glue:GetConnection", "glue:CreateConnection"):
        assert allowed(doc, action, connection)
    assert allowed(doc, "ec2:DescribeSubnets", "*")
    for action in ("glue:CreateJob", "glue:UpdateJob", "glue:StartJobRun"):
        assert allowed(doc, action, "arn:aws:glue:eu-west-1:123456789012:job/tpch")
        assert not allowed(doc, action, "arn:aws:glue:eu-west-1:123456789012:job/other")
