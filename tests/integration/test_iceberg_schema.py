"""Schema evolution of Iceberg sinks on real Spark and the pinned Iceberg runtime: new
columns are added, the widenings Iceberg allows are applied, a column the batch lacks keeps
its value, and every other change is refused before anything is written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest

from sluiceway import pipeline
from sluiceway.errors import SinkError
from sluiceway.sinks import iceberg
from sluiceway.sinks.dataset import Batch
from sluiceway.sinks.iceberg import RUN_ID_PROPERTY, WATERMARK_PROPERTY, IcebergDataset
from sluiceway.spec import load_spec

from .dbs import write_spec
from .iceberg import iceberg_dataset
from .test_iceberg import _create_source, _db_rows, _table_rows

BASE = "id INT, name STRING, n INT, f FLOAT, d DECIMAL(10,2)"
BASE_ROWS = [(1, "a", 1, 1.5, Decimal("1.25")), (2, "b", 2, 2.5, Decimal("2.50"))]


def _dataset(spark, tmp_path, *, key: tuple[str, ...] = ("id",)) -> IcebergDataset:
    return iceberg_dataset(
        spark,
        tmp_path,
        key=key,
        write_mode="merge-on-read",
        incremental_column=None,
        where="x.toml: tables.t",
    )


def _batch(spark, schema: str, rows: list[tuple], run_id: str = "r") -> Batch:
    props = {RUN_ID_PROPERTY: run_id, WATERMARK_PROPERTY: f'{{"run": "{run_id}"}}'}
    return Batch(spark.createDataFrame(rows, schema), commit_properties=props)


def _created(spark, tmp_path, **kwargs) -> IcebergDataset:
    ds = _dataset(spark, tmp_path, **kwargs)
    ds.write(_batch(spark, BASE, BASE_ROWS, "r1"), "overwrite")
    return ds


def _types(ds: IcebergDataset) -> dict[str, str]:
    return {f.name: f.dataType.simpleString() for f in ds.read().schema.fields}


def _rows(ds: IcebergDataset) -> list[tuple]:
    return sorted(tuple(r) for r in ds.read().collect())


def _snapshots(spark, ds: IcebergDataset) -> list[int]:
    rows = spark.sql(f"SELECT snapshot_id FROM {ds.identifier}.snapshots ORDER BY committed_at")
    return [r[0] for r in rows.collect()]


def test_a_new_batch_column_is_added_and_lands_in_one_data_commit(spark, tmp_path):
    ds = _created(spark, tmp_path)
    before = _snapshots(spark, ds)
    batch = _batch(
        spark,
        BASE + ", note STRING",
        [(2, "b", 2, 2.5, Decimal("2.50"), "x"), (3, "c", 3, 3.5, Decimal("3.50"), None)],
        "r2",
    )
    ds.write(batch, "merge")
    assert list(_types(ds)) == ["id", "name", "n", "f", "d", "note"]
    assert ds.read().schema["note"].nullable
    assert _rows(ds) == [
        (1, "a", 1, 1.5, Decimal("1.25"), None),  # an old row reads NULL in the new column
        (2, "b", 2, 2.5, Decimal("2.50"), "x"),
        (3, "c", 3, 3.5, Decimal("3.50"), None),
    ]
    # The ALTER made no snapshot: one more snapshot, the data's, with the watermark.
    after = _snapshots(spark, ds)
    assert after[:-1] == before and len(after) == len(before) + 1
    committed = ds.committed()
    assert committed is not None
    assert (committed["run_id"], committed["snapshot_id"]) == ("r2", after[-1])


def test_int_float_and_decimal_columns_widen_in_place_and_keep_taking_narrower_batches(
    spark, tmp_path
):
    ds = _created(spark, tmp_path)
    wide = "id INT, name STRING, n BIGINT, f DOUBLE, d DECIMAL(14,2)"
    big = 2**40
    ds.write(_batch(spark, wide, [(3, "c", big, 0.1, Decimal("123456789012.34"))]), "merge")
    assert _types(ds) == {
        "id": "int",
        "name": "string",
        "n": "bigint",
        "f": "double",
        "d": "decimal(14,2)",
    }
    # Rows written before the widening read in the wider type, unchanged.
    assert _rows(ds) == [
        (1, "a", 1, 1.5, Decimal("1.25")),
        (2, "b", 2, 2.5, Decimal("2.50")),
        (3, "c", big, 0.1, Decimal("123456789012.34")),
    ]
    # A batch of the old, narrower types still fits (a smallint too: Iceberg has none).
    narrow = "id INT, name STRING, n SMALLINT, f FLOAT, d DECIMAL(10,2)"
    ds.write(_batch(spark, narrow, [(4, "d", 4, 4.5, Decimal("4.00"))]), "merge")
    assert _types(ds)["n"] == "bigint"
    assert (4, "d", 4, 4.5, Decimal("4.00")) in _rows(ds)


def test_a_column_missing_from_the_batch_keeps_its_value_on_update_and_is_null_on_insert(
    spark, tmp_path
):
    ds = _created(spark, tmp_path)
    without_name = "id INT, n INT, f FLOAT, d DECIMAL(10,2)"
    rows = [(2, 20, 2.5, Decimal("2.50")), (3, 30, 3.5, Decimal("3.50"))]
    ds.write(_batch(spark, without_name, rows, "r2"), "merge")
    assert _rows(ds) == [
        (1, "a", 1, 1.5, Decimal("1.25")),
        (2, "b", 20, 2.5, Decimal("2.50")),  # updated, its name kept
        (3, None, 30, 3.5, Decimal("3.50")),  # inserted: NULL
    ]
    assert list(_types(ds)) == ["id", "name", "n", "f", "d"]
    # The same on a key-less append and a dynamic partition overwrite.
    ds.write(_batch(spark, without_name, [(5, 50, 5.5, Decimal("5.00"))]), "append")
    ds.write(_batch(spark, without_name, [(6, 60, 6.5, Decimal("6.00"))]), "overwrite_partitions")
    assert _rows(ds) == [(6, None, 60, 6.5, Decimal("6.00"))]  # unpartitioned: all replaced


@pytest.mark.parametrize(
    ("schema", "row", "refused"),
    [
        (
            "id INT, name INT, n INT, f FLOAT, d DECIMAL(10,2)",
            (9, 9, 9, 9.0, Decimal("9.00")),
            "column 'name': string in the table, int in the batch",
        ),
        (
            "id INT, name STRING, n INT, f FLOAT, d DECIMAL(12,3)",
            (9, "z", 9, 9.0, Decimal("9.000")),
            "column 'd': decimal(10,2) in the table, decimal(12,3) in the batch",
        ),
        (
            "id INT, name STRING, n DATE, f FLOAT, d DECIMAL(10,2)",
            (9, "z", None, 9.0, Decimal("9.00")),
            "column 'n': int in the table, date in the batch",
        ),
    ],
)
def test_a_change_iceberg_cannot_make_is_refused_before_any_alter_or_write(
    spark, tmp_path, schema, row, refused
):
    ds = _created(spark, tmp_path)
    before = (_rows(ds), _types(ds), _snapshots(spark, ds))
    # The new column would be added by a batch that fits: the refusal must prevent it too.
    batch = _batch(spark, schema + ", extra STRING", [(*row, "e")], "r2")
    with pytest.raises(SinkError) as info:
        ds.write(batch, "merge")
    message = str(info.value)
    assert message.startswith("x.toml: tables.t: the batch does not fit")
    assert refused in message and "nothing was written" in message
    assert (_rows(ds), _types(ds), _snapshots(spark, ds)) == before
    committed = ds.committed()
    assert committed is not None and committed["run_id"] == "r1"


def test_a_not_null_column_missing_from_the_batch_is_refused(spark, tmp_path):
    ds = _dataset(spark, tmp_path)
    spark.sql(f"CREATE TABLE {ds.identifier} (id INT, name STRING NOT NULL) USING iceberg")
    spark.sql(f"INSERT INTO {ds.identifier} VALUES (1, 'a')")
    with pytest.raises(SinkError, match="column 'name': NOT NULL in the table"):
        ds.write(_batch(spark, "id INT", [(2,)]), "merge")
    assert _rows(ds) == [(1, "a")]


def test_a_run_failing_between_the_alter_and_the_data_commit_is_rerun_cleanly(
    spark, tmp_path, monkeypatch
):
    ds = _created(spark, tmp_path)
    before = _snapshots(spark, ds)
    real = iceberg.with_commit_properties

    def failing(spark_, properties, write):
        raise SinkError("killed before the data commit")

    monkeypatch.setattr(iceberg, "with_commit_properties", failing)
    wide = BASE.replace("n INT", "n BIGINT") + ", note STRING"
    batch = _batch(spark, wide, [(3, "c", 2**40, 3.5, Decimal("3.50"), "x")], "r2")
    with pytest.raises(SinkError, match="killed before the data commit"):
        ds.write(batch, "merge")
    # The schema moved, the data and the watermark did not.
    assert _types(ds)["n"] == "bigint" and "note" in _types(ds)
    assert _snapshots(spark, ds) == before
    assert ds.committed()["run_id"] == "r1"  # type: ignore[index]
    monkeypatch.setattr(iceberg, "with_commit_properties", real)
    ds.write(batch, "merge")  # the rerun: nothing left to alter, the rows land
    assert (3, "c", 2**40, 3.5, Decimal("3.50"), "x") in _rows(ds)
    assert ds.committed()["run_id"] == "r2"  # type: ignore[index]


def test_a_run_killed_between_the_alter_and_the_data_commit_reruns_to_a_clean_result(
    spark, tmp_path, pg_conn_info
):
    db = pg_conn_info
    _create_source(db, "ice_evolve")
    catalog = f"k{uuid.uuid4().hex[:8]}"
    spec_path = write_spec(
        tmp_path,
        db,
        f"""
[catalogs.{catalog}]
type = "hadoop"

[tables.ice_evolve]
table = "ice_evolve"
primary_key = ["id"]
incremental_column = "updated_at"
sink = {{ format = "iceberg" }}
""",
        name="ice",
    )
    spec = load_spec(spec_path)
    ident = f"{catalog}.ice.ice_evolve"
    pipeline.run(spark, spec)
    ds = IcebergDataset(spark, spec.tables[0].sink, where="test")  # type: ignore[arg-type]
    before = (_snapshots(spark, ds), ds.committed())
    db.execute(
        "ALTER TABLE ice_evolve ADD COLUMN note text",
        "UPDATE ice_evolve SET note = 'n', updated_at = TIMESTAMPTZ '2024-01-05 00:00:00+00' "
        "WHERE id = 3",
    )
    killed = subprocess.run(
        [sys.executable, "-m", "sluiceway.cli", "run", str(spec_path), "--master", "local[1]"],
        capture_output=True,
        text=True,
        env={**os.environ, "SLUICEWAY_KILL_AT": f"iceberg-evolved:{ident}"},
        timeout=300,
        check=False,
        start_new_session=True,  # the kill takes the child's process group, not pytest's
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert f"killed at iceberg-evolved:{ident}" in killed.stderr
    spark.sql(f"REFRESH TABLE {ident}")
    assert "note" in _types(ds)  # the schema moved; the data and the watermark did not
    assert (_snapshots(spark, ds), ds.committed()) == before

    rerun = pipeline.run(spark, spec).tables[0]
    assert rerun.mode == "incremental" and rerun.watermark_before == before[1]["watermark"]
    assert _table_rows(spark, ident) == _db_rows(db, "ice_evolve")
    notes = {r[0]: r[1] for r in spark.table(ident).select("id", "note").collect()}
    assert notes == {i: ("n" if i == 3 else None) for i in range(1, 9)}
