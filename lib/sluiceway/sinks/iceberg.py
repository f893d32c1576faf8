"""Iceberg tables: the second kind of dataset, written through Spark SQL and the
DataFrameWriterV2, each write one atomic Iceberg commit.

Every write carries commit properties (the run id and the table's new watermark) into the
snapshot summary of the commit that lands its rows, so the data and its watermark move
together: a run killed before the commit leaves the old snapshot with the old watermark,
one killed after it the new snapshot with the new one. `committed()` reads them back from
the newest snapshot in the table's current history that has them.

Commit properties go through Iceberg's `CommitMetadata.withCommitProperties`, which holds
them for the JVM thread running the write. The write option `snapshot-property.*` would
serve the DataFrameWriterV2 but not MERGE INTO, and the session setting
`spark.sql.iceberg.snapshot-property.*` is ignored by Iceberg 1.10 (checked on 3.5 with
1.10.0: no property; 4.1 with 1.11.0 honours it), so the one path that works for every
statement on both lines is the JVM call, with the statement run from a py4j callback (the
callback runs on the JVM thread that made the call, where the properties are held).
"""

from __future__ import annotations

import json
import logging
import operator
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import reduce
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sluiceway import faults
from sluiceway.errors import SinkError, SluicewayError, located
from sluiceway.iceberg_conf import aws_client_settings, catalog_prefix, catalog_settings
from sluiceway.jvm_errors import SPARK_ERRORS
from sluiceway.sinks.dataset import Batch
from sluiceway.sinks.iceberg_schema import (
    SchemaChanges,
    schema_changes,
    with_missing_as_null,
)
from sluiceway.sinks.parquet import WriteResult
from sluiceway.sources.credentials import Credentials
from sluiceway.spec import IcebergCatalog, IcebergSink, WriteMode
from sluiceway.transforms.dedupe import dedupe_latest

log = logging.getLogger(__name__)

# Snapshot summary keys Sluiceway writes on every commit.
RUN_ID_PROPERTY = "sluiceway.run-id"
WATERMARK_PROPERTY = "sluiceway.watermark"
# What a run's report shows of each commit: Iceberg's snapshot summary counters.
COMMIT_COUNTERS = (
    "added-records",
    "deleted-records",
    "added-data-files",
    "deleted-data-files",
    "added-delete-files",
    "removed-delete-files",
)
# Columns that differ between two runs of the same rows: not part of a row's identity.
AUDIT_COLUMNS = ("_run_id", "_extracted_at", "_source")


def catalog_conf(catalog: IcebergCatalog, credentials: Credentials | None = None) -> dict[str, str]:
    """The Spark settings that register `catalog` (spark.sql.catalog.<name>.*)."""
    conf = catalog_settings(catalog)
    if catalog.type != "jdbc":
        return conf
    if credentials is None:
        raise SluicewayError(f"catalog {catalog.name}: a jdbc catalog needs its credentials")
    prefix = catalog_prefix(catalog)
    port = f":{credentials.port}" if credentials.port else ""
    conf.update(
        {
            f"{prefix}.uri": f"jdbc:postgresql://{credentials.host}{port}/{credentials.database}",
            f"{prefix}.jdbc.user": credentials.user,
            f"{prefix}.jdbc.password": credentials.password,
        }
    )
    return conf


def register_catalog(
    spark: SparkSession,
    catalog: IcebergCatalog,
    credentials: Credentials | None = None,
    *,
    namespace: str | None = None,
    where: str | None = None,
) -> None:
    """Make `catalog` usable in `spark` (catalogs load lazily, so a runtime setting works);
    in a glue catalog, also create `namespace` (a Glue database) if it is missing."""
    if catalog.type == "jdbc":
        # Iceberg opens its connections with DriverManager, which only sees drivers on the
        # JVM's class path; Spark's registry makes the spark.jars driver visible to it.
        jvm: Any = spark.sparkContext._jvm
        jvm.org.apache.spark.sql.execution.datasources.jdbc.DriverRegistry.register(
            "org.postgresql.Driver"
        )
    conf = catalog_conf(catalog, credentials)
    conf.update(aws_client_settings(catalog, os.environ, _aws_region()))
    for key, value in conf.items():
        spark.conf.set(key, value)
    if catalog.type == "glue" and namespace is not None:
        # GlueCatalog creates no database on its own: a table's first write would fail.
        place = where or f"catalogs.{catalog.name}"
        with located(place, SinkError, doing=f"creating Glue database {namespace}"):
            spark.sql(f"CREATE NAMESPACE IF NOT EXISTS `{catalog.name}`.`{namespace}`")


def _aws_region() -> str | None:
    import boto3  # the package's one dependency; the region as every boto3 client sees it

    return boto3.session.Session().region_name


class _Statement:
    """A py4j callback (java.util.concurrent.Callable) running one write in Python; its
    error is kept to be raised again on the Python side."""

    def __init__(self, write: Callable[[], None]) -> None:
        self.write = write
        self.error: Exception | None = None

    def call(self) -> None:
        try:
            self.write()
        except Exception as exc:  # re-raised as is on the Python side, after the JVM call
            self.error = exc
            raise
        return None

    class Java:
        implements = ["java.util.concurrent.Callable"]


def with_commit_properties(
    spark: SparkSession, properties: Mapping[str, str], write: Callable[[], None]
) -> None:
    """Run `write` so every Iceberg commit it makes carries `properties` in its summary."""
    if not properties:
        write()
        return
    from pyspark.java_gateway import ensure_callback_server_started

    gateway: Any = spark.sparkContext._gateway
    ensure_callback_server_started(gateway)
    jvm: Any = spark.sparkContext._jvm
    java_props = jvm.java.util.HashMap()
    for key, value in properties.items():
        java_props.put(key, value)
    statement = _Statement(write)
    error_class = jvm.java.lang.Class.forName("java.lang.RuntimeException")
    try:
        jvm.org.apache.iceberg.spark.CommitMetadata.withCommitProperties(
            java_props, statement, error_class
        )
    except SPARK_ERRORS:
        if statement.error is not None:
            raise statement.error from None
        raise


@dataclass
class IcebergDataset:
    """An Iceberg table in a hadoop, jdbc or glue catalog."""

    spark: SparkSession
    sink: IcebergSink
    where: str  # the spec location errors name
    primary_key: tuple[str, ...] = ()
    incremental_column: str | None = None
    credentials: Credentials | None = None
    published: dict[str, Any] | None = None  # Glue tables are Parquet-only: always None

    def __post_init__(self) -> None:
        namespace = self.sink.table.split(".")[0]
        register_catalog(
            self.spark, self.sink.catalog, self.credentials, namespace=namespace, where=self.where
        )

    @property
    def identifier(self) -> str:
        return self.sink.identifier

    def finish_interrupted(self) -> None:
        """Nothing to finish: an Iceberg commit is atomic, a killed write left no trace in
        the table (its orphan files are for maintenance to remove)."""

    def exists(self) -> bool:
        with located(self.where, SinkError, doing=f"looking up {self.identifier}"):
            return bool(self.spark.catalog.tableExists(self.identifier))

    def read(self) -> DataFrame:
        with located(self.where, SinkError, doing=f"reading {self.identifier}"):
            return self.spark.table(self.identifier)

    def committed(self) -> dict[str, Any] | None:
        """The run id and watermark of the newest commit Sluiceway made in the table's
        current history (None: no such commit, or no table)."""
        if not self.exists():
            return None
        ident = self.identifier
        with located(self.where, SinkError, doing=f"reading the snapshots of {ident}"):
            rows = self.spark.sql(
                f"SELECT s.summary['{RUN_ID_PROPERTY}'] AS run_id, "
                f"s.summary['{WATERMARK_PROPERTY}'] AS watermark, s.snapshot_id "
                f"FROM {ident}.history h JOIN {ident}.snapshots s "
                "ON h.snapshot_id = s.snapshot_id "
                f"WHERE h.is_current_ancestor AND s.summary['{RUN_ID_PROPERTY}'] IS NOT NULL "
                "ORDER BY h.made_current_at DESC LIMIT 1"
            ).collect()
        if not rows:
            return None
        row = rows[0]
        return {
            "run_id": row["run_id"],
            "watermark": json.loads(row["watermark"]) if row["watermark"] else None,
            "snapshot_id": row["snapshot_id"],
        }

    def write(self, batch: Batch, mode: WriteMode) -> WriteResult:
        """Land `batch` in one commit that carries `batch.commit_properties`; a batch whose
        schema differs from the table's first evolves it (its own metadata commit, no
        snapshot) or is refused before anything is written."""
        exists = self.exists()
        if mode == "merge" and not self.primary_key:
            raise SinkError("merge needs a primary_key", where=self.where)
        df = batch.df
        if mode == "merge":
            df = self._refusing_null_keys(df)
            order = self.incremental_column or "_extracted_at"
            if order in df.columns:
                df = dedupe_latest(df, self.primary_key, order)
        replaced = not exists or mode == "overwrite"
        # A replaced table takes the batch's schema; the others must take the batch as is.
        changes = SchemaChanges() if replaced else self._schema_changes(df)
        given = tuple(df.columns)  # a merge updates only these; the others keep their value
        df = with_missing_as_null(df, changes.missing)
        steps: dict[str, Callable[[DataFrame], None]] = {
            "merge": lambda rows: self._merge(rows, given),
            "append": lambda rows: self._append(rows, batch, given),
            "overwrite_partitions": self._overwrite_partitions,
            "overwrite": self._replace,
        }
        write = self._replace if replaced else steps[mode]
        with located(self.where, SinkError, doing=f"writing {self.identifier}"):
            # Schema changes commit table metadata but no snapshot: the snapshot history,
            # and with it the committed watermark, moves only with the data commit below. A
            # run failing between the two leaves a table the rerun finds already evolved.
            for statement in changes.statements(self.identifier):
                log.info("%s: %s", self.where, statement)
                self.spark.sql(statement)
            faults.reached(f"iceberg-evolved:{self.identifier}")
            with_commit_properties(self.spark, batch.commit_properties, lambda: write(df))
        return WriteResult(
            self.sink.path,
            (),
            replaced=replaced,
            commit=self._commit_of(batch.commit_properties.get(RUN_ID_PROPERTY)),
        )

    def _schema_changes(self, df: DataFrame) -> SchemaChanges:
        with located(self.where, SinkError, doing=f"reading the schema of {self.identifier}"):
            table = self.spark.table(self.identifier).schema
        return schema_changes(table, df.schema, where=self.where)

    def _commit_of(self, run_id: str | None) -> dict[str, int] | None:
        """The snapshot id and counters of the commit `run_id` just made (None: the write
        committed nothing, e.g. a merge of no rows)."""
        if run_id is None:
            return None
        ident = self.identifier
        with located(self.where, SinkError, doing=f"reading the snapshots of {ident}"):
            rows = self.spark.sql(
                f"SELECT snapshot_id, summary FROM {ident}.snapshots "
                f"WHERE summary['{RUN_ID_PROPERTY}'] = '{run_id}' "
                "ORDER BY committed_at DESC LIMIT 1"
            ).collect()
        if not rows:
            return None
        summary = rows[0]["summary"]
        counters = {key: int(summary.get(key) or 0) for key in COMMIT_COUNTERS}
        return {"snapshot_id": rows[0]["snapshot_id"], **counters}

    def _refusing_null_keys(self, df: DataFrame) -> DataFrame:
        """`df`, failing the write that reads it at the first row with a NULL key part: such
        a row can never be matched, so every run would insert it again. Checked in the
        write's own pass (a count before it would read the source twice); the write fails
        before its commit, so nothing lands."""
        keys = ", ".join(self.primary_key)
        complete = reduce(operator.and_, [F.col(k).isNotNull() for k in self.primary_key])
        message = f"a row has a NULL in primary key ({keys}), which no merge can match; refused"
        return df.filter(F.assert_true(complete, message).isNull())

    def _view(self, df: DataFrame) -> str:
        name = f"_sluiceway_batch_{uuid.uuid4().hex[:12]}"
        df.createOrReplaceTempView(name)
        return name

    def _replace(self, df: DataFrame) -> None:
        """Create or replace the table with `df`'s rows, partitioning and properties (one
        atomic REPLACE TABLE ... AS SELECT: the table's history is kept)."""
        view = self._view(df)
        partitioned = ""
        if self.sink.partitioning:
            fields = ", ".join(field.sql() for field in self.sink.partitioning)
            partitioned = f" PARTITIONED BY ({fields})"
        props = ", ".join(f"'{k}' = '{v}'" for k, v in self.sink.table_properties().items())
        try:
            self.spark.sql(
                f"CREATE OR REPLACE TABLE {self.identifier} USING iceberg{partitioned} "
                f"TBLPROPERTIES ({props}) AS SELECT * FROM {view}"
            )
        finally:
            self.spark.catalog.dropTempView(view)

    def _merge(self, df: DataFrame, updated: tuple[str, ...]) -> None:
        """Upsert by key: matched rows get the `updated` columns (moving partition if theirs
        changed), new keys are inserted. (`UPDATE SET *` / `INSERT *` would fail on a table
        column the batch lacks, on both Spark lines.)"""
        view = self._view(df)
        on = " AND ".join(f"t.`{key}` = s.`{key}`" for key in self.primary_key)
        sets = ", ".join(f"t.`{c}` = s.`{c}`" for c in updated)
        names = ", ".join(f"`{c}`" for c in df.columns)
        values = ", ".join(f"s.`{c}`" for c in df.columns)
        try:
            self.spark.sql(
                f"MERGE INTO {self.identifier} t USING {view} s ON {on} "
                f"WHEN MATCHED THEN UPDATE SET {sets} "
                f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
            )
        finally:
            self.spark.catalog.dropTempView(view)

    def _append(self, df: DataFrame, batch: Batch, given: tuple[str, ...]) -> None:
        """Append the rows not landed yet: a row of the re-read overlap equal to a stored
        one in every non-audit column the batch has is skipped, so a rerun of a window adds
        nothing."""
        columns = df.columns
        compared = [c for c in given if c not in AUDIT_COLUMNS]
        overlap = batch.overlap if batch.overlap is not None else F.lit(True)
        flagged = df.withColumn("_sluiceway_overlap", overlap)
        view = self._view(flagged)
        on = " AND ".join(["s._sluiceway_overlap", *(f"t.`{c}` <=> s.`{c}`" for c in compared)])
        names = ", ".join(f"`{c}`" for c in columns)
        values = ", ".join(f"s.`{c}`" for c in columns)
        try:
            self.spark.sql(
                f"MERGE INTO {self.identifier} t USING {view} s ON {on} "
                f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
            )
        finally:
            self.spark.catalog.dropTempView(view)

    def _overwrite_partitions(self, df: DataFrame) -> None:
        """Replace the partitions the batch has rows for (Iceberg's dynamic overwrite)."""
        df.writeTo(self.identifier).overwritePartitions()

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "iceberg",
            "table": self.identifier,
            "catalog": self.sink.catalog.type,
            "path": self.sink.path,
            "partition_by": [field.sql() for field in self.sink.partitioning],
        }


def watermark_properties(run_id: str, watermark: Mapping[str, Any] | None) -> dict[str, str]:
    """The commit properties of a table's write: its run and its new watermark."""
    props = {RUN_ID_PROPERTY: run_id}
    if watermark is not None:
        props[WATERMARK_PROPERTY] = json.dumps(watermark, sort_keys=True)
    return props
