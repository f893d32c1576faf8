"""The TPC-H demo on the test PostgreSQL: its spec pointed at a schema of its own, and the
answers the source gives to check a run against."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sluiceway.sinks.iceberg import WATERMARK_PROPERTY
from sluiceway.spec import IcebergSink, load_spec

ROOT = Path(__file__).resolve().parents[2]
SCALE = 0.01
REVENUE_SQL = (
    "SELECT n.n_name, SUM(l.l_extendedprice * (1 - l.l_discount)) FROM lineitem l "
    "JOIN orders o ON o.o_orderkey = l.l_orderkey JOIN customer c ON c.c_custkey = o.o_custkey "
    "JOIN nation n ON n.n_nationkey = c.c_nationkey GROUP BY n.n_name"
)


def query(conninfo: str, schema: str, text: str) -> list[tuple]:
    """The rows of `text` run in `schema`."""
    with psycopg.connect(conninfo) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        return conn.execute(text).fetchall()


def revenue_by_nation(conninfo: str, schema: str) -> dict[str, object]:
    """The source's revenue per nation: what the gold table must sum to, to the cent."""
    return {name.rstrip(): total for name, total in query(conninfo, schema, REVENUE_SQL)}


def _iceberg_tables_in(text: str, namespace: str) -> str:
    """The spec with each Iceberg sink's `table` set to `namespace.<dataset name>`."""
    lines, name = [], ""
    for line in text.splitlines():
        if line.startswith(("[tables.", "[outputs.")):
            name = line.strip("[]").split(".")[1]
        lines.append(
            line.replace('format = "iceberg"', f'format = "iceberg", table = "{namespace}.{name}"')
        )
    return "\n".join(lines) + "\n"


def demo_spec(tmp_path: Path, schema: str, port: int, glue_database: str | None = None) -> Path:
    """pipelines/tpch_demo.toml reading `schema` on the test server, written under tmp_path."""
    text = (ROOT / "pipelines" / "tpch_demo.toml").read_text()
    text = text.replace('table = "public.', f'table = "{schema}.').replace(
        "port = 25432", f"port = {port}"
    )
    if glue_database:
        # Parquet's Glue tables and the glue catalog's Iceberg tables in a database of its own.
        text = text.replace('database = "tpch_demo"', f'database = "{glue_database}"')
        text = _iceberg_tables_in(text, glue_database)
    spec = tmp_path / "tpch_demo.toml"
    spec.write_text(text)
    return spec


def demo_dataset(spark: SparkSession, spec: Path, output: Path, name: str) -> DataFrame:
    """The demo's dataset `name` as written under the local `output`: an Iceberg table
    (silver, gold) read from its location in the hadoop catalog, Parquet (bronze) by path."""
    sink = load_spec(spec, output_root=str(output)).item(name).sink
    if isinstance(sink, IcebergSink):
        return spark.read.format("iceberg").load(sink.path)
    return spark.read.parquet(sink.path)


def snapshot_watermark(spark: SparkSession, location: str) -> str | None:
    """The watermark a next run takes from the Iceberg table at `location`: that of the
    newest snapshot in its current history carrying one (JSON text; None: no such one)."""
    history = spark.read.format("iceberg").load(f"{location}#history")
    snapshots = spark.read.format("iceberg").load(f"{location}#snapshots")
    watermark = F.col("summary")[WATERMARK_PROPERTY]
    row = (
        history.filter("is_current_ancestor")
        .join(snapshots, "snapshot_id")
        .filter(watermark.isNotNull())
        .orderBy(F.desc("made_current_at"))
        .select(watermark)
        .first()
    )
    return None if row is None else row[0]
