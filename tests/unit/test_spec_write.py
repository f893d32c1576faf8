"""The spec init writes parses as written, says why for every guess, and holds no secret."""

from __future__ import annotations

import tomllib

import pytest

from sluiceway.spec import parse_spec
from sluiceway.spec_guess import (
    CatalogColumn,
    CatalogTable,
    ColumnStats,
    ForeignKey,
    Settings,
    column_kind,
    propose,
)
from sluiceway.spec_write import Source, render_spec, toml_value

pytestmark = pytest.mark.spark_free  # no Spark: scripts/test.sh runs it on one line only

GUESSED = ("split_column", "split_strategy", "rows_per_partition", "incremental_column")


def col(name: str, data_type: str = "integer", nullable: bool = False, **kw) -> CatalogColumn:
    return CatalogColumn(name, data_type, column_kind(data_type), nullable=nullable, **kw)


ORDERS = CatalogTable(
    schema="shop",
    name="OrderLines",
    kind="table",
    columns=(
        col("order_id"),
        col("line_no"),
        col("shipped_on", "date", stats=ColumnStats("pg_stats", histogram=(0, 1, 2, 3, 4, 400))),
        col("note", "text", nullable=True),
        col("updated_at", "timestamp with time zone", default="now()"),
    ),
    primary_key=("order_id", "line_no"),
    indexed=("order_id", "shipped_on"),
    foreign_keys=(ForeignKey(("order_id",), "shop.orders", ("id",)),),
    rows=2_000_000,
    row_bytes=120.0,
    stats_source="pg_class.reltuples",
)
LOG = CatalogTable("shop", "event_log", "table", (col("msg", "text"),), rows=10, row_bytes=50.0)
VIEW = CatalogTable("shop", "recent", "view", (col("order_id"),))
SOURCE = Source(
    name="shop",
    engine="postgresql",
    host="db.internal",
    port=5432,
    database="shop",
    user="reader",
    password_env="SHOP_PASSWORD",
    secret_id=None,
    schema="shop",
    max_connections=4,
)


def _render() -> str:
    settings = Settings()
    proposals = [
        propose(t, name, f"shop.{t.name}", settings)
        for t, name in ((ORDERS, "order_lines"), (LOG, "event_log"), (VIEW, "recent"))
    ]
    return render_spec("shop", "s3://lake/shop", SOURCE, proposals, ["made for a test"])


def test_written_spec_parses_and_keeps_every_guess():
    spec = parse_spec(_render(), "init.toml")

    lines = spec.table("order_lines")
    assert lines.table == "shop.OrderLines"  # CamelCase stays in the source name
    assert lines.primary_key == ("order_id", "line_no")
    assert (lines.split_column, lines.split_strategy) == ("shipped_on", "quantiles")
    assert lines.rows_per_partition == 1_100_000
    assert lines.incremental_column == "updated_at"
    assert lines.sink.mode == "merge"
    assert lines.sink.path == "s3://lake/shop/tables/order_lines"
    assert lines.partition_by == ("shipped_on_year", "shipped_on_month")
    assert [(s.name, dict(s.params)) for s in lines.transforms] == [
        (
            "with_date_partitions",
            {"column": "shipped_on", "prefix": "shipped_on_", "grain": "month"},
        )
    ]
    for key_less in ("event_log", "recent"):
        t = spec.table(key_less)
        assert (t.sink.mode, t.incremental_column, t.primary_key) == ("overwrite", None, ())
    conn = spec.connections["shop"]
    assert (conn.host, conn.port, conn.password_env, conn.max_connections) == (
        "db.internal",
        5432,
        "SHOP_PASSWORD",
        4,
    )


def test_every_guessed_line_says_why_and_notes_name_size_and_foreign_keys():
    text = _render()
    for line in text.splitlines():
        key = line.split(" = ")[0]
        if key in (*GUESSED, "primary_key", "partition_by", "sink"):
            assert " # " in line, line
    assert "# shop.OrderLines: table, ~2,000,000 rows (pg_class.reltuples)" in text
    assert "# foreign key (order_id) -> shop.orders (id)" in text
    assert "# made for a test" in text
    assert all(len(line) <= 98 for line in text.splitlines() if line.startswith("#"))


def test_a_secret_id_connection_has_no_host_and_no_password():
    source = Source("shop", "mysql", None, None, None, None, None, "rds/shop", None, 2)
    text = render_spec("shop", "out/shop", source, [propose(LOG, "log", "log", Settings())], [])
    spec = parse_spec(text, "init.toml")
    assert spec.connections["shop"].secret_id == "rds/shop"
    assert "host" not in tomllib.loads(text)["connections"]["shop"]


def test_toml_values_escape_what_toml_needs():
    tricky = 'a"b\\c\nd é'
    assert tomllib.loads("v = " + toml_value(tricky))["v"] == tricky
    assert toml_value(["x", "y"]) == '["x", "y"]'
    assert toml_value(12) == "12"
