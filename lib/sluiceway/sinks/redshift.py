"""Load a batch into Amazon Redshift: stage Parquet, COPY, then one MERGE transaction.

1. The target's columns are read; new batch columns are added (nullable), incompatible
   ones fail before anything is staged. A missing target is created.
2. The batch, deduplicated by key (newest wins), is written as Parquet under a fresh
   prefix of the staging location, its columns in the target's order (a Parquet COPY maps
   columns by position). An upsert counts, on that write, the rows with a NULL in a key
   column, and refuses the batch if there are any (a NULL key matches no row).
3. One transaction: `CREATE TEMP TABLE stage (LIKE target)`, `COPY stage FROM 's3://...'
   IAM_ROLE '...' FORMAT AS PARQUET`, then `MERGE` (upsert) or DELETE + INSERT (overwrite)
   into the target, then `DROP TABLE stage`. A failure rolls it back.
4. The staged Parquet is deleted, whether or not the load succeeded.

Statements run through Redshift's JDBC driver in the JVM, or through the Redshift Data
API (`BatchExecuteStatement` is one transaction), chosen in the spec.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, Observation, SparkSession

from sluiceway import transforms
from sluiceway.errors import SinkError, located
from sluiceway.jvm_errors import SPARK_ERRORS, describe_spark_error
from sluiceway.sinks import jdbc
from sluiceway.sinks.jdbc import LoadResult
from sluiceway.sinks.parquet import HadoopFs
from sluiceway.sinks.sql import (
    DIALECTS,
    SchemaPlan,
    SqlRunner,
    TargetColumn,
    check_request,
    columns_query,
    ddl_statements,
    observe_null_keys,
    plan_schema,
    refuse_null_keys,
    select_columns,
    to_columns,
)

log = logging.getLogger(__name__)

DIALECT = DIALECTS["redshift"]
DRIVER = "com.amazon.redshift.jdbc42.Driver"
# What may appear inside the quoted literals of a COPY: no quote, backslash or control char.
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/[^'\\\x00-\x1f]*$")
_IAM_ROLE = re.compile(r"^arn:aws[a-z\-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_\-/]{1,512}$")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def copy_statement(staging: str, uri: str, iam_role: str) -> str:
    """`COPY staging FROM 'uri' IAM_ROLE 'arn' FORMAT AS PARQUET`, the values validated."""
    if not _S3_URI.match(uri):
        raise SinkError(f"staging URI {uri!r} is not an s3://bucket/prefix/ URI")
    if iam_role != "default" and not _IAM_ROLE.match(iam_role):
        raise SinkError(f"iam_role {iam_role!r} is not an IAM role ARN (or `default`)")
    role = "default" if iam_role == "default" else _literal(iam_role)
    return f"COPY {DIALECT.quote(staging)} FROM {_literal(uri)} IAM_ROLE {role} FORMAT AS PARQUET"


def merge_statements(
    target: str, staging: str, columns: Sequence[str], key: Sequence[str], mode: str
) -> list[str]:
    """The load statements (after COPY), for Redshift and PostgreSQL 15+ alike."""
    if mode != "upsert":
        # Overwrite is the jdbc sink's DELETE + INSERT (DELETE, not TRUNCATE, which commits
        # the transaction on Redshift as on MySQL); only the upsert differs.
        return jdbc.merge_statements(DIALECT, target, staging, columns, key, mode)
    q = DIALECT.quote_part
    qt, qs = DIALECT.quote(target), DIALECT.quote(staging)
    cols = ", ".join(q(c) for c in columns)
    keys = {k.lower() for k in key}
    on = " AND ".join(f"{qt}.{q(k)} = {qs}.{q(k)}" for k in columns if k.lower() in keys)
    # Redshift's MERGE needs both clauses; a key-only table "updates" the key to itself.
    rest = [c for c in columns if c.lower() not in keys] or [
        c for c in columns if c.lower() in keys
    ]
    update = ", ".join(f"{q(c)} = {qs}.{q(c)}" for c in rest)
    values = ", ".join(f"{qs}.{q(c)}" for c in columns)
    return [
        f"MERGE INTO {qt} USING {qs} ON {on} "
        f"WHEN MATCHED THEN UPDATE SET {update} "
        f"WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values})"
    ]


def staging_statements(
    target: str, staging: str, target_columns: Sequence[TargetColumn], plan: SchemaPlan
) -> list[str]:
    """Create the temp staging table like the target, minus target columns the batch lacks."""
    loaded = {c.lower() for c in plan.columns}
    statements = [f"CREATE TEMP TABLE {DIALECT.quote(staging)} (LIKE {DIALECT.quote(target)})"]
    statements += [
        f"ALTER TABLE {DIALECT.quote(staging)} DROP COLUMN {DIALECT.quote_part(c.name)}"
        for c in target_columns
        if c.name.lower() not in loaded
    ]
    return statements


def ordered_plan(plan: SchemaPlan, target_columns: Sequence[TargetColumn]) -> SchemaPlan:
    """The plan's columns in the target's order (added columns last): COPY maps by position."""
    loaded = {c.lower(): c for c in plan.columns}
    ordered = [loaded.pop(c.name.lower()) for c in target_columns if c.name.lower() in loaded]
    ordered += [c for c in plan.columns if c.lower() in loaded]
    return SchemaPlan(tuple(ordered), plan.added, plan.create)


def write_redshift(
    spark: SparkSession,
    df: DataFrame,
    runner: SqlRunner,
    table: str,
    *,
    mode: str,
    key: Sequence[str] = (),
    order_by: Sequence[str] = (),
    staging_uri: str,
    iam_role: str,
    copy_uri: str | None = None,
    where: str = "",
) -> LoadResult:
    """Load `df` into `table` (see module doc).

    Spark writes the staged Parquet under `staging_uri`; Redshift reads it from `copy_uri`
    (default: `staging_uri` with `s3a://` spelled `s3://`).
    """
    where = where or table
    with located(where, SinkError):
        check_request(DIALECT, table, mode, key, order_by)
        if mode == "upsert":
            df = df.transform(transforms.dedupe_latest, list(key), list(order_by))
        sql, params = columns_query(table, DIALECT)
        target_columns = to_columns(runner.query(sql, params))
        plan = plan_schema(df.schema, target_columns, DIALECT, key, where)
        ddl = ddl_statements(plan, df.schema, table, DIALECT, key)
        staging = f"_slw_stage_{secrets.token_hex(6)}"
        prefix = f"{staging_uri.rstrip('/')}/{table}/{staging}/"
        copy_root = copy_uri or re.sub(r"^s3a://", "s3://", staging_uri)
        copy = copy_statement(staging, f"{copy_root.rstrip('/')}/{table}/{staging}/", iam_role)
        if ddl:
            log.info("%s: %s", where, "; ".join(ddl))
            runner.run(ddl)
            target_columns = to_columns(runner.query(sql, params))
        plan = ordered_plan(plan, target_columns)
        fs = HadoopFs(spark)
        try:
            staged = select_columns(df, plan)
            null_keys: Observation | None = None
            if mode == "upsert":
                staged, null_keys = observe_null_keys(staged, key)
            _stage_parquet(staged, prefix, where)
            if null_keys is not None:
                refuse_null_keys(null_keys, key, where)
            runner.transaction(
                [
                    *staging_statements(table, staging, target_columns, plan),
                    copy,
                    *merge_statements(table, staging, plan.columns, key, mode),
                    f"DROP TABLE {DIALECT.quote(staging)}",
                ]
            )
        finally:
            try:
                fs.delete(prefix)
            except SPARK_ERRORS as exc:
                log.warning("%s: could not delete staged Parquet %s: %s", where, prefix, exc)
        return LoadResult(table, mode, tuple(name for name, _ in plan.added), plan.create)


def _stage_parquet(df: DataFrame, prefix: str, where: str) -> None:
    try:
        # No _SUCCESS marker: COPY would try to load every object under the prefix.
        df.write.option("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false").parquet(prefix)
    except SPARK_ERRORS as exc:
        raise SinkError(
            f"staging Parquet at {prefix}: {describe_spark_error(exc)}; target untouched",
            where=where,
        ) from exc


# ---------------------------------------------------------------------------------------
# The Redshift Data API


_DONE = ("FINISHED", "FAILED", "ABORTED")


@dataclass
class DataApiRunner:
    """Statements through the Redshift Data API (boto3 `redshift-data`).

    `transaction` is one BatchExecuteStatement, which Redshift runs as a single
    transaction; every call polls DescribeStatement until FINISHED, FAILED or ABORTED.
    """

    client: Any
    database: str
    cluster_identifier: str | None = None
    workgroup_name: str | None = None
    secret_arn: str | None = field(default=None, repr=False)
    db_user: str | None = None
    poll_seconds: float = 0.5
    timeout_seconds: float = 3600.0
    sleep: Callable[[float], None] = time.sleep

    def _target(self) -> dict[str, str]:
        args = {"Database": self.database}
        if self.cluster_identifier:
            args["ClusterIdentifier"] = self.cluster_identifier
        if self.workgroup_name:
            args["WorkgroupName"] = self.workgroup_name
        if self.secret_arn:
            args["SecretArn"] = self.secret_arn
        if self.db_user:
            args["DbUser"] = self.db_user
        return args

    def _call(self, name: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(getattr(self.client, name)(**kwargs))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "error"), error.get("Message", "")
            raise SinkError(f"Redshift Data API {name}: {code}: {message}") from exc
        except BotoCoreError as exc:
            raise SinkError(f"Redshift Data API {name}: {exc}") from exc

    def wait(self, statement_id: str) -> dict[str, Any]:
        waited, delay = 0.0, self.poll_seconds
        while True:
            status = self._call("describe_statement", Id=statement_id)
            state = status.get("Status")
            if state == "FINISHED":
                return status
            if state in ("FAILED", "ABORTED"):
                raise SinkError(
                    f"Redshift Data API statement {statement_id} {state}: "
                    f"{status.get('Error') or 'no error message'}"
                )
            if waited >= self.timeout_seconds:
                raise SinkError(
                    f"Redshift Data API statement {statement_id} still {state} after "
                    f"{self.timeout_seconds:.0f}s"
                )
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, 10.0)

    def query(self, sql: str, params: Sequence[str] = ()) -> list[tuple[Any, ...]]:
        named = sql
        for index in range(1, len(params) + 1):
            named = named.replace("?", f":p{index}", 1)
        kwargs: dict[str, Any] = {"Sql": named, **self._target()}
        if params:
            kwargs["Parameters"] = [
                {"name": f"p{i}", "value": v} for i, v in enumerate(params, start=1)
            ]
        statement_id = self._call("execute_statement", **kwargs)["Id"]
        if not self.wait(statement_id).get("HasResultSet"):
            return []
        rows: list[tuple[Any, ...]] = []
        token: str | None = None
        while True:
            page = self._call(
                "get_statement_result", Id=statement_id, **({"NextToken": token} if token else {})
            )
            rows += [tuple(_field_value(f) for f in record) for record in page["Records"]]
            token = page.get("NextToken")
            if not token:
                return rows

    def run(self, statements: Sequence[str]) -> None:
        for sql in statements:
            self.wait(self._call("execute_statement", Sql=sql, **self._target())["Id"])

    def transaction(self, statements: Sequence[str]) -> None:
        response = self._call("batch_execute_statement", Sqls=list(statements), **self._target())
        self.wait(response["Id"])


def _field_value(item: dict[str, Any]) -> Any:
    if item.get("isNull"):
        return None
    for name in ("stringValue", "longValue", "doubleValue", "booleanValue", "blobValue"):
        if name in item:
            return item[name]
    return None
