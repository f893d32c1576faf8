"""The streaming pipeline on any Spark line, fed by capture files (the files source)."""

from __future__ import annotations

import json
from pathlib import Path

from sluiceway import streaming
from sluiceway.demo.events import sample_records, write_capture
from sluiceway.stream_spec import load_stream_spec

from .conftest import files_source, ids, read_dataset, write_stream_spec


def _files_spec(tmp_path: Path, **kwargs) -> Path:
    return write_stream_spec(tmp_path, files_source(tmp_path / "in", 2), **kwargs)


def test_files_stream_writes_valid_events_once_and_bad_records_as_dead_letters(spark, tmp_path):
    records = sample_records(600, malformed_share=0.1, duplicate_share=0.05, seed=1)
    write_capture(tmp_path / "in", records, per_file=100)
    spec = load_stream_spec(_files_spec(tmp_path))

    report = streaming.run_spec(spark, spec)

    valid = {r.event_id for r in records if r.event_id is not None}
    malformed = [r for r in records if r.event_id is None]
    events = read_dataset(spark, spec.sink.path)
    written = ids(events)
    assert len(malformed) == 60
    assert sorted(written) == sorted(valid)  # each valid event once, re-sent copies dropped
    dead = read_dataset(spark, spec.sink.dead_letter_path)
    assert dead is not None
    rows = dead.collect()
    assert sorted(bytes(r["payload"]) for r in rows) == sorted(r.data for r in malformed)
    assert all(r["error"] and r["shard_id"] and r["sequence_number"] for r in rows)
    assert report.total("events") == len(valid)
    assert report.total("dead_letters") == 60
    assert len(report.batches) >= 3  # 6 files, 2 per batch
    partitions = {(r["event_date"], r["event_hour"]) for r in events.collect()}
    assert partitions and all(hour is not None for _, hour in partitions)
    assert all(p.name.startswith("part-b") for p in Path(spec.sink.path).rglob("*.parquet"))


def test_second_available_now_run_reads_only_files_added_since(spark, tmp_path):
    first = sample_records(200, seed=2)
    write_capture(tmp_path / "in", first, per_file=100)
    spec = load_stream_spec(_files_spec(tmp_path))
    streaming.run_spec(spark, spec)

    second = sample_records(150, malformed_share=0.2, seed=3)
    write_capture(tmp_path / "in", second, per_file=100)
    report = streaming.run_spec(spark, spec)

    assert report.total("records") == 150
    assert report.total("dead_letters") == 30
    expected = {r.event_id for r in [*first, *second] if r.event_id}
    assert sorted(ids(read_dataset(spark, spec.sink.path))) == sorted(expected)


def test_quality_failures_go_to_dead_letters_and_transforms_apply_to_valid_events(spark, tmp_path):
    records = sample_records(120, seed=5)
    write_capture(tmp_path / "in", records, per_file=200)
    events_extra = """
    quality = [{ rule = "accepted_values", column = "event_type", values = ["view", "click"] }]
    transforms = [{ name = "with_hashed_columns", params = { columns = ["user_id"], salt = "pepper" } }]
    """
    spec = load_stream_spec(_files_spec(tmp_path, events_extra=events_extra))

    streaming.run_spec(spark, spec)

    kinds = {json.loads(r.data)["event_id"]: json.loads(r.data)["event_type"] for r in records}
    events = read_dataset(spark, spec.sink.path)
    dead = read_dataset(spark, spec.sink.dead_letter_path)
    kept = {i for i, kind in kinds.items() if kind in ("view", "click")}
    assert sorted(ids(events)) == sorted(kept)
    assert dead.count() == len(kinds) - len(kept)
    assert {r["error"] for r in dead.collect()} == {"quality: accepted_values(event_type)"}
    assert dict(events.dtypes)["user_id"] == "string"
    assert all(len(r["user_id"]) == 64 for r in events.select("user_id").collect())


def test_dedupe_state_parts_are_fixed_by_the_first_run_and_the_session_is_left_alone(
    spark, tmp_path
):
    write_capture(tmp_path / "in", sample_records(100, seed=4), per_file=100)
    path = _files_spec(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[trigger]\n", "[trigger]\nstate_partitions = 3\n"))
    before = spark.conf.get("spark.sql.shuffle.partitions")
    spec = load_stream_spec(path)
    streaming.run_spec(spark, spec)

    state = Path(spec.trigger.checkpoint) / "state" / "0"
    assert sorted(p.name for p in state.iterdir() if p.name.isdigit()) == ["0", "1", "2"]
    assert spark.conf.get("spark.sql.shuffle.partitions") == before

    # A restart keeps the checkpoint's number, whatever the spec says now.
    write_capture(tmp_path / "in", sample_records(50, seed=5), per_file=100)
    path.write_text(text.replace("[trigger]\n", "[trigger]\nstate_partitions = 5\n"))
    report = streaming.run_spec(spark, load_stream_spec(path))

    assert report.total("records") == 50
    assert sorted(p.name for p in state.iterdir() if p.name.isdigit()) == ["0", "1", "2"]
