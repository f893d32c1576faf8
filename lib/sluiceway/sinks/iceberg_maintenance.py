"""Maintenance of one Iceberg table with Iceberg's own Spark procedures: compact small data
files (applying the delete files of merge-on-read writes), compact position delete files,
expire old snapshots, remove orphan files.

The watermark a pipeline resumes from is in the summary of its newest Sluiceway snapshot
(`IcebergDataset.committed()`); compaction commits carry none (Iceberg's procedures do not
take `CommitMetadata`'s properties, checked on 1.10 and 1.11). So expiry never removes
that snapshot: `older_than` is moved back to it when it is older than the window. It stays
(with the files it references) until the next run commits a newer one; without this an
expiry after a compaction could drop it, and the next run would re-read everything.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sluiceway.errors import SinkError, located
from sluiceway.sinks.iceberg import IcebergDataset
from sluiceway.spec import IcebergMaintenance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MaintenanceResult:
    """What maintenance did to one table."""

    identifier: str
    snapshots_expired: int
    data_files_rewritten: int
    data_files_added: int
    delete_files: tuple[int, int]  # in the current snapshot, before and after
    orphan_files_removed: int
    seconds: float


def maintain_table(
    dataset: IcebergDataset, settings: IcebergMaintenance, *, now: datetime | None = None
) -> MaintenanceResult:
    """Compact, then expire, then remove orphans (in this order, so the files compaction
    replaced go with the snapshots that referenced them)."""
    started = time.monotonic()
    now = now or datetime.now(UTC)
    ident = dataset.identifier
    with located(dataset.where, SinkError, doing=f"maintaining {ident}"):
        # Every file with a delete file is rewritten (its deletes applied), two small files
        # are enough to compact (Iceberg's defaults: 5, and never for deletes), and the
        # delete files left pointing at no live data file are dropped.
        deletes_before = _delete_file_count(dataset)
        data = _call(
            dataset,
            "rewrite_data_files",
            "options => map('min-input-files', '2', 'delete-file-threshold', '1', "
            "'remove-dangling-deletes', 'true')",
        )
        _call(dataset, "rewrite_position_delete_files", "options => map('min-input-files', '2')")
        before = _snapshot_count(dataset)
        older_than = _expiry_cutoff(dataset, now - timedelta(days=settings.keep_days))
        _call(
            dataset,
            "expire_snapshots",
            f"older_than => {_timestamp(older_than)}, retain_last => {settings.keep_snapshots}",
        )
        expired = before - _snapshot_count(dataset)
        deletes_after = _delete_file_count(dataset)
        orphans = dataset.spark.sql(
            f"CALL {dataset.sink.catalog.name}.system.remove_orphan_files("
            f"table => '{dataset.sink.table}', "
            f"older_than => {_timestamp(now - timedelta(days=settings.orphan_days))})"
        ).count()
    return MaintenanceResult(
        identifier=ident,
        snapshots_expired=expired,
        data_files_rewritten=data.get("rewritten_data_files_count", 0),
        data_files_added=data.get("added_data_files_count", 0),
        delete_files=(deletes_before, deletes_after),
        orphan_files_removed=orphans,
        seconds=round(time.monotonic() - started, 1),
    )


def _call(dataset: IcebergDataset, procedure: str, args: str) -> dict[str, int]:
    """Run one of Iceberg's procedures on the table; its one result row."""
    extra = f", {args}" if args else ""
    rows = dataset.spark.sql(
        f"CALL {dataset.sink.catalog.name}.system.{procedure}("
        f"table => '{dataset.sink.table}'{extra})"
    ).collect()
    log.info("%s: %s: %s", dataset.where, procedure, rows)
    return rows[0].asDict() if rows else {}


def _delete_file_count(dataset: IcebergDataset) -> int:
    # The procedures' own counts miss the dangling delete files they drop.
    files = dataset.spark.table(f"{dataset.identifier}.files")
    return int(files.filter("content > 0").count())


def _snapshot_count(dataset: IcebergDataset) -> int:
    return int(dataset.spark.table(f"{dataset.identifier}.snapshots").count())


def _expiry_cutoff(dataset: IcebergDataset, cutoff: datetime) -> datetime:
    """`cutoff`, or the time of the snapshot holding the watermark if that is older (a
    snapshot is expired only if strictly older than the cutoff)."""
    committed = dataset.committed()
    if committed is None:
        return cutoff
    rows = dataset.spark.sql(
        f"SELECT unix_millis(committed_at) AS ms FROM {dataset.identifier}.snapshots "
        f"WHERE snapshot_id = {int(committed['snapshot_id'])}"
    ).collect()
    kept = datetime.fromtimestamp(rows[0]["ms"] / 1000, UTC)
    return min(cutoff, kept)


def _timestamp(moment: datetime) -> str:
    """A Spark SQL timestamp literal for `moment`, whatever the session time zone."""
    return f"TIMESTAMP '{moment.astimezone(UTC).isoformat(timespec='milliseconds')}'"
