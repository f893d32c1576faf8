"""Kill the real streaming job at the sink's kill points and prove it recovers exactly once.

One job, fed by capture files (any Spark line), is SIGKILLed at a chosen point of the
batch sink (`sluiceway.faults`, points listed in `sinks/batch_parquet.py`), restarted on
its checkpoint and killed at the next point, then run to completion. Its datasets must
equal, row for row, those of a clean run of the same input in another directory. Each
Spark line runs part of the chain (see KILLS), so neither pays for all four kills.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyspark

from sluiceway.demo.events import SampleRecord, sample_records, write_capture
from sluiceway.stream_spec import load_stream_spec

from .conftest import files_source, read_dataset, run_stream_cli, write_stream_spec

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
FILES, PER_FILE, RESENT = 9, 40, 30  # 9 files + 1 of re-sent copies, 2 a batch: 5 batches
# Processing-time audit columns: set when an attempt runs, so a replay differs legitimately.
IGNORED = {"events": {"_extracted_at"}, "dead_letters": {"_ingested_at"}}


def _batch(kind: str, sink: Path, batch_id: int) -> Path:
    return sink / kind / (f"{batch_id:020d}" + ("" if kind == "staging" else ".json"))


def _plan(sink: Path, batch_id: int) -> dict[str, Any]:
    return json.loads(_batch("pending", sink, batch_id).read_text())


def _local(uri: str) -> Path:
    return Path(uri.removeprefix("file:"))


def _killed_mid_moves(sink: Path, checkpoint: Path) -> None:
    moves = _plan(sink, 1)["moves"]
    assert len(moves) > 2, moves
    done = [_local(dst).exists() and not _local(src).exists() for src, dst in moves]
    assert done == [True, True] + [False] * (len(moves) - 2), done
    assert not _batch("commits", sink, 1).exists()


def _killed_after_plan(sink: Path, checkpoint: Path) -> None:
    plan = _plan(sink, 2)
    assert plan["deletes"], "batch 2 should compact the dead letters of batches 0 and 1"
    assert all(_local(src).exists() and not _local(dst).exists() for src, dst in plan["moves"])
    assert all(_local(path).exists() for path in plan["deletes"])
    assert not _batch("commits", sink, 2).exists()


def _killed_after_staging(sink: Path, checkpoint: Path) -> None:
    assert list(_batch("staging", sink, 3).rglob("*.parquet"))
    assert not _batch("pending", sink, 3).exists() and not _batch("commits", sink, 3).exists()


def _killed_before_spark_commit(sink: Path, checkpoint: Path) -> None:
    assert _batch("commits", sink, 4).exists() and not _batch("pending", sink, 4).exists()
    assert (checkpoint / "offsets" / "4").exists()
    assert not (checkpoint / "commits" / "4").exists()  # Spark will replay batch 4


@dataclass(frozen=True)
class Kill:
    point: str  # SLUICEWAY_KILL_AT
    arrival: int
    state: Callable[[Path, Path], None]  # checks what the kill left on disk


MID_MOVES = Kill("stream-move:1", 2, _killed_mid_moves)  # the second batch, after two moves
AFTER_PLAN = Kill("stream-planned:2", 1, _killed_after_plan)  # a compacting batch, none moved
AFTER_STAGING = Kill("stream-staged:3", 1, _killed_after_staging)  # staged, no plan: recomputed
BEFORE_SPARK_COMMIT = Kill(
    "stream-committed:4", 1, _killed_before_spark_commit
)  # ours, not Spark's

# Each Spark start-up costs ~25 s, so the lines share the points and CI, which runs both,
# tries each: a killed run restarts from the checkpoint the kill before it left, so a chain
# may skip points. Both end on the sink's commit, which the final run must replay as a no-op.
# The kill points and the recovery are the project's Python, the same on both lines.
if pyspark.__version__.startswith("3."):
    KILLS = (MID_MOVES, BEFORE_SPARK_COMMIT)
else:
    KILLS = (AFTER_PLAN, AFTER_STAGING, BEFORE_SPARK_COMMIT)


def _records() -> list[SampleRecord]:
    return sample_records(
        FILES * PER_FILE, malformed_share=0.1, seed=41, now=NOW, spread_seconds=5 * 3600
    )


def _write_input(directory: Path) -> None:
    """The same capture files, with the same modification times, in any directory."""
    records = _records()
    paths = write_capture(directory, records, per_file=PER_FILE, arrival=NOW)
    # Copies of events of the first batch, sent again: the dedupe state must drop them.
    resent = [r for r in records if r.event_id][:RESENT]
    paths += write_capture(directory, resent, per_file=RESENT, arrival=NOW + timedelta(minutes=1))
    # The files source takes the oldest files first; distinct times fix the batches.
    for index, path in enumerate(paths):
        os.utime(path, (1_700_000_000 + index, 1_700_000_000 + index))


def _spec(root: Path) -> Path:
    _write_input(root / "in")
    return write_stream_spec(root, files_source(root / "in", 2), sink_extra="compact_min_files = 2")


def _batches(result: subprocess.CompletedProcess[str]) -> list[int]:
    """The batches a run reported with records (not the empty ones that move the watermark)."""
    found = re.findall(r"^  batch (\d+): (\d+) records", result.stdout, re.MULTILINE)
    return [int(batch) for batch, records in found if int(records)]


def _files(path: str) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in Path(path).rglob("*.parquet"))


def _commits(sink: Path, root: Path) -> list[dict[str, Any]]:
    """The sink's commit records, with paths relative to the run's root."""
    prefix = f"{root.resolve()}/"

    def relative(path: str) -> str:  # moved files are named as given, compacted ones qualified
        return path.removeprefix("file:").removeprefix(prefix)

    records = []
    for path in sorted((sink / "commits").glob("*.json")):
        record = json.loads(path.read_text())
        records.append(
            {
                "batch_id": record["batch_id"],
                "metrics": record["metrics"],
                "partitions": record["partitions"],
                "files": [relative(f) for f in record["files"]],
                "deleted": [relative(f) for f in record["deleted"]],
            }
        )
    return records


def _rows(spark, path: str, ignored: set[str]) -> Counter:
    df = read_dataset(spark, path)
    assert df is not None, path
    kept = df.select(*sorted(set(df.columns) - ignored))
    return Counter(
        tuple(bytes(v) if isinstance(v, bytearray) else v for v in row) for row in kept.collect()
    )


def test_job_killed_at_each_sink_phase_recovers_to_the_rows_of_a_cleanrun_stream_cli(
    spark, tmp_path
):
    spec_path = _spec(tmp_path / "killed")
    spec = load_stream_spec(spec_path)
    checkpoint = Path(spec.trigger.checkpoint)
    sink = checkpoint / "sink"

    for kill in KILLS:
        armed = f"{kill.point}@{kill.arrival}"
        result = run_stream_cli(spec_path, armed)
        output = f"{armed}:\n{result.stdout}\n{result.stderr}"
        assert result.returncode == -signal.SIGKILL, output
        assert f"sluiceway: killed at {kill.point} (arrival {kill.arrival})" in result.stderr
        kill.state(sink, checkpoint)
    landed = _files(spec.sink.path)

    final = run_stream_cli(spec_path)
    assert final.returncode == 0, final.stdout + final.stderr
    # Spark replays batch 4, whose rows are in already: nothing is written again.
    assert _batches(final) == [4] and ": succeeded, " in final.stdout, final.stdout
    assert _files(spec.sink.path) == landed

    clean_path = _spec(tmp_path / "clean")
    clean_spec = load_stream_spec(clean_path)
    clean = run_stream_cli(clean_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert _batches(clean) == [0, 1, 2, 3, 4], clean.stdout

    records = _records()
    events = _rows(spark, spec.sink.path, IGNORED["events"])
    clean_events = _rows(spark, clean_spec.sink.path, IGNORED["events"])
    dead = _rows(spark, spec.sink.dead_letter_path, IGNORED["dead_letters"])
    clean_dead = _rows(spark, clean_spec.sink.dead_letter_path, IGNORED["dead_letters"])
    assert not clean_events - events, "rows missing after the kills"
    assert not events - clean_events, "rows written twice or changed by the kills"
    assert not clean_dead - dead and not dead - clean_dead
    # The clean run itself: every valid event once, every malformed record once.
    assert sum(clean_events.values()) == len({r.event_id for r in records if r.event_id})
    assert sum(clean_dead.values()) == len([r for r in records if r.event_id is None])
    # Same batches, same files, same compactions, same metrics.
    assert _commits(sink, tmp_path / "killed") == _commits(
        Path(clean_spec.trigger.checkpoint) / "sink", tmp_path / "clean"
    )
    assert _files(spec.sink.path) == _files(clean_spec.sink.path)
    assert not list((sink / "pending").glob("*")) and not list((sink / "staging").glob("*"))
    print(f"\nstream kill test: {len(KILLS)} kill points tried, all matched the clean run")
