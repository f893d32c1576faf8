from __future__ import annotations

import pytest

from sluiceway.errors import SpecError
from sluiceway.spec import load_spec, parse_spec
from sluiceway.spec_check import check

BASE = """
[pipeline]
name = "p"
output = "/data/out"

[connections.db]
engine = "postgresql"
host = "127.0.0.1"
password_env = "PW"

[tables.orders]
table = "public.orders"
primary_key = ["o_orderkey"]
split_column = "o_orderkey"
incremental_column = "updated_at"
"""


def _error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "x.toml")
    return str(info.value)


def test_demo_spec_parses_with_paths_under_the_output_root():
    spec = load_spec("pipelines/tpch_demo.toml", output_root="/tmp/o")
    assert [t.name for t in spec.tables] == ["nation", "customer", "orders", "lineitem"]
    # Silver and gold: Iceberg tables in the default hadoop catalog; bronze: Parquet.
    assert spec.table("orders").sink.path == "/tmp/o/warehouse/tpch_demo/orders"
    assert spec.table("orders").sink.identifier == "lake.tpch_demo.orders"
    assert spec.catalogs["lake"].type == "hadoop"
    assert spec.state_location == "/tmp/o/_state"
    assert spec.dataset_path("order_lines") == "/tmp/o/warehouse/tpch_demo/order_lines"
    assert spec.dataset_path("lineitem") == "/tmp/o/bronze/lineitem"
    assert spec.table("lineitem").catalog is not None
    assert spec.table("lineitem").split_strategy == "quantiles"


def test_iceberg_catalog_glue_turns_the_default_catalog_into_a_glue_catalog():
    spec = load_spec("pipelines/tpch_demo.toml", output_root="s3a://lake/o", iceberg_catalog="glue")
    lake = spec.catalogs["lake"]
    assert (lake.type, lake.warehouse) == ("glue", "s3://lake/o/warehouse")
    assert spec.dataset_path("orders") == "s3://lake/o/warehouse/tpch_demo.db/orders"
    hadoop = load_spec("pipelines/tpch_demo.toml", output_root="/o", iceberg_catalog="hadoop")
    assert hadoop.catalogs["lake"].type == "hadoop"


def test_iceberg_catalog_glue_is_refused_off_s3_and_with_declared_catalogs():
    with pytest.raises(SpecError) as info:
        load_spec("pipelines/tpch_demo.toml", output_root="/o", iceberg_catalog="glue")
    assert str(info.value) == (
        "pipelines/tpch_demo.toml: catalogs: --iceberg-catalog glue keeps the warehouse at "
        "<output>/warehouse, which must be on S3 (s3://bucket/prefix), got '/o/warehouse'"
    )
    declared = BASE + '[catalogs.lake]\ntype = "hadoop"\n'
    with pytest.raises(SpecError) as info:
        parse_spec(declared, "x.toml", iceberg_catalog="glue")
    assert str(info.value) == (
        "x.toml: catalogs: --iceberg-catalog glue sets the type of the default catalog, and "
        "this spec declares its catalogs: set `type` in [catalogs.<name>] instead"
    )


def test_defaults_merge_for_keyed_tables_and_resolve_relative_paths():
    spec = parse_spec(BASE, "x.toml")
    orders = spec.table("orders")
    assert orders.sink.mode == "merge"
    assert orders.sink.path == "/data/out/tables/orders"
    assert orders.sink.quarantine_path == "/data/out/_quarantine/orders"
    assert orders.overlap_minutes == 10
    assert spec.connections["db"].max_connections == 4


def test_malformed_toml_names_the_file():
    assert _error("[pipeline\nname=1").startswith("x.toml: not valid TOML")


def test_unknown_key_is_named_with_its_path():
    assert _error(BASE + 'splt_column = "x"\n') == (
        "x.toml: tables.orders.splt_column: unknown key (expected one of: connection, table, query, "
        "primary_key, split_column, split_strategy, rows_per_partition, incremental_column, overlap_minutes, overlap_ids, "
        "hash_columns, "
        "quality, transforms, partition_by, audit, sink, catalog, load)"
    )


def test_unknown_transform_is_rejected_by_check_naming_the_key():
    spec = parse_spec(BASE + 'transforms = [{ name = "no_such_transform" }]\n', "x.toml")
    with pytest.raises(SpecError) as info:
        check(spec)
    message = str(info.value)
    assert message.startswith("x.toml: tables.orders.transforms[0].name:")
    assert "no_such_transform" in message


def test_sql_injection_in_table_name_is_rejected():
    message = _error(BASE.replace('"public.orders"', '"x; drop table y"'))
    assert (
        message
        == "x.toml: tables.orders.table: 'x; drop table y' is not a plain [schema.]table name"
    )


def test_injection_in_column_names_is_rejected():
    assert "is not a plain identifier" in _error(
        BASE.replace('split_column = "o_orderkey"', 'split_column = "a) or (1=1"')
    )


def test_merge_without_primary_key_is_refused():
    text = BASE.replace('primary_key = ["o_orderkey"]\n', "") + 'sink = { mode = "merge" }\n'
    assert _error(text) == "x.toml: tables.orders.sink.mode: merge needs a primary_key"


def test_incremental_table_without_a_key_appends_and_never_overwrites():
    keyless = BASE.replace('primary_key = ["o_orderkey"]\n', "")
    assert parse_spec(keyless, "x.toml").table("orders").sink.mode == "append"
    assert parse_spec(keyless, "x.toml").table("orders").overlap_ids == 1000
    for mode in ("overwrite", "overwrite_partitions"):
        assert _error(keyless + f'sink = {{ mode = "{mode}" }}\n') == (
            f"x.toml: tables.orders.sink.mode: {mode!r} with incremental_column would replace "
            "the dataset with each window's rows; use merge (with a primary_key) or append"
        )
    full = keyless.replace('incremental_column = "updated_at"\n', "")
    assert parse_spec(full, "x.toml").table("orders").sink.mode == "overwrite"
    assert _error(full + 'sink = { mode = "append" }\n') == (
        "x.toml: tables.orders.sink.mode: append needs an incremental_column "
        "(each window is appended once)"
    )
    assert "overlap_ids: must be >= 0, got -1" in _error(BASE + "overlap_ids = -1\n")


def test_table_and_query_are_exclusive():
    assert "exactly one of `table` or `query`" in _error(BASE + 'query = "select 1"\n')


def test_connection_needs_a_credential_source():
    assert "needs password_env" in _error(BASE.replace('password_env = "PW"\n', ""))


def test_password_in_options_is_refused():
    text = BASE.replace(
        'password_env = "PW"\n', 'password_env = "PW"\noptions = { password = "x" }\n'
    )
    assert "credentials never go in options" in _error(text)


def test_hash_columns_require_a_salt_variable_or_secret():
    assert "hash_salt_env: required (or hash_salt_secret_id)" in _error(
        BASE + 'hash_columns = ["c_name"]\n'
    )
    text = BASE.replace("[pipeline]\n", '[pipeline]\nhash_salt_secret_id = "etl/salt"\n', 1)
    spec = parse_spec(text + 'hash_columns = ["c_name"]\n', "x.toml")
    assert (spec.hash_salt_secret_id, spec.hash_salt_env) == ("etl/salt", None)
    both = text.replace("[pipeline]\n", '[pipeline]\nhash_salt_env = "SALT"\n', 1)
    assert "hash_salt_env or hash_salt_secret_id, not both" in _error(both)


def test_bad_types_and_values_are_named():
    assert _error(BASE.replace('host = "127.0.0.1"', "host = 5")) == (
        "x.toml: connections.db.host: must be a str, got 5"
    )
    assert "max_connections: must be > 0" in _error(
        BASE.replace('password_env = "PW"', 'password_env = "PW"\nmax_connections = 0')
    )
    assert "split_strategy: must be one of range, quantiles" in _error(
        BASE + 'split_strategy = "random"\n'
    )


def test_a_table_may_set_its_own_rows_per_partition():
    spec = parse_spec(BASE + "rows_per_partition = 20000\n", "x.toml")
    assert spec.table("orders").rows_per_partition == 20000
    assert parse_spec(BASE, "x.toml").table("orders").rows_per_partition is None
    assert _error(BASE + "rows_per_partition = 0\n") == (
        "x.toml: tables.orders.rows_per_partition: must be > 0, got 0"
    )


def test_output_inputs_must_exist():
    text = BASE + '[outputs.gold]\nbuilder = "with_audit_columns"\ninputs = ["nope"]\n'
    assert _error(text) == "x.toml: outputs.gold.inputs: unknown table or earlier output 'nope'"


def test_quality_rule_errors_are_named():
    message = _error(BASE + 'quality = [{ rule = "accepted_values", column = "o_orderstatus" }]\n')
    assert message.startswith("x.toml: tables.orders.quality[0]:")


def test_missing_spec_file_is_one_clear_error(tmp_path):
    with pytest.raises(SpecError, match="cannot read spec"):
        load_spec(tmp_path / "missing.toml")


def test_catalog_target_defaults_its_table_to_the_dataset_name():
    spec = parse_spec(BASE + 'catalog = { database = "sales" }\n', "x.toml")
    target = spec.table("orders").catalog
    assert target is not None and (target.database, target.table) == ("sales", "orders")
    named = parse_spec(BASE + 'catalog = { database = "sales", table = "orders_v2" }\n', "x.toml")
    assert named.table("orders").catalog.table == "orders_v2"
    assert parse_spec(BASE, "x.toml").table("orders").catalog is None


def test_catalog_names_must_be_lower_case_and_complete():
    assert _error(BASE + 'catalog = { database = "Sales" }\n') == (
        "x.toml: tables.orders.catalog.database: 'Sales' must be a lower-case name "
        "(letters, digits, _)"
    )
    assert _error(BASE + 'catalog = { table = "t" }\n') == (
        "x.toml: tables.orders.catalog.database: is required"
    )
    assert "unknown key" in _error(BASE + 'catalog = { database = "s", db = "x" }\n')


def test_a_glue_connection_holds_the_endpoint_and_login():
    text = BASE.replace('host = "127.0.0.1"\npassword_env = "PW"', 'glue_connection = "rds-orders"')
    spec = parse_spec(text, "x.toml")
    conn = spec.connections["db"]
    assert (conn.glue_connection, conn.host, conn.password_env) == ("rds-orders", None, None)
    both = BASE.replace('password_env = "PW"', 'password_env = "PW"\nglue_connection = "rds"')
    assert (
        "connections.db.glue_connection: holds the login itself: drop password_env and secret_id"
        in _error(both)
    )
    neither = BASE.replace('password_env = "PW"\n', "")
    assert "or glue_connection (a Glue JDBC connection)" in _error(neither)


def test_the_other_kind_of_spec_is_named_with_its_command():
    from sluiceway.stream_spec import load_stream_spec

    with pytest.raises(SpecError) as stream:
        load_spec("pipelines/clickstream.toml")
    assert str(stream.value) == (
        "pipelines/clickstream.toml: a stream spec ([events]): use `sluiceway stream`"
    )
    with pytest.raises(SpecError) as batch:
        load_stream_spec("pipelines/tpch_demo.toml")
    assert str(batch.value) == (
        "pipelines/tpch_demo.toml: a pipeline spec ([tables]): use `sluiceway run`"
    )
