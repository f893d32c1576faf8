"""Compose a pipeline: build() is pure; run() = plan -> read -> build -> write -> commit state.

A run holds the pipeline's run lock (state/lock) from start to end, so two runs of one
pipeline never interleave their writes. Each table's state (watermark, and the run that
wrote it as its version) is committed only after its writes and loads succeeded; an output
is rebuilt when the versions of its inputs differ from those it was last built from. A run
killed at any point is completed by the next one (see README, "What a run guarantees").

`check(spec)` (from spec_check, which needs no Spark) resolves every transform and builder
the spec names; run() calls it before anything else, as `package` and `deploy` do.

Kill points (`sluiceway.faults`): `plan:<table>` once planned, `commit:<name>` before a
table's or output's state is written, `committed:<name>` after; the Parquet sink has its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from sluiceway import aws, faults, transforms
from sluiceway.errors import (
    CredentialsError,
    SinkError,
    SluicewayError,
    StateError,
    TransformError,
)
from sluiceway.jvm_errors import SPARK_ERRORS, describe_spark_error
from sluiceway.sinks.catalog import GlueCatalog
from sluiceway.sinks.loads import load_connections, write_load
from sluiceway.sinks.parquet import (
    HadoopFs,
    WriteResult,
    finish_interrupted,
    partition_path,
    stored_partitions,
    write_parquet,
)
from sluiceway.sinks.s3 import check_s3_locations
from sluiceway.sources import jdbc
from sluiceway.sources.credentials import Credentials, resolve_credentials
from sluiceway.spec import CatalogTarget, Load, OutputSpec, PipelineSpec, TableSpec, join_path
from sluiceway.spec_check import check
from sluiceway.state import RunLock, StateStore, acquire_run_lock, open_state_store

log = logging.getLogger(__name__)


@dataclass
class TableReport:
    name: str
    kind: str  # "table" | "output"
    status: str = "pending"  # "written" | "unchanged" | "failed"
    mode: str = "incremental"  # "incremental" | "full"
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    partitions: list[dict[str, Any]] = field(default_factory=list)
    watermark_before: dict[str, str] | None = None
    watermark_after: dict[str, str] | None = None
    path: str = ""
    seconds: float = 0.0
    error: str | None = None
    catalog: dict[str, Any] | None = None  # the Glue table update, when the spec asks for one
    loaded: list[dict[str, Any]] = field(default_factory=list)  # SQL load targets


@dataclass
class RunReport:
    pipeline: str
    run_id: str
    started_at: str
    status: str = "running"  # "succeeded" | "failed"
    seconds: float = 0.0
    full_refresh: bool = False
    tables: list[TableReport] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


# ---------------------------------------------------------------------------------------
# build: pure DataFrame composition


def build_table(
    df: DataFrame,
    table: TableSpec,
    *,
    run_id: str,
    extracted_at: datetime,
    source: str,
    salt: str | None,
    dedupe: bool = True,
) -> DataFrame:
    """Dedupe by key, apply the spec's transforms, hash PII, add audit and quality columns."""
    if dedupe and table.primary_key and table.incremental_column:
        df = df.transform(
            transforms.dedupe_latest, list(table.primary_key), table.incremental_column
        )
    for step in table.transforms:
        df = _apply(df, step.name, step.params, f"tables.{table.name}")
    if table.hash_columns:
        df = df.transform(transforms.with_hashed_columns, list(table.hash_columns), salt or "")
    if table.audit:
        df = df.transform(transforms.with_audit_columns, run_id, extracted_at, source)
    return df.transform(transforms.with_quality_failures, list(table.quality))


def build_output(output: OutputSpec, inputs: Mapping[str, DataFrame]) -> DataFrame:
    """Call the output's builder with each input DataFrame as a keyword argument."""
    builder = transforms.resolve_transform(output.builder)
    try:
        return builder(**{name: inputs[name] for name in output.inputs}, **output.params)
    except TypeError as exc:
        raise TransformError(f"outputs.{output.name}.builder: {output.builder}: {exc}") from exc


def _apply(df: DataFrame, name: str, params: Mapping[str, Any], where: str) -> DataFrame:
    fn = transforms.resolve_transform(name)
    try:
        return df.transform(fn, **params)
    except TypeError as exc:
        raise TransformError(f"{where}.transforms: {name}: {exc}") from exc


# ---------------------------------------------------------------------------------------
# run: IO and state


def _table_state_key(spec: PipelineSpec, table: str) -> str:
    return f"{spec.name}/tables/{table}.json"


def _output_state_key(spec: PipelineSpec, output: str) -> str:
    return f"{spec.name}/outputs/{output}.json"


def _version(store: StateStore, spec: PipelineSpec, name: str) -> str | None:
    """The run that last committed the table or output `name` (None: never committed)."""
    is_table = any(t.name == name for t in spec.tables)
    key = _table_state_key(spec, name) if is_table else _output_state_key(spec, name)
    state = store.read_json(key)
    return str(state["run_id"]) if state and state.get("run_id") else None


def read_watermark(store: StateStore, spec: PipelineSpec, table: str) -> jdbc.Watermark | None:
    state = store.read_json(_table_state_key(spec, table))
    if not state or not state.get("watermark"):
        return None
    return jdbc.Watermark.from_json(state["watermark"])


def _hash_salt(spec: PipelineSpec) -> str | None:
    if not spec.hash_salt_env:
        return None
    salt = os.environ.get(spec.hash_salt_env)
    if not salt:
        raise CredentialsError(f"environment variable {spec.hash_salt_env} (hash salt) is not set")
    return salt


def run(
    spark: SparkSession,
    spec: PipelineSpec,
    *,
    full_refresh: bool = False,
    only: Iterable[str] | None = None,
    run_id: str | None = None,
    on_table: Callable[[TableReport], None] | None = None,
) -> RunReport:
    """Run the pipeline; each table's watermark is committed only after its writes succeeded."""
    check(spec)  # a transform or builder that does not resolve fails before anything starts
    started = time.monotonic()
    run_id = run_id or new_run_id()
    report = RunReport(spec.name, run_id, datetime.now(UTC).isoformat(), full_refresh=full_refresh)
    store = open_state_store(spec.state_location)
    selected = set(only) if only else None
    if selected:
        unknown = selected - {t.name for t in spec.tables} - {o.name for o in spec.outputs}
        if unknown:
            raise SluicewayError(
                f"{spec.source_file}: no table or output named {', '.join(sorted(unknown))}"
            )
    lock = None
    refused = False  # another run holds the lock: this one writes nothing, not even a report
    try:
        # Everything that can fail without touching data fails here, before the first read.
        jdbc.check_time_zone(spark)
        salt = _hash_salt(spec)
        used = {t.connection for t in spec.tables if selected is None or t.name in selected}
        items: tuple[TableSpec | OutputSpec, ...] = (*spec.tables, *spec.outputs)
        loads = [
            load
            for item in items
            if selected is None or item.name in selected
            for load in item.load
        ]
        credentials = {
            name: resolve_credentials(spec.connections[name])
            for name in used | load_connections(tuple(loads))
        }
        sources = {
            name: jdbc.jdbc_source(spec.connections[name], credentials[name]) for name in used
        }
        # A missing, denied or unreachable bucket fails here, before the source is read.
        check_s3_locations(_locations(spec, selected))
        try:
            lock = acquire_run_lock(store, spec.name, run_id)
        except StateError:
            refused = True
            raise
        for table in spec.tables:
            if selected is not None and table.name not in selected:
                continue
            item = _run_table(
                spark,
                spec,
                table,
                sources[table.connection],
                store,
                run_id,
                salt,
                full_refresh,
                report,
                credentials,
                lock,
            )
            if on_table:
                on_table(item)
        for output in spec.outputs:
            if selected is not None and output.name not in selected:
                continue
            rebuild = full_refresh or (selected is not None and output.name in selected)
            item = _run_output(
                spark, spec, output, store, run_id, rebuild, report, credentials, lock
            )
            if on_table:
                on_table(item)
        report.status = "succeeded"
    except SluicewayError as exc:
        report.status, report.error = "failed", str(exc)
        raise
    finally:
        report.seconds = round(time.monotonic() - started, 3)
        try:
            if not refused:
                _save_report(store, spec, report)
        except StateError as exc:
            if report.status == "succeeded":
                raise
            # The run's own error is the one to report (often the same unreachable bucket).
            log.warning("could not save the run report: %s", exc)
        finally:
            if lock is not None:
                lock.release()
    return report


def _locations(spec: PipelineSpec, selected: set[str] | None) -> dict[str, str]:
    """Every place the run may write, keyed by where the spec sets it, datasets first."""
    found = {}
    items: tuple[TableSpec | OutputSpec, ...] = (*spec.tables, *spec.outputs)
    for item in items:
        if selected is None or item.name in selected:
            kind = "tables" if isinstance(item, TableSpec) else "outputs"
            found[f"{spec.source_file}: {kind}.{item.name}.sink.path"] = item.sink.path
            found[f"{spec.source_file}: {kind}.{item.name}.sink.quarantine_path"] = (
                item.sink.quarantine_path
            )
    found[f"{spec.source_file}: pipeline.staging"] = spec.staging_location
    found[f"{spec.source_file}: pipeline.state"] = spec.state_location
    return found


def _catalog_target(target: CatalogTarget | None, path: str, where: str) -> CatalogTarget | None:
    """The Glue table to maintain for a dataset, if any: only datasets on S3 get one."""
    if target is not None and not aws.is_s3_uri(path):
        log.info("%s: catalog skipped: %s is not on S3", where, path)
        return None
    return target


def _publish(
    spark: SparkSession,
    catalog: GlueCatalog,
    target: CatalogTarget,
    df: DataFrame,
    partition_by: tuple[str, ...],
    result: WriteResult,
    compression: str,
    where: str,
) -> dict[str, Any]:
    update = catalog.publish(
        target.database,
        target.table,
        df.schema,
        partition_by,
        result,
        compression,
        lambda partition: partition_path(spark, partition),
        lambda: stored_partitions(spark, result.path, partition_by),
        where,
    )
    return asdict(update)


def _save_report(store: StateStore, spec: PipelineSpec, report: RunReport) -> None:
    data = report.to_json()
    store.write_json(f"{spec.name}/runs/{report.run_id}.json", data)
    store.write_json(f"{spec.name}/runs/latest.json", data)


def _run_table(
    spark: SparkSession,
    spec: PipelineSpec,
    table: TableSpec,
    source: jdbc.JdbcSource,
    store: StateStore,
    run_id: str,
    salt: str | None,
    full_refresh: bool,
    report: RunReport,
    credentials: Mapping[str, Credentials] | None = None,
    lock: RunLock | None = None,
) -> TableReport:
    where = f"{spec.source_file}: tables.{table.name}"
    started = time.monotonic()
    watermark = None if full_refresh else read_watermark(store, spec, table.name)
    item = TableReport(
        table.name,
        "table",
        mode="full" if watermark is None else "incremental",
        path=table.sink.path,
        watermark_before=watermark.to_json() if watermark else None,
    )
    report.tables.append(item)
    staging = join_path(spec.staging_location, table.name)
    try:
        # A write a killed run committed is finished first, even if nothing changed since.
        for path in (staging, _quarantine_staging(staging)):
            finish_interrupted(spark, path, where)
        plan = jdbc.plan_read(spark, source, table, watermark, where)
        faults.reached(f"plan:{table.name}")
        log.info(
            "%s: reading %d rows in %d partitions",
            table.name,
            plan.rows_expected,
            len(plan.predicates),
        )
        if plan.rows_expected == 0 and watermark is not None:
            item.status = "unchanged"
            return item
        raw = jdbc.read(spark, source, plan, where)
        built = build_table(
            raw,
            table,
            run_id=run_id,
            extracted_at=datetime.now(UTC),
            source=f"{source.dialect.engine}:{table.table or table.name}",
            salt=salt,
            dedupe=_may_repeat_keys(table, plan),
        )
        _write_table(spark, spec, table, built, plan, run_id, item, where)
        # Loads run before the watermark moves: a failed load is retried by the next run.
        _run_loads(spark, spec, table.load, table.sink.path, run_id, credentials, item, where)
        after = plan.watermark_after.to_json() if plan.watermark_after else None
        _commit(
            store, lock, _table_state_key(spec, table.name), table.name, run_id, watermark=after
        )
        # Only now: a failed run's report shows no watermark it never committed.
        item.watermark_after = after
        item.status = "written"
        return item
    except SluicewayError as exc:
        item.status, item.error = "failed", str(exc)
        raise
    finally:
        item.seconds = round(time.monotonic() - started, 3)


def _commit(
    store: StateStore, lock: RunLock | None, key: str, name: str, run_id: str, **state: Any
) -> None:
    """Write a table's or output's state: from here on its run counts as done. A run whose
    S3 lock was taken over (its lease ran out) refuses to."""
    if lock is not None:
        lock.ensure_held()
    faults.reached(f"commit:{name}")
    store.write_json(
        key, {**state, "run_id": run_id, "committed_at": datetime.now(UTC).isoformat()}
    )
    faults.reached(f"committed:{name}")


def _quarantine_staging(staging: str) -> str:
    return f"{staging}__quarantine"


def _window_name(plan: jdbc.ReadPlan) -> str:
    """A name for the window a run reads, the same on every rerun of that window."""
    before = plan.watermark_before.to_json() if plan.watermark_before else None
    return hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]


def _may_repeat_keys(table: TableSpec, plan: jdbc.ReadPlan) -> bool:
    """Whether the read can return a key twice, so the batch must be deduplicated.

    A table read in one statement, or split on one of its key columns, returns each key
    once: every row of a key has the same split value, so it falls in exactly one
    predicate, read by one statement on one snapshot. A query, or a split on another
    column that changes while the partitions are read, can repeat a key.
    """
    if table.query is not None:
        return True
    return len(plan.predicates) > 1 and table.split_column not in table.primary_key


def _write_table(
    spark: SparkSession,
    spec: PipelineSpec,
    table: TableSpec,
    built: DataFrame,
    plan: jdbc.ReadPlan,
    run_id: str,
    item: TableReport,
    where: str,
) -> None:
    # The counts come from the write itself: the source is read in the same pass. Only a
    # table with quality rules may need a second pass (the quarantine), so only it is cached.
    counts = Observation()
    built = built.observe(
        counts,
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(F.size("_dq_failures") > 0, 1).otherwise(0)).alias("bad"),
    )
    cached = bool(table.quality)
    if cached:
        built = built.persist()
    try:
        _write_valid_and_quarantined(spark, spec, table, built, counts, plan, run_id, item, where)
    finally:
        if cached:
            built.unpersist()


def _write_valid_and_quarantined(
    spark: SparkSession,
    spec: PipelineSpec,
    table: TableSpec,
    built: DataFrame,
    counts: Observation,
    plan: jdbc.ReadPlan,
    run_id: str,
    item: TableReport,
    where: str,
) -> None:
    staging = join_path(spec.staging_location, table.name)
    # A full read replaces the dataset, so rows deleted at the source disappear too.
    full = plan.watermark_before is None
    mode = "overwrite" if full else table.sink.mode
    # An append re-reads the overlap: rows of it already landed are not appended again.
    window = _window_name(plan)
    overlap = None
    if mode == "append" and plan.window_start is not None and table.incremental_column:
        overlap = F.col(table.incremental_column) >= F.lit(plan.window_start)
    valid = built.transform(transforms.keep_valid)
    target = _catalog_target(table.catalog, table.sink.path, where)
    catalog = GlueCatalog()
    if target:  # an incompatible schema is refused before anything is written
        catalog.check(target.database, target.table, valid.schema, table.partition_by, where)
    result = write_parquet(
        spark,
        valid,
        table.sink.path,
        mode=mode,
        partition_by=table.partition_by,
        primary_key=table.primary_key,
        compression=table.sink.compression,
        staging_path=staging,
        where=where,
        window=window,
        overlap=overlap,
    )
    item.partitions = [dict(p) for p in result.partitions]
    seen = counts.get
    if "rows" not in seen:
        raise SinkError(f"{where}: the write reported no row count; nothing committed")
    item.rows_read = int(seen["rows"])
    item.rows_quarantined = int(seen["bad"] or 0)
    item.rows_written = item.rows_read - item.rows_quarantined
    if item.rows_quarantined:
        # Keyed tables keep each key's latest rejected row; the others mirror the dataset's
        # mode (replaced by a full read, one file set per window), so a rerun adds no copy.
        bad = built.transform(transforms.keep_quarantined)
        if "_run_id" not in bad.columns:
            bad = bad.withColumn("_run_id", F.lit(run_id))
        write_parquet(
            spark,
            bad,
            table.sink.quarantine_path,
            mode="merge" if table.primary_key else mode,
            partition_by=(),
            primary_key=table.primary_key,
            compression=table.sink.compression,
            staging_path=_quarantine_staging(staging),
            where=f"{where} (quarantine)",
            window=window,
            overlap=overlap,
        )
    if target:
        item.catalog = _publish(
            spark,
            catalog,
            target,
            valid,
            table.partition_by,
            result,
            table.sink.compression,
            where,
        )
    log.info(
        "%s: wrote %d rows (%d quarantined) into %d partitions of %s",
        table.name,
        item.rows_written,
        item.rows_quarantined,
        len(item.partitions),
        table.sink.path,
    )


def _run_output(
    spark: SparkSession,
    spec: PipelineSpec,
    output: OutputSpec,
    store: StateStore,
    run_id: str,
    rebuild: bool,
    report: RunReport,
    credentials: Mapping[str, Credentials] | None = None,
    lock: RunLock | None = None,
) -> TableReport:
    """Rebuild the output, unless it was built from the inputs' current versions, is
    there, and is in the catalog (a failed earlier publish is redone)."""
    where = f"{spec.source_file}: outputs.{output.name}"
    started = time.monotonic()
    item = TableReport(output.name, "output", mode="full", path=output.sink.path)
    report.tables.append(item)
    target = _catalog_target(output.catalog, output.sink.path, where)
    catalog = GlueCatalog()
    staging = join_path(spec.staging_location, output.name)
    state_key = _output_state_key(spec, output.name)
    try:
        finish_interrupted(spark, staging, where)
        versions = {name: _version(store, spec, name) for name in output.inputs}
        state = store.read_json(state_key)
        if (
            not rebuild
            and state is not None
            and state.get("inputs") == versions
            and HadoopFs(spark).has_data(output.sink.path)
            and (target is None or catalog.exists(target.database, target.table, where))
        ):
            item.status = "unchanged"
            return item
        inputs = {}
        for name in output.inputs:
            path = spec.dataset_path(name)
            try:
                inputs[name] = spark.read.parquet(path)
            except SPARK_ERRORS as exc:
                raise SluicewayError(
                    f"{where}: input {name} at {path}: {describe_spark_error(exc)}"
                ) from exc
        counts = Observation()
        built = build_output(output, inputs).observe(counts, F.count(F.lit(1)).alias("rows"))
        if target:  # an incompatible schema is refused before anything is written
            catalog.check(target.database, target.table, built.schema, output.partition_by, where)
        result = write_parquet(
            spark,
            built,
            output.sink.path,
            mode=output.sink.mode,
            partition_by=output.partition_by,
            compression=output.sink.compression,
            staging_path=staging,
            where=where,
        )
        seen = counts.get
        if "rows" not in seen:
            raise SinkError(f"{where}: the write reported no row count; nothing committed")
        item.rows_written = item.rows_read = int(seen["rows"])
        if target:
            item.catalog = _publish(
                spark,
                catalog,
                target,
                built,
                output.partition_by,
                result,
                output.sink.compression,
                where,
            )
        item.partitions = [dict(p) for p in result.partitions]
        _run_loads(spark, spec, output.load, output.sink.path, run_id, credentials, item, where)
        _commit(store, lock, state_key, output.name, run_id, inputs=versions)
        item.status = "written"
        log.info(
            "%s: rebuilt %d rows into %d partitions",
            output.name,
            item.rows_written,
            len(item.partitions),
        )
        return item
    except SluicewayError as exc:
        item.status, item.error = "failed", str(exc)
        raise
    finally:
        item.seconds = round(time.monotonic() - started, 3)


def _run_loads(
    spark: SparkSession,
    spec: PipelineSpec,
    loads: tuple[Load, ...],
    path: str,
    run_id: str,
    credentials: Mapping[str, Credentials] | None,
    item: TableReport,
    where: str,
) -> None:
    """Load what this run wrote at `path` into each SQL target.

    An upsert takes the rows this run wrote (`_run_id`, when the dataset has audit
    columns); overwrite, or a dataset without them, takes the whole dataset. Both leave
    the target as one run would when a rerun repeats them.
    """
    for load in loads:
        try:
            df = spark.read.parquet(path)
        except SPARK_ERRORS as exc:
            raise SluicewayError(f"{where}: reading {path}: {describe_spark_error(exc)}") from exc
        if load.mode != "overwrite" and "_run_id" in df.columns:
            df = df.filter(F.col("_run_id") == run_id)
        result = write_load(spark, df, load, spec.connections, credentials or {}, where)
        item.loaded.append({"kind": load.kind, **asdict(result)})
