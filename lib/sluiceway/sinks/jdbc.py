"""Load a batch into RDS PostgreSQL or MySQL (a serving store), safe to rerun.

1. The target's columns are read; new batch columns are added (nullable), incompatible
   ones fail before anything is loaded. A missing target is created with the key as its
   PRIMARY KEY.
2. Spark writes the batch (deduplicated by key, newest wins) into a staging table shaped
   like the target, with batched inserts (`reWriteBatchedInserts` /
   `rewriteBatchedStatements`). An upsert counts, on that write, the rows with a NULL in a
   key column, and refuses the batch if there are any (a NULL key matches no row).
3. One transaction moves staging into the target: `INSERT ... ON CONFLICT (key) DO UPDATE`
   on PostgreSQL, `INSERT ... ON DUPLICATE KEY UPDATE` on MySQL (upsert); DELETE + INSERT
   (overwrite). A failure rolls it back whole.
4. The staging table is dropped, whether or not the load succeeded.

A rerun of the same batch leaves the target identical, in both modes.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation, SparkSession

from sluiceway import transforms
from sluiceway.errors import SinkError, located
from sluiceway.jvm_errors import SPARK_ERRORS, describe_spark_error
from sluiceway.sinks.sql import (
    DIALECTS,
    JvmJdbcRunner,
    SqlDialect,
    SqlRunner,
    check_request,
    columns_query,
    ddl_statements,
    drop_quietly,
    observe_null_keys,
    plan_schema,
    refuse_null_keys,
    select_columns,
    split_name,
    to_columns,
)
from sluiceway.sources.jdbc import JdbcSource
from sluiceway.spec import LOAD_MODES

log = logging.getLogger(__name__)

# Batched inserts: the drivers rewrite a batch of INSERTs into multi-row statements.
BATCH_PROPERTIES = {
    "postgresql": {"reWriteBatchedInserts": "true"},
    "mysql": {"rewriteBatchedStatements": "true"},
}


@dataclass(frozen=True)
class LoadResult:
    table: str
    mode: str
    columns_added: tuple[str, ...]
    created: bool


def staging_name(table: str) -> str:
    """A fresh staging table beside the target: `<schema.>_slw_stage_<hex>`."""
    parts = split_name(table)
    name = f"_slw_stage_{secrets.token_hex(6)}"
    return ".".join([*parts[:-1], name])


def merge_statements(
    dialect: SqlDialect,
    target: str,
    staging: str,
    columns: Sequence[str],
    key: Sequence[str],
    mode: str,
) -> list[str]:
    """The statements of the load transaction, every name validated and quoted."""
    q = dialect.quote_part
    qt, qs = dialect.quote(target), dialect.quote(staging)
    cols = ", ".join(q(c) for c in columns)
    insert = f"INSERT INTO {qt} ({cols}) SELECT {cols} FROM {qs}"
    if mode == "overwrite":
        # DELETE, not TRUNCATE: TRUNCATE commits implicitly on MySQL.
        return [f"DELETE FROM {qt}", insert]
    if mode != "upsert":
        raise SinkError(f"unknown load mode {mode!r} (expected one of {', '.join(LOAD_MODES)})")
    keys = {k.lower() for k in key}
    rest = [c for c in columns if c.lower() not in keys]
    if dialect.name == "mysql":
        # The SELECT's columns are referenced by staging-table name: MySQL and MariaDB both
        # accept that in INSERT ... SELECT ... ON DUPLICATE KEY UPDATE (VALUES() is deprecated).
        select = ", ".join(f"{qs}.{q(c)}" for c in columns)
        update = ", ".join(f"{q(c)} = {qs}.{q(c)}" for c in rest or key[:1])
        return [
            f"INSERT INTO {qt} ({cols}) SELECT {select} FROM {qs} ON DUPLICATE KEY UPDATE {update}"
        ]
    conflict = ", ".join(q(k) for k in key)
    action = (
        "DO UPDATE SET " + ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in rest)
        if rest
        else "DO NOTHING"
    )
    return [f"{insert} ON CONFLICT ({conflict}) {action}"]


def create_staging_statement(dialect: SqlDialect, target: str, staging: str) -> str:
    qt, qs = dialect.quote(target), dialect.quote(staging)
    if dialect.name == "mysql":
        return f"CREATE TABLE {qs} LIKE {qt}"
    # UNLOGGED: staging never needs to survive a crash. LIKE copies types and NOT NULL,
    # not the key or foreign keys, so only the merge itself checks those.
    return f"CREATE UNLOGGED TABLE {qs} (LIKE {qt} INCLUDING DEFAULTS)"


def write_jdbc(
    spark: SparkSession,
    df: DataFrame,
    source: JdbcSource,
    table: str,
    *,
    mode: str,
    key: Sequence[str] = (),
    order_by: Sequence[str] = (),
    batch_size: int = 10_000,
    where: str = "",
    runner: SqlRunner | None = None,
) -> LoadResult:
    """Load `df` into `table` through a staging table and one transaction (see module doc)."""
    where = where or table
    with located(where, SinkError):
        dialect = DIALECTS[source.dialect.engine]
        check_request(dialect, table, mode, key, order_by)
        target = table
        runner = runner or JvmJdbcRunner(
            spark,
            source.url,
            source.description,
            {k: v for k, v in source.properties.items() if k != "driver"},
            driver=source.dialect.driver,
        )
        if mode == "upsert":
            df = df.transform(transforms.dedupe_latest, list(key), list(order_by))
        sql, params = columns_query(target, dialect)
        plan = plan_schema(df.schema, to_columns(runner.query(sql, params)), dialect, key, where)
        ddl = ddl_statements(plan, df.schema, target, dialect, key)
        if ddl:
            log.info("%s: %s", where, "; ".join(ddl))
            runner.run(ddl)
        staging = staging_name(target)
        runner.run([create_staging_statement(dialect, target, staging)])
        try:
            staged = select_columns(df, plan)
            null_keys: Observation | None = None
            if mode == "upsert":
                staged, null_keys = observe_null_keys(staged, key)
            _write_staging(staged, source, staging, batch_size, where)
            if null_keys is not None:
                refuse_null_keys(null_keys, key, where)
            runner.transaction(merge_statements(dialect, target, staging, plan.columns, key, mode))
        finally:
            drop_quietly(runner, f"DROP TABLE IF EXISTS {dialect.quote(staging)}")
        return LoadResult(table, mode, tuple(name for name, _ in plan.added), plan.create)


def _write_staging(
    df: DataFrame, source: JdbcSource, staging: str, batch_size: int, where: str
) -> None:
    props = {
        **source.properties,
        **BATCH_PROPERTIES.get(source.dialect.engine, {}),
        "batchsize": str(batch_size),
    }
    props.pop("fetchsize", None)
    try:
        df.write.jdbc(source.url, source.dialect.quote(staging), mode="append", properties=props)
    except SPARK_ERRORS as exc:
        raise SinkError(
            f"staging {staging}: {describe_spark_error(exc)}; target untouched", where=where
        ) from exc
