"""What a run shows on its terminal: progress lines, the summary, and the one error line.

The `sluiceway` command and the job runner (runtimes/job.py) share this module; nothing
else in the library prints. Standard library only, so `package` and `deploy` import it
where PySpark is not installed.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluiceway.maintenance import Maintained
    from sluiceway.pipeline import RunReport, TableReport
    from sluiceway.stream_spec import StreamSpec
    from sluiceway.streaming import StreamReport

_SUMMARY_HEADER = ("table", "status", "read", "written", "quarantined", "partitions", "seconds")


def print_error(message: object) -> None:
    """The one line a failed run ends with, on stderr: `sluiceway: error: <message>`."""
    print(f"sluiceway: error: {message}", file=sys.stderr, flush=True)


def print_table_progress(item: TableReport) -> None:
    """One line as each table or output of a batch run finishes."""
    print(
        f"  {item.name}: {item.status}, {item.rows_written} rows, {landed_text(item)}, "
        f"{item.seconds:.1f}s",
        flush=True,
    )


def landed_text(item: TableReport) -> str:
    """Where a dataset's rows went: the Parquet partitions written, or the Iceberg commit
    (an Iceberg table has no partition directories of ours to count)."""
    if item.commit:
        return commit_line(item.commit)
    return f"{len(item.partitions)} partitions"


def _summary_row(t: TableReport) -> tuple[str, ...]:
    counts = (t.rows_read, t.rows_written, t.rows_quarantined, len(t.partitions))
    return (t.name, t.status, *map(str, counts), f"{t.seconds:.1f}", t.path)


def print_summary(report: RunReport) -> None:
    """The end-of-run table of a batch run: one line per dataset, then totals."""
    rows = [(*_SUMMARY_HEADER, "path"), *(_summary_row(t) for t in report.tables)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    for t in report.tables:
        if t.commit:
            print(f"  {t.name}: {commit_line(t.commit)}")
    total = sum(t.rows_written for t in report.tables)
    print(
        f"run {report.run_id}: {report.status}, {len(report.tables)} datasets, "
        f"{total} rows written, {report.seconds:.1f}s",
        flush=True,
    )


def print_maintained(item: Maintained) -> None:
    """One line per table or output `sluiceway maintain` went through."""
    r = item.result
    if r is None:
        print(f"  {item.name}: skipped ({item.skipped})", flush=True)
        return
    print(
        f"  {item.name} ({r.identifier}): {r.snapshots_expired} snapshots expired, "
        f"{r.data_files_rewritten} data files rewritten into {r.data_files_added}, "
        f"delete files {r.delete_files[0]} -> {r.delete_files[1]}, "
        f"{r.orphan_files_removed} orphan files removed, {r.seconds:.1f}s",
        flush=True,
    )


def commit_line(commit: Mapping[str, int]) -> str:
    """An Iceberg commit in a few words: its snapshot, rows and files added and removed."""
    files = (
        f"+{commit['added-data-files']}/-{commit['deleted-data-files']} data files, "
        f"+{commit['added-delete-files']}/-{commit['removed-delete-files']} delete files"
    )
    return (
        f"iceberg snapshot {commit['snapshot_id']}: +{commit['added-records']}/"
        f"-{commit['deleted-records']} rows, {files}"
    )


def print_batch_progress(record: Mapping[str, Any]) -> None:
    """One line per committed micro-batch of a stream."""
    m = record["metrics"]
    print(
        f"  batch {record['batch_id']}: {m['records']} records, {m['events']} events, "
        f"{m['dead_letters']} dead letters, {len(record['files'])} files, "
        f"{m.get('seconds', 0):.1f}s",
        flush=True,
    )


def print_stream_summary(spec: StreamSpec, report: StreamReport) -> None:
    """The line a stream run ends with: batches, events, dead letters, where they went."""
    print(
        f"==> {spec.name}: {report.status}, {len(report.batches)} batches, "
        f"{report.total('events')} events, {report.total('dead_letters')} dead letters, "
        f"{report.seconds:.1f}s (output {spec.sink.path}, dead letters "
        f"{spec.sink.dead_letter_path}, checkpoint {spec.trigger.checkpoint})",
        flush=True,
    )
