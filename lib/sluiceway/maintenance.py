"""`sluiceway maintain`: Iceberg table maintenance for every Iceberg table and output of a
pipeline, under the pipeline's run lock, so it never runs beside a run of the pipeline (a
compaction racing a run's MERGE would fail one of the two commits, and orphan removal
could take a run's files in flight for orphans)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from sluiceway.pipeline import new_run_id, selected_names
from sluiceway.sinks.iceberg import IcebergDataset
from sluiceway.sinks.iceberg_maintenance import MaintenanceResult, maintain_table
from sluiceway.sources.credentials import resolve_credentials
from sluiceway.spec import IcebergSink, OutputSpec, PipelineSpec, TableSpec
from sluiceway.state import acquire_run_lock, open_state_store


@dataclass(frozen=True)
class Maintained:
    """One table or output of the spec: what maintenance did, or why it was skipped."""

    name: str
    result: MaintenanceResult | None = None
    skipped: str | None = None


def maintain(
    spark: SparkSession,
    spec: PipelineSpec,
    *,
    only: Iterable[str] | None = None,
    on_item: Callable[[Maintained], None] | None = None,
) -> list[Maintained]:
    """Maintain the spec's Iceberg tables (all, or those `only` names), one at a time."""
    selected = selected_names(spec, only)
    candidates: tuple[TableSpec | OutputSpec, ...] = (*spec.tables, *spec.outputs)
    items = [item for item in candidates if selected is None or item.name in selected]
    store = open_state_store(spec.state_location)
    done = []
    now = datetime.now(UTC)
    with acquire_run_lock(store, spec.name, f"maintain-{new_run_id(now)}"):
        for item in items:
            outcome = _maintain_item(spark, spec, item, now)
            done.append(outcome)
            if on_item:
                on_item(outcome)
    return done


def _maintain_item(
    spark: SparkSession, spec: PipelineSpec, item: TableSpec | OutputSpec, now: datetime
) -> Maintained:
    sink = item.sink
    if not isinstance(sink, IcebergSink):
        return Maintained(item.name, skipped="Parquet dataset, nothing to maintain")
    kind = "tables" if isinstance(item, TableSpec) else "outputs"
    connection = sink.catalog.connection
    dataset = IcebergDataset(
        spark,
        sink,
        where=f"{spec.source_file}: {kind}.{item.name}",
        credentials=resolve_credentials(spec.connections[connection]) if connection else None,
    )
    if not dataset.exists():
        return Maintained(item.name, skipped=f"{dataset.identifier} does not exist yet")
    return Maintained(item.name, maintain_table(dataset, sink.maintenance, now=now))
