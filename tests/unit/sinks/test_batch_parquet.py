from __future__ import annotations

from pathlib import Path

from sluiceway.sinks.batch_parquet import BatchOutput, BatchSink


def _sink(spark, tmp_path: Path, **kwargs) -> BatchSink:
    options = {"compression": "snappy", "target_file_mb": 128, "compact_min_files": 50}
    return BatchSink(spark, str(tmp_path / "ck"), where="test", **{**options, **kwargs})


def _output(spark, tmp_path: Path, rows: list[tuple[int, str]]) -> BatchOutput:
    df = spark.createDataFrame(rows, "id int, day string")
    return BatchOutput("events", df, str(tmp_path / "events"), ("day",))


def _ids(spark, tmp_path: Path) -> list[int]:
    return sorted(r["id"] for r in spark.read.parquet(str(tmp_path / "events")).collect())


def _files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "events").rglob("*.parquet"))


def test_a_replayed_committed_batch_writes_nothing(spark, tmp_path):
    sink = _sink(spark, tmp_path)
    first = sink.write_batch(0, [_output(spark, tmp_path, [(1, "a"), (2, "b")])], {"n": 2})
    files = _files(tmp_path)

    again = sink.write_batch(0, [_output(spark, tmp_path, [(3, "a")])], {"n": 1})

    assert again == first and _files(tmp_path) == files
    assert _ids(spark, tmp_path) == [1, 2]
    assert all(name.startswith("part-b000000000000-") for name in files)


def test_small_files_of_a_partition_are_compacted_once_they_reach_the_threshold(spark, tmp_path):
    sink = _sink(spark, tmp_path, compact_min_files=3)
    for batch in range(4):
        sink.write_batch(batch, [_output(spark, tmp_path, [(batch, "a")])], {})

    names = _files(tmp_path)

    assert _ids(spark, tmp_path) == [0, 1, 2, 3]
    assert [n[:6] for n in names] == ["part-b", "part-c"]  # batch 3's file and the merge
    assert sink.commits()[-1]["deleted"] and len(sink.commits()) == 4
