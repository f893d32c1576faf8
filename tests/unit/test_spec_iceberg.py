"""Iceberg sinks and catalogs in the spec: parsed with the standard library, every error
naming its key."""

from __future__ import annotations

import pytest

from sluiceway.errors import SpecError
from sluiceway.spec import IcebergMaintenance, IcebergSink, PartitionField, parse_spec

BASE = """
[pipeline]
name = "p"
output = "/data/out"

[connections.db]
engine = "postgresql"
host = "127.0.0.1"
password_env = "PW"

[connections.my]
engine = "mysql"
host = "127.0.0.1"
password_env = "PW"
"""

ORDERS = """
[tables.orders]
connection = "db"
table = "public.orders"
primary_key = ["o_orderkey"]
incremental_column = "updated_at"
partition_by = {partition_by}
sink = {sink}
"""


def _spec(sink: str = '{ format = "iceberg" }', partition_by: str = "[]", extra: str = ""):
    return parse_spec(BASE + extra + ORDERS.format(sink=sink, partition_by=partition_by), "x.toml")


def _error(**kwargs: str) -> str:
    with pytest.raises(SpecError) as info:
        _spec(**kwargs)
    return str(info.value)


def test_iceberg_sink_defaults_to_a_hadoop_catalog_under_the_output():
    sink = _spec().tables[0].sink
    assert isinstance(sink, IcebergSink)
    assert (sink.catalog.name, sink.catalog.type) == ("lake", "hadoop")
    assert sink.catalog.warehouse == "/data/out/warehouse"
    assert (sink.identifier, sink.path) == ("lake.p.orders", "/data/out/warehouse/p/orders")
    assert (sink.mode, sink.write_mode, sink.compression) == ("merge", "copy-on-write", "zstd")


def test_partition_by_takes_columns_and_iceberg_transforms():
    sink = _spec(partition_by='["region", "months(o_orderdate)", "bucket(16, o_orderkey)"]')
    fields = sink.tables[0].sink.partitioning  # type: ignore[union-attr]
    assert fields == (
        PartitionField("identity", "region"),
        PartitionField("months", "o_orderdate"),
        PartitionField("bucket", "o_orderkey", 16),
    )
    assert [f.sql() for f in fields] == [
        "`region`",
        "months(`o_orderdate`)",
        "bucket(16, `o_orderkey`)",
    ]


def test_table_properties_follow_write_mode_file_size_and_compression():
    sink = (
        _spec(
            '{ format = "iceberg", write_mode = "merge-on-read", target_file_size_mb = 64, '
            'compression = "none" }'
        )
        .tables[0]
        .sink
    )
    assert isinstance(sink, IcebergSink)
    assert sink.table_properties() == {
        "write.parquet.compression-codec": "uncompressed",
        "write.delete.mode": "merge-on-read",
        "write.update.mode": "merge-on-read",
        "write.merge.mode": "merge-on-read",
        "write.target-file-size-bytes": str(64 * 1024 * 1024),
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"partition_by": '["weeks(d)"]'},
            "x.toml: tables.orders.partition_by[0]: unknown partition transform 'weeks(d)'",
        ),
        ({"partition_by": '["bucket(0, id)"]'}, "tables.orders.partition_by[0]: bucket count"),
        (
            {"sink": '{ format = "iceberg", write_mode = "merge-on-write" }'},
            "tables.orders.sink.write_mode",
        ),
        (
            {"sink": '{ format = "iceberg", target_file_size_mb = 0 }'},
            "tables.orders.sink.target_file_size_mb: must be > 0",
        ),
        ({"sink": '{ format = "iceberg", path = "x" }'}, "tables.orders.sink"),
        ({"sink": '{ format = "delta" }'}, "tables.orders.sink.format"),
        ({"sink": '{ format = "iceberg", catalog = "nope" }'}, "unknown catalog 'nope'"),
        ({"sink": '{ format = "iceberg", table = "a.b.c" }'}, "must be namespace.table"),
    ],
)
def test_a_bad_iceberg_field_is_one_error_naming_it(kwargs, message):
    assert message in _error(**kwargs)


def test_jdbc_catalog_needs_a_postgresql_connection():
    extra = '[catalogs.meta]\ntype = "jdbc"\nconnection = "{conn}"\n'
    spec = _spec(extra=extra.format(conn="db"))
    catalog = spec.catalogs["meta"]
    assert (catalog.type, catalog.connection, catalog.warehouse) == (
        "jdbc",
        "db",
        "/data/out/warehouse/meta",
    )
    assert "catalogs.meta.connection: 'my' is not a postgresql connection" in _error(
        extra=extra.format(conn="my")
    )


def test_several_catalogs_need_the_sink_to_choose():
    extra = '[catalogs.a]\ntype = "hadoop"\n[catalogs.b]\ntype = "hadoop"\n'
    assert "tables.orders.sink.catalog: is required with several catalogs" in _error(extra=extra)


def test_loads_and_glue_catalog_targets_are_refused_on_iceberg_sinks():
    load = '[{ kind = "jdbc", connection = "db", table = "public.t" }]'
    text = BASE + ORDERS.format(sink='{ format = "iceberg" }', partition_by="[]")
    with pytest.raises(SpecError, match="tables.orders.load: is not supported"):
        parse_spec(text + f"load = {load}\n", "x.toml")
    with pytest.raises(SpecError, match="tables.orders.catalog: is for Parquet"):
        parse_spec(text + 'catalog = { database = "d" }\n', "x.toml")


def test_maintenance_settings_default_to_a_week_ten_snapshots_and_three_days_for_orphans():
    sink = _spec().tables[0].sink
    assert isinstance(sink, IcebergSink)
    assert sink.maintenance == IcebergMaintenance(keep_days=7, keep_snapshots=10, orphan_days=3)
    given = _spec('{ format = "iceberg", maintenance = { keep_days = 0, keep_snapshots = 2 } }')
    assert given.tables[0].sink.maintenance == IcebergMaintenance(0, 2, 3)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("maintenance", "message"),
    [
        ("{ keep_day = 7 }", "tables.orders.sink.maintenance.keep_day: unknown key"),
        ("{ keep_days = -1 }", "tables.orders.sink.maintenance.keep_days: must be >= 0, got -1"),
        ('{ keep_days = "7" }', "tables.orders.sink.maintenance.keep_days: must be a int"),
        ("{ keep_snapshots = 0 }", "tables.orders.sink.maintenance.keep_snapshots: must be > 0"),
        ("{ orphan_days = 0 }", "tables.orders.sink.maintenance.orphan_days: must be > 0, got 0"),
        ("{ orphan_days = true }", "tables.orders.sink.maintenance.orphan_days: must be a int"),
        ("7", "tables.orders.sink.maintenance: must be a dict"),
    ],
)
def test_a_bad_maintenance_setting_is_one_error_naming_its_key(maintenance, message):
    assert message in _error(sink=f'{{ format = "iceberg", maintenance = {maintenance} }}')


def test_maintenance_on_a_parquet_sink_is_an_unknown_key():
    assert "tables.orders.sink.maintenance: unknown key" in _error(
        sink="{ maintenance = { keep_days = 1 } }"
    )


def test_glue_catalog_needs_its_warehouse_on_s3_and_lower_case_names():
    glue = '[catalogs.g]\ntype = "glue"\nwarehouse = "s3a://lake/wh/"\n'
    sink = _spec(extra=glue).tables[0].sink
    assert isinstance(sink, IcebergSink)
    assert (sink.catalog.type, sink.catalog.warehouse) == ("glue", "s3://lake/wh")
    # GlueCatalog's default location for a table of a database without one of its own.
    assert (sink.identifier, sink.path) == ("g.p.orders", "s3://lake/wh/p.db/orders")
    local = glue.replace("s3a://lake/wh/", "wh")
    assert "x.toml: catalogs.g.warehouse: a glue catalog's warehouse must be on S3" in _error(
        extra=local
    )
    upper = _error(extra=glue, sink='{ format = "iceberg", table = "Sales.orders" }')
    assert upper.startswith("x.toml: tables.orders.sink.table: 'Sales.orders': a glue catalog")
