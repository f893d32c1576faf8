"""init's guesses on catalog rows: keys, cursors, splits, skew, sizes, partitions, names."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from sluiceway.errors import SluicewayError
from sluiceway.spec_guess import (
    CatalogColumn,
    CatalogTable,
    ColumnStats,
    Settings,
    choose_incremental,
    choose_key,
    choose_partition_column,
    choose_rows_per_partition,
    choose_split,
    choose_strategy,
    column_kind,
    propose,
    select_tables,
    snake_name,
    spec_names,
    to_number,
)

pytestmark = pytest.mark.spark_free  # no Spark: scripts/test.sh runs it on one line only

SETTINGS = Settings(max_connections=4)


def col(name: str, data_type: str = "integer", **kw) -> CatalogColumn:
    kw.setdefault("nullable", True)
    return CatalogColumn(name=name, data_type=data_type, kind=column_kind(data_type), **kw)


def table(*columns: CatalogColumn, **kw) -> CatalogTable:
    kw.setdefault("rows", 1000)
    return CatalogTable(
        schema="public", name=kw.pop("name", "t"), kind="table", columns=columns, **kw
    )


@pytest.mark.parametrize(
    "data_type, kind",
    [
        ("integer", "int"),
        ("bigint", "int"),
        ("int(10) unsigned", "int"),
        ("bigint unsigned", "int"),
        ("tinyint(1)", "other"),  # MySQL's boolean
        ("date", "date"),
        ("timestamp(6) with time zone", "timestamp"),
        ("timestamp without time zone", "timestamp"),
        ("datetime(6)", "timestamp"),
        ("numeric(12,2)", "other"),
        ("character varying(20)", "other"),
        ("time without time zone", "other"),
    ],
)
def test_column_kind_is_what_the_planner_can_split_and_window_by(data_type, kind):
    assert column_kind(data_type) == kind


def test_numbers_are_the_planners_units():
    assert to_number("int", "42") == 42
    assert to_number("date", date(1970, 1, 11)) == 10
    assert to_number("date", "2024-01-01") == (date(2024, 1, 1) - date(1970, 1, 1)).days
    assert to_number("timestamp", "1970-01-01 00:00:01.5") == 1_500_000
    # An offset is an instant: the same microseconds as its UTC wall clock.
    plus_two = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert to_number("timestamp", plus_two) == to_number("timestamp", "2024-01-01 10:00:00")
    assert to_number("timestamp", "2024-01-01 10:00:00+00") == to_number(
        "timestamp", datetime(2024, 1, 1, 10, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    "name, snake",
    [
        ("OrderLines", "order_lines"),
        ("orderLines", "order_lines"),
        ("HTTPRequests", "http_requests"),
        ("order lines", "order_lines"),
        ("2024_sales", "t_2024_sales"),
        ("plain", "plain"),
    ],
)
def test_snake_names_for_spec_keys(name, snake):
    assert snake_name(name) == snake


def test_names_that_collide_get_a_suffix():
    tables = [table(col("id"), name=n) for n in ("OrderLines", "order_lines", "Order_Lines")]
    assert spec_names(tables) == {
        "OrderLines": "order_lines",
        "order_lines": "order_lines_2",
        "Order_Lines": "order_lines_3",
    }


# keys ----------------------------------------------------------------------------------


def test_primary_key_wins():
    t = table(col("id", nullable=False), col("code", "text", nullable=False), primary_key=("id",))
    assert choose_key(t).value == ("id",)


def test_unique_index_over_not_null_columns_stands_in_for_a_missing_primary_key():
    t = table(
        col("email", "text", nullable=True),
        col("a", nullable=False),
        col("b", nullable=False),
        unique_keys=(("email",), ("a", "b")),
    )
    key = choose_key(t)
    assert key.value == ("a", "b")  # the nullable email index cannot match NULLs
    assert "unique index" in key.why


def test_no_key_makes_a_full_refresh_overwrite_and_drops_the_cursor():
    t = table(col("msg", "text"), col("updated_at", "timestamp with time zone"))
    p = propose(t, "t", "public.t", SETTINGS)
    assert p.primary_key is None
    assert p.mode.value == "overwrite"
    assert "no primary key" in p.mode.why
    assert p.incremental_column is None  # append would duplicate every changed row
    assert any("updated_at looks like a change time" in n for n in p.notes)


def test_keyed_table_without_a_change_time_is_overwritten_not_merged():
    t = table(col("id", nullable=False), col("name", "text"), primary_key=("id",))
    p = propose(t, "t", "public.t", SETTINGS)
    assert p.mode.value == "overwrite"
    assert "no change-time column" in p.mode.why


def test_view_is_read_whole_without_split_or_estimate():
    v = CatalogTable("public", "v", "view", (col("id"), col("d", "date")), rows=None)
    p = propose(v, "v", "public.v", SETTINGS)
    assert (p.mode.value, p.split_column, p.rows_per_partition) == ("overwrite", None, None)
    assert "a view" in p.mode.why


# the incremental cursor ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["updated_at", "modified", "last_update", "LastModified", "ModifiedDate", "changed_on"]
)
def test_change_time_names_are_cursors(name):
    guess, _ = choose_incremental(table(col(name, "timestamp")))
    assert guess.value == name
    assert "named like a change time" in guess.why


def test_on_update_current_timestamp_beats_a_name():
    t = table(
        col("updated_at", "timestamp"),
        col("row_stamp", "timestamp", on_update=True, default="current_timestamp()"),
    )
    guess, _ = choose_incremental(t)
    assert guess.value == "row_stamp"
    assert "ON UPDATE" in guess.why


def test_insert_time_with_default_now_is_not_a_cursor_and_says_so():
    guess, notes = choose_incremental(table(col("created_at", "timestamptz", default="now()")))
    assert guess is None
    assert notes == (
        "created_at defaults to now() but looks like an insert time: updates would be missed, "
        "so it is not the incremental_column",
    )


def test_default_now_counts_only_with_an_update_trigger():
    stamped = col("stamp", "timestamp with time zone", default="now()", nullable=False)
    assert choose_incremental(table(stamped))[0] is None
    guess, _ = choose_incremental(table(stamped, update_trigger=True))
    assert guess.value == "stamp"
    assert "UPDATE trigger" in guess.why


def test_non_time_columns_are_never_cursors_and_nullable_ones_say_so():
    assert choose_incremental(table(col("updated_by", "text")))[0] is None
    guess, _ = choose_incremental(table(col("modified", "date", nullable=True)))
    assert "read by full runs only" in guess.why


# splits and skew ------------------------------------------------------------------------


def test_integer_primary_key_is_the_split_column():
    t = table(col("id", nullable=False), col("d", "date"), primary_key=("id",), indexed=("d",))
    assert choose_split(t, choose_key(t), None).value == "id"


def test_composite_key_splits_on_a_date_not_the_cursor():
    t = table(
        col("order_id", nullable=False),
        col("line_no", nullable=False),
        col("shipped_on", "date", nullable=False),
        col("updated_at", "timestamp", nullable=False),
        primary_key=("order_id", "line_no"),
        indexed=("order_id", "shipped_on", "updated_at"),
    )
    key = choose_key(t)
    cursor, _ = choose_incremental(t)
    split = choose_split(t, key, cursor)
    assert split.value == "shipped_on"
    assert split.why == "composite key: a date column, indexed"


def test_composite_key_without_an_indexed_date_splits_on_its_leading_integer():
    t = table(
        col("a", nullable=False),
        col("b", nullable=False),
        col("d", "date"),  # not indexed: every partition would scan the table
        primary_key=("a", "b"),
        indexed=("a",),
    )
    assert choose_split(t, choose_key(t), None).value == "a"


def test_no_indexed_candidate_means_one_partition():
    t = table(col("msg", "text"), col("n"))
    assert choose_split(t, None, None) is None


def _days(*values: str) -> tuple[int, ...]:
    return tuple(to_number("date", v) for v in values)


def test_even_histogram_keeps_range():
    bounds = tuple(range(0, 1001, 50))  # equal-count buckets of equal width
    guess = choose_strategy(col("id", stats=ColumnStats("pg_stats", histogram=bounds)), SETTINGS)
    assert guess.value == "range"
    assert guess.why == (
        "pg_stats: a range split into 4 puts up to 25% of rows in one partition (even: 25%)"
    )


def test_histogram_crowded_at_one_end_is_skew():
    # 19 of 20 equal-count buckets lie in the first 10% of the range.
    bounds = (*range(0, 96, 5), 1000)
    guess = choose_strategy(col("id", stats=ColumnStats("pg_stats", histogram=bounds)), SETTINGS)
    assert guess.value == "quantiles"
    assert "puts up to 96% of rows in one partition (even: 25%): skewed" in guess.why


def test_one_very_common_value_is_skew():
    stats = ColumnStats(
        "pg_stats",
        histogram=_days("2020-01-01", "2020-07-01", "2021-01-01", "2021-07-01", "2022-01-01"),
        common=((to_number("date", "2021-03-01"), 0.7),),
    )
    assert choose_strategy(col("d", "date", stats=stats), SETTINGS).value == "quantiles"


def test_mysql_range_estimates_decide_the_same_way():
    lopsided = ColumnStats("EXPLAIN row estimates over index ix_d", range_rows=(10, 10, 10, 970))
    even = ColumnStats("EXPLAIN row estimates over index ix_d", range_rows=(250, 240, 260, 250))
    assert choose_strategy(col("d", "date", stats=lopsided), SETTINGS).value == "quantiles"
    assert choose_strategy(col("d", "date", stats=even), SETTINGS).value == "range"


def test_without_statistics_range_is_kept_and_the_comment_says_why():
    guess = choose_strategy(col("d", "date"), SETTINGS)
    assert guess.value == "range"
    assert guess.why == "no statistics on this column to show skew"
    single = ColumnStats("pg_stats", histogram=(5,))
    assert "too few values" in choose_strategy(col("d", stats=single), SETTINGS).why


def test_rows_per_partition_from_the_row_size():
    t = table(col("id"), row_bytes=200.0)
    guess = choose_rows_per_partition(t, Settings(partition_mb=128))
    assert guess.value == 670_000  # 128 MiB / 200 B = 671,088, two significant digits
    assert guess.why == "~200 bytes a row on disk: ~128 MiB a partition"
    assert choose_rows_per_partition(table(col("id")), SETTINGS) is None
    tiny = choose_rows_per_partition(
        table(col("id"), row_bytes=100.0), Settings(partition_mb=0.001)
    )
    assert tiny.value == 10


# partitions -------------------------------------------------------------------------------


def test_large_table_is_partitioned_by_a_not_null_date_never_the_cursor():
    t = table(
        col("id", nullable=False),
        col("updated_at", "timestamp", nullable=False),
        col("maybe", "date", nullable=True),
        col("ordered_on", "date", nullable=False),
        primary_key=("id",),
        rows=5_000_000,
    )
    cursor, _ = choose_incremental(t)
    guess = choose_partition_column(t, choose_split(t, choose_key(t), cursor), cursor, SETTINGS)
    assert guess.value == "ordered_on"
    assert guess.why == "~5,000,000 rows: a dataset partitioned by month of a NOT NULL date"
    small = table(*t.columns, primary_key=("id",), rows=999_999)
    assert choose_partition_column(small, None, cursor, SETTINGS) is None


def test_partition_columns_that_would_clash_are_not_proposed():
    t = table(col("d", "date", nullable=False), col("d_year"), rows=5_000_000)
    assert choose_partition_column(t, None, None, SETTINGS) is None


# selection -------------------------------------------------------------------------------


def test_tables_and_exclude_pick_by_catalog_name_and_unknown_names_fail():
    tables = [table(col("id"), name=n) for n in ("a", "b", "my-table")]
    kept, notes = select_tables(tables, None, ["b"])
    assert [t.name for t in kept] == ["a"]
    assert notes == ["skipped 'my-table': not a plain name; read it with `query = ...`"]
    assert [t.name for t in select_tables(tables, ["b"], None)[0]] == ["b"]
    with pytest.raises(SluicewayError, match=r"init: --tables: no table or view named 'c'"):
        select_tables(tables, ["c"], None)
    with pytest.raises(SluicewayError, match=r"--exclude: no table or view named 'zz'"):
        select_tables(tables, None, ["zz"])
