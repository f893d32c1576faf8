"""Compose a pipeline: build() is pure; run() = plan -> read -> build -> write -> commit state.

A run holds the pipeline's run lock (state/lock) from start to end, so two runs of one
pipeline never interleave their writes. Each table's state (watermark, and the run that
wrote it as its version) is committed only after its writes and loads succeeded; an output
is rebuilt when the versions of its inputs differ from those it was last built from. A run
killed at any point is completed by the next one (see README, "What a run guarantees").

`check(spec)` (from spec_check, which needs no Spark) resolves every transform and builder
the spec names; run() calls it before anything else, as `package` and `deploy` do.

Kill points (`sluiceway.faults`): `plan:<table>` once planned, `write:<name>` just before a
table's or output's dataset write (for Iceberg: before its commit), `written:<name>` just
after it (the Iceberg commit made, with its watermark), `commit:<name>` before a table's or
output's state is written, `committed:<name>` after; the Parquet sink has its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from sluiceway import faults, transforms
from sluiceway.errors import (
    CredentialsError,
    SinkError,
    SluicewayError,
    StateError,
    TransformError,
)
from sluiceway.report import landed_text
from sluiceway.sinks.dataset import Batch, ParquetDataset
from sluiceway.sinks.iceberg import IcebergDataset, watermark_properties
from sluiceway.sinks.loads import load_connections, write_load
from sluiceway.sinks.s3 import check_s3_locations
from sluiceway.sources import jdbc
from sluiceway.sources.credentials import (
    Credentials,
    JdbcConfReader,
    read_hash_salt,
    resolve_credentials,
)
from sluiceway.spec import (
    IcebergSink,
    Load,
    OutputSpec,
    PipelineSpec,
    TableSpec,
    WriteMode,
    join_path,
)
from sluiceway.spec_check import check
from sluiceway.state import RunLock, StateStore, acquire_run_lock, open_state_store
from sluiceway.transforms.quality import FAILURES_COLUMN

log = logging.getLogger(__name__)


@dataclass
class TableReport:
    name: str
    kind: Literal["table", "output"]
    status: Literal["pending", "written", "unchanged", "failed"] = "pending"
    mode: Literal["incremental", "full"] = "incremental"
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
    commit: dict[str, int] | None = None  # an Iceberg table's commit (snapshot, counters)


@dataclass
class RunReport:
    pipeline: str
    run_id: str
    started_at: str
    status: Literal["running", "succeeded", "failed"] = "running"
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


# Where a table or output lands: Parquet files, or an Iceberg table.
Dataset = ParquetDataset | IcebergDataset


def _version(ctx: RunContext, name: str) -> str | None:
    """The run that last committed the table or output `name` (None: never committed):
    for an Iceberg table, the run of its newest Sluiceway commit, which lands with the data."""
    spec, store = ctx.spec, ctx.store
    item = spec.item(name)
    if isinstance(item.sink, IcebergSink):
        dataset = ctx.dataset(item)
        assert isinstance(dataset, IcebergDataset)
        committed = dataset.committed()
        return str(committed["run_id"]) if committed else None
    is_table = any(t.name == name for t in spec.tables)
    key = _table_state_key(spec, name) if is_table else _output_state_key(spec, name)
    state = store.read_json(key)
    return str(state["run_id"]) if state and state.get("run_id") else None


def read_watermark(store: StateStore, spec: PipelineSpec, table: str) -> jdbc.Watermark | None:
    state = store.read_json(_table_state_key(spec, table))
    if not state or not state.get("watermark"):
        return None
    return jdbc.Watermark.from_json(state["watermark"])


def _hash_salt(spec: PipelineSpec, tables: Sequence[TableSpec]) -> str | None:
    """The salt, read only when a table of this run hashes columns."""
    if not any(table.hash_columns for table in tables):
        return None
    if spec.hash_salt_secret_id:
        return read_hash_salt(spec.hash_salt_secret_id)
    salt = os.environ.get(spec.hash_salt_env or "")  # the spec requires one of the two
    if not salt:
        raise CredentialsError(
            f"environment variable {spec.hash_salt_env} is not set", where="pipeline.hash_salt_env"
        )
    return salt


@dataclass(frozen=True)
class RunContext:
    """What every step of one run shares, fixed before the first table is read."""

    spark: SparkSession
    spec: PipelineSpec
    store: StateStore
    run_id: str
    report: RunReport
    lock: RunLock
    full_refresh: bool = False
    salt: str | None = None
    credentials: Mapping[str, Credentials] = field(default_factory=dict)

    def where(self, item: TableSpec | OutputSpec) -> str:
        kind = "tables" if isinstance(item, TableSpec) else "outputs"
        return f"{self.spec.source_file}: {kind}.{item.name}"

    def dataset(self, item: TableSpec | OutputSpec) -> Dataset:
        """Where the table or output lands."""
        table = item if isinstance(item, TableSpec) else None
        if isinstance(item.sink, IcebergSink):
            connection = item.sink.catalog.connection
            return IcebergDataset(
                self.spark,
                item.sink,
                where=self.where(item),
                primary_key=table.primary_key if table else (),
                incremental_column=table.incremental_column if table else None,
                credentials=self.credentials[connection] if connection else None,
            )
        return ParquetDataset(
            self.spark,
            item.sink.path,
            staging=join_path(self.spec.staging_location, item.name),
            where=self.where(item),
            partition_by=item.partition_by,
            primary_key=table.primary_key if table else (),
            compression=item.sink.compression,
            catalog=item.catalog,
        )

    def quarantine(self, table: TableSpec) -> ParquetDataset:
        """Where a table's rejected rows land: keyed tables keep each key's latest."""
        return ParquetDataset(
            self.spark,
            table.sink.quarantine_path,
            staging=join_path(self.spec.staging_location, table.name) + "__quarantine",
            where=f"{self.where(table)} (quarantine)",
            primary_key=table.primary_key,
            compression=table.sink.compression,
        )


def run(
    spark: SparkSession,
    spec: PipelineSpec,
    *,
    full_refresh: bool = False,
    only: Iterable[str] | None = None,
    run_id: str | None = None,
    on_table: Callable[[TableReport], None] | None = None,
    jdbc_conf: JdbcConfReader | None = None,
) -> RunReport:
    """Run the pipeline; each table's watermark is committed only after its writes succeeded.

    `jdbc_conf` reads a connection's `glue_connection` (on Glue, GlueContext's
    extract_jdbc_conf); by default the Glue GetConnection API.
    """
    check(spec)  # a transform or builder that does not resolve fails before anything starts
    started = time.monotonic()
    run_id = run_id or new_run_id()
    report = RunReport(spec.name, run_id, datetime.now(UTC).isoformat(), full_refresh=full_refresh)
    store = open_state_store(spec.state_location)
    selected = selected_names(spec, only)
    lock = None
    refused = False  # another run holds the lock: this one writes nothing, not even a report
    try:
        # Everything that can fail without touching data fails here, before the first read.
        jdbc.check_time_zone(spark)
        tables = [t for t in spec.tables if selected is None or t.name in selected]
        salt = _hash_salt(spec, tables)
        outputs = [o for o in spec.outputs if selected is None or o.name in selected]
        used = {t.connection for t in tables}
        items: tuple[TableSpec | OutputSpec, ...] = (*tables, *outputs)
        loads = tuple(load for item in items for load in item.load)
        # An Iceberg jdbc catalog logs in with its connection's credentials.
        catalog_connections = {
            item.sink.catalog.connection
            for item in items
            if isinstance(item.sink, IcebergSink) and item.sink.catalog.connection
        }
        credentials = {
            name: resolve_credentials(spec.connections[name], jdbc_conf=jdbc_conf)
            for name in used | load_connections(loads) | catalog_connections
        }
        sources = {
            name: jdbc.jdbc_source(spec.connections[name], credentials[name]) for name in used
        }
        # A missing, denied or unreachable bucket fails here, before the source is read.
        check_s3_locations(_locations(spec, items))
        try:
            lock = acquire_run_lock(store, spec.name, run_id)
        except StateError:
            refused = True
            raise
        ctx = RunContext(spark, spec, store, run_id, report, lock, full_refresh, salt, credentials)
        for table in tables:
            item = _run_table(ctx, table, sources[table.connection])
            if on_table:
                on_table(item)
        for output in outputs:
            rebuild = full_refresh or selected is not None
            item = _run_output(ctx, output, rebuild)
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


def selected_names(spec: PipelineSpec, only: Iterable[str] | None) -> set[str] | None:
    """The tables and outputs `--only` names (None: all of them); an unknown name fails."""
    selected = set(only) if only else None
    if selected:
        unknown = selected - {t.name for t in spec.tables} - {o.name for o in spec.outputs}
        if unknown:
            raise SluicewayError(
                f"{spec.source_file}: no table or output named {', '.join(sorted(unknown))}"
            )
    return selected


def _locations(spec: PipelineSpec, items: Iterable[TableSpec | OutputSpec]) -> dict[str, str]:
    """Every place the run may write, keyed by where the spec sets it, datasets first."""
    found = {}
    for item in items:
        kind = "tables" if isinstance(item, TableSpec) else "outputs"
        found[f"{spec.source_file}: {kind}.{item.name}.sink.path"] = item.sink.path
        found[f"{spec.source_file}: {kind}.{item.name}.sink.quarantine_path"] = (
            item.sink.quarantine_path
        )
    found[f"{spec.source_file}: pipeline.staging"] = spec.staging_location
    found[f"{spec.source_file}: pipeline.state"] = spec.state_location
    return found


def _save_report(store: StateStore, spec: PipelineSpec, report: RunReport) -> None:
    data = report.to_json()
    store.write_json(f"{spec.name}/runs/{report.run_id}.json", data)
    store.write_json(f"{spec.name}/runs/latest.json", data)


@contextmanager
def _tracked(ctx: RunContext, item: TableReport) -> Iterator[TableReport]:
    """Add `item` to the run report; time it, and mark it failed on our errors."""
    ctx.report.tables.append(item)
    started = time.monotonic()
    try:
        yield item
    except SluicewayError as exc:
        item.status, item.error = "failed", str(exc)
        raise
    finally:
        item.seconds = round(time.monotonic() - started, 3)


def _run_table(ctx: RunContext, table: TableSpec, source: jdbc.JdbcSource) -> TableReport:
    """plan -> read -> build -> write -> load -> commit, for one table."""
    where = ctx.where(table)
    dataset, quarantine = ctx.dataset(table), ctx.quarantine(table)
    watermark = None if ctx.full_refresh else _committed_watermark(ctx, table, dataset)
    item = TableReport(
        table.name,
        "table",
        mode="full" if watermark is None else "incremental",
        path=table.sink.path,
        watermark_before=watermark.to_json() if watermark else None,
    )
    with _tracked(ctx, item):
        # A write a killed run committed is finished first, even if nothing changed since.
        dataset.finish_interrupted()
        quarantine.finish_interrupted()
        plan = jdbc.plan_read(ctx.spark, source, table, watermark, where)
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
        raw = jdbc.read(ctx.spark, source, plan, where)
        built = build_table(
            raw,
            table,
            run_id=ctx.run_id,
            extracted_at=datetime.now(UTC),
            source=f"{source.dialect.engine}:{table.table or table.name}",
            salt=ctx.salt,
            dedupe=_may_repeat_keys(table, plan),
        )
        _write_table(ctx, table, _Written(built, plan, dataset, quarantine), item)
        # Loads run before the watermark moves: a failed load is retried by the next run.
        _run_loads(ctx, table.load, dataset, item)
        after = plan.watermark_after.to_json() if plan.watermark_after else None
        _commit(ctx, _table_state_key(ctx.spec, table.name), table.name, watermark=after)
        # Only now: a failed run's report shows no watermark it never committed.
        item.watermark_after = after
        item.status = "written"
    return item


def _committed_watermark(
    ctx: RunContext, table: TableSpec, dataset: Dataset
) -> jdbc.Watermark | None:
    """Where the next read starts: an Iceberg table's watermark is the one committed with
    its data (its newest Sluiceway snapshot); a Parquet dataset's is in the state store."""
    if isinstance(dataset, IcebergDataset):
        committed = dataset.committed()
        if not committed or not committed.get("watermark"):
            return None
        return jdbc.Watermark.from_json(committed["watermark"])
    return read_watermark(ctx.store, ctx.spec, table.name)


def _commit(ctx: RunContext, key: str, name: str, **state: Any) -> None:
    """Write a table's or output's state: from here on its run counts as done. A run whose
    S3 lock was taken over (its lease ran out) refuses to."""
    ctx.lock.ensure_held()
    faults.reached(f"commit:{name}")
    ctx.store.write_json(
        key, {**state, "run_id": ctx.run_id, "committed_at": datetime.now(UTC).isoformat()}
    )
    faults.reached(f"committed:{name}")


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


@dataclass(frozen=True)
class _Written:
    """A table's built batch, the read it came from and the datasets it goes to."""

    built: DataFrame
    plan: jdbc.ReadPlan
    dataset: Dataset
    quarantine: ParquetDataset


def _write_table(ctx: RunContext, table: TableSpec, batch: _Written, item: TableReport) -> None:
    # The counts come from the write itself: the source is read in the same pass. Only a
    # table with quality rules may need a second pass (the quarantine), so only it is cached.
    counts = Observation()
    built = batch.built.observe(
        counts,
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(F.size(FAILURES_COLUMN) > 0, 1).otherwise(0)).alias("bad"),
    )
    cached = bool(table.quality)
    if cached:
        built = built.persist()
    try:
        _write_valid_and_quarantined(ctx, table, replace(batch, built=built), counts, item)
    finally:
        if cached:
            built.unpersist()


def _write_valid_and_quarantined(
    ctx: RunContext, table: TableSpec, batch: _Written, counts: Observation, item: TableReport
) -> None:
    plan = batch.plan
    # A full read replaces the dataset, so rows deleted at the source disappear too.
    mode: WriteMode = "overwrite" if plan.watermark_before is None else table.sink.mode
    # An append re-reads the overlap: rows of it already landed are not appended again.
    overlap = None
    if mode == "append" and plan.window_start is not None and table.incremental_column:
        overlap = F.col(table.incremental_column) >= F.lit(plan.window_start)
    window = _window_name(plan)
    valid = batch.built.transform(transforms.keep_valid)
    after = plan.watermark_after.to_json() if plan.watermark_after else None
    landed = Batch(valid, window, overlap, watermark_properties(ctx.run_id, after))
    # An Iceberg commit carries the table's new watermark: once it lands, the next run
    # starts past this window, so the window's rejected rows must be in the quarantine
    # first (a run killed between the two would lose them). Counting the cached batch
    # fills the observation before either write; a table without rules rejects nothing.
    quarantine_first = isinstance(batch.dataset, IcebergDataset) and bool(table.quality)
    if quarantine_first:
        batch.built.count()
        _count_rows(counts, item, batch.dataset.where)
        _write_quarantine(ctx, table, batch, item, mode, overlap)
    faults.reached(f"write:{table.name}")
    result = batch.dataset.write(landed, mode)
    faults.reached(f"written:{table.name}")
    item.partitions = [dict(p) for p in result.partitions]
    item.commit = result.commit
    if not quarantine_first:
        _count_rows(counts, item, batch.dataset.where)
        _write_quarantine(ctx, table, batch, item, mode, overlap)
    item.catalog = batch.dataset.published
    log.info(
        "%s: wrote %d rows (%d quarantined) to %s: %s",
        table.name,
        item.rows_written,
        item.rows_quarantined,
        table.sink.path,
        landed_text(item),
    )


def _write_quarantine(
    ctx: RunContext,
    table: TableSpec,
    batch: _Written,
    item: TableReport,
    mode: WriteMode,
    overlap: Column | None,
) -> None:
    """Land the batch's rejected rows, if it has any. Keyed tables keep each key's latest
    rejected row; the others mirror the dataset's mode (replaced by a full read, one file
    set per window), so a rerun adds no copy."""
    if not item.rows_quarantined:
        return
    bad = batch.built.transform(transforms.keep_quarantined)
    if "_run_id" not in bad.columns:
        bad = bad.withColumn("_run_id", F.lit(ctx.run_id))
    window = _window_name(batch.plan)
    batch.quarantine.write(Batch(bad, window, overlap), "merge" if table.primary_key else mode)


def _count_rows(counts: Observation, item: TableReport, where: str) -> None:
    """The rows the write saw, as its observation counted them."""
    seen = counts.get
    if "rows" not in seen:
        raise SinkError("the write reported no row count; nothing committed", where=where)
    item.rows_read = int(seen["rows"])
    item.rows_quarantined = int(seen.get("bad") or 0)
    item.rows_written = item.rows_read - item.rows_quarantined


def _run_output(ctx: RunContext, output: OutputSpec, rebuild: bool) -> TableReport:
    """Rebuild the output, unless it was built from the inputs' current versions, is
    there, and is in the catalog (a failed earlier publish is redone)."""
    spec = ctx.spec
    dataset = ctx.dataset(output)
    state_key = _output_state_key(spec, output.name)
    item = TableReport(output.name, "output", mode="full", path=output.sink.path)
    with _tracked(ctx, item):
        dataset.finish_interrupted()
        versions = {name: _version(ctx, name) for name in output.inputs}
        state = ctx.store.read_json(state_key)
        if (
            not rebuild
            and state is not None
            and state.get("inputs") == versions
            and dataset.exists()
        ):
            item.status = "unchanged"
            return item
        inputs = {name: ctx.dataset(spec.item(name)).read() for name in output.inputs}
        counts = Observation()
        built = build_output(output, inputs).observe(counts, F.count(F.lit(1)).alias("rows"))
        landed = Batch(built, commit_properties=watermark_properties(ctx.run_id, None))
        faults.reached(f"write:{output.name}")
        result = dataset.write(landed, output.sink.mode)
        faults.reached(f"written:{output.name}")
        _count_rows(counts, item, dataset.where)
        item.catalog = dataset.published
        item.partitions = [dict(p) for p in result.partitions]
        item.commit = result.commit
        _run_loads(ctx, output.load, dataset, item)
        _commit(ctx, state_key, output.name, inputs=versions)
        item.status = "written"
        log.info("%s: rebuilt %d rows: %s", output.name, item.rows_written, landed_text(item))
    return item


def _run_loads(
    ctx: RunContext, loads: tuple[Load, ...], dataset: Dataset, item: TableReport
) -> None:
    """Load what this run wrote to `dataset` into each SQL target.

    An upsert takes the rows this run wrote (`_run_id`, when the dataset has audit
    columns); overwrite, or a dataset without them, takes the whole dataset. Both leave
    the target as one run would when a rerun repeats them.
    """
    for load in loads:
        df = dataset.read()
        if load.mode != "overwrite" and "_run_id" in df.columns:
            df = df.filter(F.col("_run_id") == ctx.run_id)
        result = write_load(
            ctx.spark, df, load, ctx.spec.connections, ctx.credentials, dataset.where
        )
        item.loaded.append({"kind": load.kind, **asdict(result)})
