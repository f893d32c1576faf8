"""sluiceway.iam: the statements each part of a spec brings (IAM enforcement itself is
tested against moto in tests/integration/test_iam_policy.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sluiceway import cli, iam
from sluiceway.errors import SluicewayError

ROOT = Path(__file__).resolve().parents[2]
TARGET = iam.Target(account="123456789012", region="eu-west-1")


def _spec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(
        '[pipeline]\nname = "p"\noutput = "s3://lake/p"\n\n'
        '[connections.db]\nengine = "postgresql"\nhost = "h"\ndatabase = "d"\nuser = "u"\n'
        'secret_id = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds/p-AbCdEf"\n' + body,
        encoding="utf-8",
    )
    return path


def _by_sid(doc: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in doc["Statement"]}


def test_a_batch_spec_on_s3_gets_its_prefixes_its_table_and_its_secret(tmp_path):
    path = _spec(
        tmp_path,
        '[tables.t]\ntable = "t"\nprimary_key = ["id"]\n'
        'sink = { path = "s3://other/t" }\ncatalog = { database = "db" }\n',
    )
    doc = iam.job_policy(iam.load_any_spec(str(path), None, None, None), TARGET)
    s = _by_sid(doc)
    assert s["ListTheBuckets"]["Resource"] == ["arn:aws:s3:::lake", "arn:aws:s3:::other"]
    assert "Condition" not in s["ListTheBuckets"]
    assert s["ReadAndWriteTheData"]["Resource"] == [
        "arn:aws:s3:::lake/p/_quarantine/t",
        "arn:aws:s3:::lake/p/_quarantine/t/*",
        "arn:aws:s3:::lake/p/_staging",
        "arn:aws:s3:::lake/p/_staging/*",
        "arn:aws:s3:::other/t",
        "arn:aws:s3:::other/t/*",
    ]
    assert s["KeepTheRunStateAndLock"]["Resource"] == [
        "arn:aws:s3:::lake/p/_state",
        "arn:aws:s3:::lake/p/_state/*",
    ]
    assert s["KeepTheGlueTablesInStep"]["Resource"] == [
        "arn:aws:glue:eu-west-1:123456789012:catalog",
        "arn:aws:glue:eu-west-1:123456789012:database/db",
        "arn:aws:glue:eu-west-1:123456789012:table/db/t",
    ]
    assert s["ReadTheSecrets"]["Resource"] == [
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds/p-AbCdEf"
    ]
    # No platform given: only what the run itself calls.
    assert not {"ReadTheArtifactSet", "ReadTheGlueConnections"} & s.keys()


def test_a_redshift_data_api_load_gets_the_statement_calls_and_its_credentials(tmp_path):
    path = _spec(
        tmp_path,
        '[tables.t]\ntable = "t"\nprimary_key = ["id"]\nincremental_column = "id"\n'
        '[[tables.t.load]]\nkind = "redshift"\nvia = "data_api"\ntable = "public.t"\n'
        'database = "dev"\ncluster_identifier = "wh"\ndb_user = "etl"\n'
        'iam_role = "arn:aws:iam::1:role/r"\n',
    )
    s = _by_sid(iam.job_policy(iam.load_any_spec(str(path), None, None, None), TARGET))
    assert s["RunTheRedshiftLoads"]["Resource"] == [
        "arn:aws:redshift:eu-west-1:123456789012:cluster:wh"
    ]
    assert s["FollowTheRedshiftStatements"]["Action"] == [
        "redshift-data:DescribeStatement",
        "redshift-data:GetStatementResult",
    ]
    assert s["GetTemporaryRedshiftCredentials"]["Resource"] == [
        "arn:aws:redshift:eu-west-1:123456789012:dbname:wh/dev",
        "arn:aws:redshift:eu-west-1:123456789012:dbuser:wh/etl",
    ]
    assert "arn:aws:s3:::lake/p/_staging/*" in s["ReadAndWriteTheData"]["Resource"]


def test_a_stream_spec_reads_its_kinesis_stream_and_keeps_a_checkpoint():
    spec = iam.load_any_spec(str(ROOT / "pipelines" / "clickstream.toml"), "s3://l/c", None, None)
    s = _by_sid(iam.job_policy(spec, TARGET))
    assert s["ReadTheStream"]["Resource"] == [
        "arn:aws:kinesis:us-east-1:123456789012:stream/sluiceway-clickstream"
    ]
    assert "kinesis:GetRecords" in s["ReadTheStream"]["Action"]
    assert s["KeepTheRunStateAndLock"]["Resource"][0].startswith("arn:aws:s3:::l/c/_checkpoints")


def test_a_glue_job_with_a_connection_may_open_network_interfaces(tmp_path):
    path = _spec(tmp_path, '[tables.t]\ntable = "t"\nprimary_key = ["id"]\n')
    target = iam.Target(
        account="1", region="r", platform="glue", bucket="art", connections=("rds-vpc",)
    )
    s = _by_sid(iam.job_policy(iam.load_any_spec(str(path), None, None, None), target))
    assert s["ReadTheGlueConnections"]["Resource"] == [
        "arn:aws:glue:r:1:catalog",
        "arn:aws:glue:r:1:connection/rds-vpc",
    ]
    assert "ec2:CreateNetworkInterface" in s["RunInTheConnectionsVpc"]["Action"]
    assert s["ReadTheArtifactSet"]["Resource"] == ["arn:aws:s3:::art/sluiceway/artifacts/p/*"]
    assert "arn:aws:s3:::art" in s["ListTheBuckets"]["Resource"]


def test_the_deployer_needs_a_platform_and_a_bucket(tmp_path):
    path = _spec(tmp_path, '[tables.t]\ntable = "t"\nprimary_key = ["id"]\n')
    with pytest.raises(SluicewayError, match="--platform glue|emr and --bucket"):
        iam.deployer_policy(iam.load_any_spec(str(path), None, None, None), TARGET)


def test_the_command_prints_one_json_policy(tmp_path, capsys):
    path = _spec(tmp_path, '[tables.t]\ntable = "t"\nprimary_key = ["id"]\n')
    args = ["iam", str(path), "--account", "1", "--region", "r", "--role", "deployer"]
    assert cli.main([*args, "--platform", "emr", "--bucket", "art", "--job-role", "emr"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert _by_sid(doc)["PassTheJobRole"]["Resource"] == ["arn:aws:iam::1:role/emr"]


def test_a_glue_connection_login_is_read_by_the_job_and_checked_by_the_deployer(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(
        '[pipeline]\nname = "g"\noutput = "s3://lake/g"\n\n'
        '[connections.db]\nengine = "postgresql"\nglue_connection = "rds-orders"\n\n'
        '[tables.t]\ntable = "t"\nprimary_key = ["id"]\n',
        encoding="utf-8",
    )
    spec = iam.load_any_spec(str(path), None, None, None)
    rds = "arn:aws:glue:eu-west-1:123456789012:connection/rds-orders"
    job = _by_sid(iam.job_policy(spec, TARGET))
    assert rds in job["ReadTheGlueConnections"]["Resource"]
    assert "RunInTheConnectionsVpc" not in job  # a local run opens no network interfaces
    on_glue = iam.Target(account="123456789012", region="eu-west-1", platform="glue", bucket="a")
    assert "RunInTheConnectionsVpc" in _by_sid(iam.job_policy(spec, on_glue))
    deployer = _by_sid(iam.deployer_policy(spec, on_glue))
    assert deployer["CheckTheSpecsGlueConnections"]["Resource"][-1] == rds


def test_a_policy_over_iams_size_limit_is_printed_with_a_warning(tmp_path, capsys):
    tables = "".join(
        f'[tables.table_number_{i}]\ntable = "t{i}"\nprimary_key = ["id"]\n' for i in range(60)
    )
    path = _spec(tmp_path, tables)
    assert cli.main(["iam", str(path)]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)["Statement"]) == 4
    assert "over IAM's 6144 for a managed policy" in captured.err
