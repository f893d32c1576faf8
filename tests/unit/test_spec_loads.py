"""The spec's `load` targets (jdbc, redshift): defaults, and bad input refused by name."""

from __future__ import annotations

import pytest

from sluiceway.errors import SpecError
from sluiceway.spec import JdbcLoad, RedshiftLoad, parse_spec

BASE = """
[pipeline]
name = "p"
output = "s3://lake/root"

[connections.db]
engine = "postgresql"
host = "127.0.0.1"
password_env = "PW"

[connections.serving]
engine = "mysql"
host = "serving.example"
password_env = "PW2"

[connections.warehouse]
engine = "redshift"
host = "wh.example"
password_env = "PW3"

[tables.orders]
connection = "db"
table = "public.orders"
primary_key = ["id"]
incremental_column = "updated_at"
"""


def _parse(load: str):
    return parse_spec(BASE + load, "x.toml")


def _error(load: str) -> str:
    with pytest.raises(SpecError) as info:
        _parse(load)
    return str(info.value)


def test_table_loads_default_to_upsert_by_primary_key_newest_by_incremental_column():
    spec = _parse(
        """
[[tables.orders.load]]
kind = "jdbc"
connection = "serving"
table = "orders_served"

[[tables.orders.load]]
kind = "redshift"
connection = "warehouse"
table = "analytics.orders"
iam_role = "arn:aws:iam::123456789012:role/load"
"""
    )
    jdbc_load, redshift_load = spec.table("orders").load
    assert jdbc_load == JdbcLoad(
        "serving", "orders_served", "upsert", ("id",), ("updated_at",), 10_000
    )
    assert isinstance(redshift_load, RedshiftLoad)
    assert (redshift_load.mode, redshift_load.key, redshift_load.via) == ("upsert", ("id",), "jdbc")
    assert redshift_load.staging == "s3://lake/root/_staging/redshift"


@pytest.mark.parametrize(
    ("load", "needle"),
    [
        (
            'kind = "jdbc"\nconnection = "serving"\ntable = "x; drop table y"',
            "tables.orders.load[0].table: 'x; drop table y' is not a plain [schema.]table name",
        ),
        (
            'kind = "jdbc"\nconnection = "serving"\ntable = "t"\nkey = ["id; --"]',
            "tables.orders.load[0].key: 'id; --' is not a plain column name",
        ),
        ('kind = "jdbc"\nconnection = "warehouse"\ntable = "t"', "must be a postgresql or mysql"),
        ('kind = "jdbc"\ntable = "t"', "load[0].connection: is required"),
        ('kind = "snowflake"\ntable = "t"', "load[0].kind: must be one of jdbc, redshift"),
        ('kind = "redshift"\nconnection = "warehouse"\ntable = "t"', "iam_role: is required"),
        (
            'kind = "redshift"\nvia = "data_api"\ntable = "t"\niam_role = "default"',
            "needs database and one of cluster_identifier or workgroup_name",
        ),
        (
            'kind = "jdbc"\nconnection = "serving"\ntable = "t"\nmode = "upsert"\norder_by = []\nkey = ["v"]\nbatch_size = 0',
            "batch_size: must be > 0",
        ),
    ],
)
def test_bad_load_is_refused_with_the_key_path(load, needle):
    assert needle in _error("[[tables.orders.load]]\n" + load)


def test_output_upsert_needs_key_and_order_by():
    output = """
[outputs.o]
builder = "sluiceway.demo.tpch_transforms:join_order_lines"
inputs = ["orders"]

[[outputs.o.load]]
kind = "jdbc"
connection = "serving"
table = "o"
mode = "upsert"
key = ["id"]
"""
    assert "outputs.o.load[0].mode: upsert needs key and order_by" in _error(output)


def test_a_redshift_connection_cannot_be_read_as_a_source():
    text = BASE.replace('connection = "db"', 'connection = "warehouse"')
    with pytest.raises(SpecError, match="'warehouse' is a redshift connection"):
        parse_spec(text, "x.toml")
