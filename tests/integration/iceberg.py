"""An Iceberg table of a test's own: `ns.t` in a fresh hadoop catalog under tmp_path (a
catalog name Spark has not loaded yet, so its warehouse is this test's)."""

from __future__ import annotations

import uuid
from pathlib import Path

from sluiceway.sinks.iceberg import IcebergDataset
from sluiceway.spec import IcebergCatalog, IcebergSink, IcebergWriteMode, PartitionField


def iceberg_dataset(
    spark,
    tmp_path: Path,
    *,
    key: tuple[str, ...] = ("id",),
    partitioning: tuple[PartitionField, ...] = (),
    write_mode: IcebergWriteMode = "copy-on-write",
    incremental_column: str | None = "updated_at",
    where: str = "test",
) -> IcebergDataset:
    catalog = IcebergCatalog(f"c{uuid.uuid4().hex[:8]}", "hadoop", str(tmp_path / "wh"))
    sink = IcebergSink(
        catalog=catalog,
        table="ns.t",
        path=str(tmp_path / "wh" / "ns" / "t"),
        mode="merge",
        compression="zstd",
        quarantine_path=str(tmp_path / "q"),
        partitioning=partitioning,
        write_mode=write_mode,
    )
    return IcebergDataset(
        spark, sink, where=where, primary_key=key, incremental_column=incremental_column
    )
