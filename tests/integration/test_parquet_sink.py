"""The Parquet sink on real local Spark: kills inside the swap, partition types, schema
evolution, NULL keys, append windows, odd existing datasets."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from sluiceway.errors import SinkError
from sluiceway.faults import ENV as KILL_AT
from sluiceway.sinks.parquet import write_parquet

from . import parquet_kill_child as child

ROOT = Path(__file__).resolve().parents[2]


def _rows(spark, path, schema: str | None = None) -> Counter:
    """The rows at `path` as (column, value) tuples; partition columns typed by `schema`."""
    reader = spark.read.schema(schema) if schema else spark.read
    return Counter(tuple(sorted(r.asDict().items())) for r in reader.parquet(str(path)).collect())


def _as_rows(rows, schema: str) -> Counter:
    names = [part.split()[0] for part in re.split(r",(?![^(]*\))", schema)]
    return Counter(tuple(sorted(zip(names, row, strict=True))) for row in rows)


def _write(spark, rows, schema, path, mode, partition_by=(), primary_key=(), **kwargs):
    return write_parquet(
        spark,
        spark.createDataFrame(rows, schema),
        str(path),
        mode=mode,
        partition_by=partition_by,
        primary_key=primary_key,
        staging_path=str(path.parent / "_staging" / path.name),
        where="test",
        **kwargs,
    )


def _base(spark, path: Path) -> None:
    _write(spark, child.BASE, child.SCHEMA, path, "overwrite", child.PARTITION_BY, ("id",))


@pytest.mark.parametrize(
    ("point", "left"),
    [
        ("staged:merge", "staging only: the dataset is untouched, the plan is not written"),
        ("swap:merge@2", "two of the plan's moves done, old files of those partitions still in"),
    ],
)
def test_merge_killed_in_the_real_sink_is_completed_by_the_rerun(spark, tmp_path, point, left):
    clean, killed = tmp_path / "clean" / "data", tmp_path / "killed" / "data"
    _base(spark, clean)
    child.merge(spark, str(clean), str(tmp_path / "clean" / "_staging" / "merge"))
    _base(spark, killed)
    staging = tmp_path / "killed" / "_staging" / "merge"

    result = subprocess.run(
        [sys.executable, "-m", "tests.integration.parquet_kill_child", str(killed), str(staging)],
        cwd=ROOT,
        env={**os.environ, KILL_AT: point},
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )

    name, _, arrival = point.partition("@")
    assert result.returncode == -signal.SIGKILL, result.stdout + result.stderr
    assert f"sluiceway: killed at {name} (arrival {arrival or 1})" in result.stderr, left
    assert (staging / "_plan.json").exists() == name.startswith("swap")
    if name.startswith("swap"):  # mid-swap: a reader sees new files beside old ones, for now
        assert sum(_rows(spark, killed, child.SCHEMA).values()) > len(child.BASE) + 3
    else:
        assert _rows(spark, killed, child.SCHEMA) == _as_rows(child.BASE, child.SCHEMA)

    child.merge(spark, str(killed), str(staging))  # the rerun of the same merge

    assert _rows(spark, killed, child.SCHEMA) == _rows(spark, clean, child.SCHEMA)
    assert not staging.exists()


def test_string_partition_values_keep_their_leading_zeros(spark, tmp_path):
    path = tmp_path / "data"
    schema = "id int, day string, v string"
    _write(
        spark, [(1, "01", "a"), (2, "01", "b"), (3, "10", "c")], schema, path, "overwrite", ("day",)
    )

    result = _write(spark, [(2, "01", "b2")], schema, path, "merge", ("day",), ("id",))

    # Read back as inferred types, "01" would be 1, and the merge would replace the whole
    # partition with its one batch row (id 1 lost).
    assert _rows(spark, path, schema) == _as_rows(
        [(1, "01", "a"), (2, "01", "b2"), (3, "10", "c")], schema
    )
    assert result.partitions == ({"day": "01"},) and result.removed == ()
    assert sorted(p.name for p in path.iterdir() if p.is_dir()) == ["day=01", "day=10"]


def test_timestamp_and_decimal_partitions_are_merged_not_emptied(spark, tmp_path):
    path = tmp_path / "data"
    schema = "id int, at timestamp, price decimal(10,2), v string"
    t1, t2 = datetime(2024, 1, 1, 10, 30), datetime(2024, 1, 2, 0, 0, 0, 500)
    rows = [
        (1, t1, Decimal("1.50"), "a"),
        (2, t1, Decimal("1.50"), "b"),
        (3, t2, Decimal("2.00"), "c"),
        (4, None, None, "d"),
    ]
    _write(spark, rows, schema, path, "overwrite", ("at", "price"))

    batch = [(1, t1, Decimal("1.50"), "a2"), (4, None, None, "d2"), (5, t2, Decimal("2.00"), "e")]
    result = _write(spark, batch, schema, path, "merge", ("at", "price"), ("id",))

    stored = Counter(
        (r.id, r.at, r.price, r.v) for r in spark.read.schema(schema).parquet(str(path)).collect()
    )
    assert stored == Counter(
        [
            (1, t1, Decimal("1.50"), "a2"),
            (2, t1, Decimal("1.50"), "b"),
            (3, t2, Decimal("2.00"), "c"),
            (4, None, None, "d2"),
            (5, t2, Decimal("2.00"), "e"),
        ]
    )
    # One text per value, as Spark names the directories (and as Glue will list them).
    assert result.partitions == (
        {"at": "2024-01-01 10:30:00", "price": "1.50"},
        {"at": "2024-01-02 00:00:00.0005", "price": "2.00"},
        {"at": None, "price": None},
    )
    assert result.removed == ()


def test_merge_keeps_columns_only_some_files_have_and_sees_their_type_change(spark, tmp_path):
    path = tmp_path / "data"
    old, new = "id int, day string, v string", "id int, day string, v string, extra int"
    _write(spark, [(1, "a", "x"), (2, "b", "y")], old, path, "overwrite", ("day",))
    # The source gained a column: day=b is rewritten with it, day=a (listed first) is not.
    _write(spark, [(3, "b", "z", 7)], new, path, "merge", ("day",), ("id",))
    # Touches day=b again: row 3's `extra`, in no file of day=a, must survive.
    _write(spark, [(4, "b", "w", 8)], new, path, "merge", ("day",), ("id",))

    df = spark.read.option("mergeSchema", "true").parquet(str(path))
    assert sorted(tuple(r) for r in df.select("id", "v", "extra", "day").collect()) == [
        (1, "x", None, "a"),
        (2, "y", None, "b"),
        (3, "z", 7, "b"),
        (4, "w", 8, "b"),
    ]
    # `extra` is in the files of day=b only; its type change is still refused.
    with pytest.raises(SinkError, match=r"column 'extra' changes type from int to string"):
        _write(
            spark,
            [(5, "c", "u", "t")],
            "id int, day string, v string, extra string",
            path,
            "merge",
            ("day",),
            ("id",),
        )


def test_null_key_parts_are_refused_with_their_count_and_the_dataset_is_untouched(spark, tmp_path):
    path = tmp_path / "data"
    schema = "a int, b int, v string"
    _write(spark, [(1, 1, "x")], schema, path, "overwrite", (), ("a", "b"))
    before = _rows(spark, path)

    with pytest.raises(
        SinkError, match=r"^test: 2 rows have a NULL in primary key column\(s\) a, b"
    ):
        _write(
            spark,
            [(1, None, "y"), (None, 2, "z"), (3, 3, "w")],
            schema,
            path,
            "merge",
            (),
            ("a", "b"),
        )

    assert _rows(spark, path) == before
    assert not (tmp_path / "_staging" / "data").exists()


def test_append_of_the_same_window_twice_lands_its_rows_once(spark, tmp_path):
    path = tmp_path / "data"
    schema = "seq int, day string, v string"
    _write(spark, [(1, "a", "x"), (2, "a", "y")], schema, path, "overwrite", ("day",))
    # Window w1 re-reads seq >= 2 (the overlap): row 2 is in already, rows 3 and 4 are new.
    window = [(2, "a", "y"), (3, "a", "z"), (4, "b", "z")]
    overlap = F.col("seq") >= 2
    _write(spark, window, schema, path, "append", ("day",), window="w1", overlap=overlap)
    once = _rows(spark, path, schema)
    _write(spark, window, schema, path, "append", ("day",), window="w1", overlap=overlap)

    assert _rows(spark, path, schema) == once
    assert once == _as_rows([(1, "a", "x"), (2, "a", "y"), (3, "a", "z"), (4, "b", "z")], schema)


def test_a_dataset_holding_only_success_is_written_as_new(spark, tmp_path):
    path = tmp_path / "data"
    path.mkdir()
    (path / "_SUCCESS").write_text("")

    _write(spark, [(1, "x")], "id int, v string", path, "merge", (), ("id",))

    assert _rows(spark, path) == _as_rows([(1, "x")], "id int, v string")


def test_an_unknown_mode_is_refused_before_anything_is_written(spark, tmp_path):
    path = tmp_path / "data"
    _write(spark, [(1, "x")], "id int, v string", path, "overwrite")
    with pytest.raises(SinkError, match=r"^test: unknown write mode 'upsert'"):
        _write(spark, [(2, "y")], "id int, v string", path, "upsert")
    assert _rows(spark, path) == _as_rows([(1, "x")], "id int, v string")
