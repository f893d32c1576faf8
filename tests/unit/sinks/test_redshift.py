"""The Redshift sink's generated SQL and its Data API path.

Redshift cannot run here. The COPY statement is checked option by option. The Data API
path runs against botocore's Stubber, which walks each statement through SUBMITTED,
STARTED and FINISHED (or FAILED / ABORTED): moto's redshift-data leaves statements
STARTED forever, so it cannot test the polling. The merge SQL itself runs on PostgreSQL in
tests/integration/test_sql_sinks.py.
"""

from __future__ import annotations

import re
from datetime import datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber

from sluiceway.errors import SinkError
from sluiceway.sinks.redshift import DataApiRunner, copy_statement, merge_statements, write_redshift

ROLE = "arn:aws:iam::123456789012:role/redshift-load"


def test_copy_statement_names_staging_source_role_and_parquet_format():
    sql = copy_statement("_slw_stage_1", "s3://my-bucket/stage/orders/", ROLE)

    assert sql == (
        "COPY \"_slw_stage_1\" FROM 's3://my-bucket/stage/orders/' "
        "IAM_ROLE 'arn:aws:iam::123456789012:role/redshift-load' FORMAT AS PARQUET"
    )
    # Option by option: the target, the source, the credentials, the format, and nothing
    # else (no column list, no CSV options, which Parquet COPY refuses).
    m = re.fullmatch(r"COPY (\S+) FROM '([^']+)' IAM_ROLE '([^']+)' FORMAT AS PARQUET", sql)
    assert m is not None
    assert m.groups() == ('"_slw_stage_1"', "s3://my-bucket/stage/orders/", ROLE)
    assert copy_statement("s", "s3://my-bucket/p/", "default").endswith(
        "IAM_ROLE default FORMAT AS PARQUET"
    )


@pytest.mark.parametrize(
    ("uri", "role", "message"),
    [
        ("s3://b/x' IAM_ROLE 'evil", ROLE, "not an s3://bucket/prefix/ URI"),
        ("/local/path/", ROLE, "not an s3://bucket/prefix/ URI"),
        ("s3://my-bucket/p/", "arn:aws:iam::123456789012:role/x' --", "not an IAM role ARN"),
        ("s3://my-bucket/p/", "", "not an IAM role ARN"),
    ],
)
def test_copy_statement_refuses_values_that_would_leave_their_quotes(uri, role, message):
    with pytest.raises(SinkError, match=message):
        copy_statement("s", uri, role)


def test_merge_statement_matches_on_every_key_column_and_updates_the_rest():
    [sql] = merge_statements("public.t", "stg", ["a", "b", "v"], ["a", "b"], "upsert")

    assert sql == (
        'MERGE INTO "public"."t" USING "stg" ON "public"."t"."a" = "stg"."a" AND '
        '"public"."t"."b" = "stg"."b" WHEN MATCHED THEN UPDATE SET "v" = "stg"."v" '
        'WHEN NOT MATCHED THEN INSERT ("a", "b", "v") VALUES ("stg"."a", "stg"."b", "stg"."v")'
    )


def _runner() -> tuple[DataApiRunner, Stubber]:
    client = boto3.client("redshift-data", region_name="us-east-1")
    runner = DataApiRunner(
        client,
        database="dev",
        cluster_identifier="analytics",
        secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:rs",
        sleep=lambda seconds: None,
    )
    return runner, Stubber(client)


def _walk(stub: Stubber, statement_id: str, *states: str, **final: object) -> None:
    for state in states[:-1]:
        stub.add_response("describe_statement", {"Id": statement_id, "Status": state})
    stub.add_response(
        "describe_statement", {"Id": statement_id, "Status": states[-1], **final}, {"Id": ANY}
    )


def test_data_api_transaction_polls_until_finished():
    runner, stub = _runner()
    stub.add_response(
        "batch_execute_statement",
        {"Id": "b1"},
        {
            "Sqls": ["DELETE FROM t", "INSERT INTO t SELECT 1"],
            "Database": "dev",
            "ClusterIdentifier": "analytics",
            "SecretArn": ANY,
        },
    )
    _walk(stub, "b1", "SUBMITTED", "STARTED", "STARTED", "FINISHED")
    with stub:
        runner.transaction(["DELETE FROM t", "INSERT INTO t SELECT 1"])
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("state", ["FAILED", "ABORTED"])
def test_data_api_failed_or_aborted_statement_is_one_clear_error(state):
    runner, stub = _runner()
    stub.add_response("batch_execute_statement", {"Id": "b2"})
    _walk(stub, "b2", "SUBMITTED", "STARTED", state, Error='ERROR: relation "t" does not exist')
    with stub, pytest.raises(SinkError, match=f"statement b2 {state}: ERROR: relation"):
        runner.transaction(["INSERT INTO t SELECT 1"])


def test_data_api_query_passes_parameters_and_reads_every_page():
    runner, stub = _runner()
    stub.add_response(
        "execute_statement",
        {"Id": "q1"},
        {
            "Sql": "SELECT a FROM x WHERE s = :p1 AND t = lower(:p2)",
            "Parameters": [{"name": "p1", "value": "public"}, {"name": "p2", "value": "T"}],
            "Database": "dev",
            "ClusterIdentifier": "analytics",
            "SecretArn": ANY,
        },
    )
    _walk(stub, "q1", "SUBMITTED", "FINISHED", HasResultSet=True)
    stub.add_response(
        "get_statement_result",
        {"Records": [[{"stringValue": "a"}, {"isNull": True}]], "NextToken": "n"},
    )
    stub.add_response(
        "get_statement_result", {"Records": [[{"stringValue": "b"}, {"longValue": 2}]]}
    )
    with stub:
        rows = runner.query("SELECT a FROM x WHERE s = ? AND t = lower(?)", ("public", "T"))
    assert rows == [("a", None), ("b", 2)]


def test_write_redshift_over_the_data_api_runs_copy_and_merge_in_one_batch(spark, tmp_path):
    runner, stub = _runner()
    sent: list[list[str]] = []
    runner.client.meta.events.register(
        "before-parameter-build.redshift-data.BatchExecuteStatement",
        lambda params, **_: sent.append(list(params["Sqls"])),
    )
    columns = [
        [{"stringValue": "id"}, {"stringValue": "integer"}, {"stringValue": "NO"}],
        [{"stringValue": "v"}, {"stringValue": "character varying"}, {"stringValue": "YES"}],
        [
            {"stringValue": "ts"},
            {"stringValue": "timestamp without time zone"},
            {"stringValue": "YES"},
        ],
    ]
    stub.add_response("execute_statement", {"Id": "q"})
    _walk(stub, "q", "STARTED", "FINISHED", HasResultSet=True)
    stub.add_response("get_statement_result", {"Records": columns})
    stub.add_response("batch_execute_statement", {"Id": "b"})
    _walk(stub, "b", "SUBMITTED", "STARTED", "FINISHED")
    df = spark.createDataFrame(
        [(1, "a", datetime(2024, 1, 1)), (1, "b", datetime(2024, 1, 2))],
        "id int, v string, ts timestamp",
    )

    with stub:
        write_redshift(
            spark,
            df,
            runner,
            "serve",
            mode="upsert",
            key=["id"],
            order_by=["ts"],
            staging_uri=str(tmp_path),
            copy_uri="s3://my-bucket/stage",
            iam_role=ROLE,
        )
        stub.assert_no_pending_responses()

    [sqls] = sent
    stage = re.search(r'"(_slw_stage_[0-9a-f]+)"', sqls[0]).group(1)
    assert sqls == [
        f'CREATE TEMP TABLE "{stage}" (LIKE "serve")',
        f"COPY \"{stage}\" FROM 's3://my-bucket/stage/serve/{stage}/' IAM_ROLE '{ROLE}' "
        "FORMAT AS PARQUET",
        *merge_statements("serve", stage, ["id", "v", "ts"], ["id"], "upsert"),
        f'DROP TABLE "{stage}"',
    ]
    assert list((tmp_path / "serve").iterdir()) == []  # staged Parquet removed after the load
