"""streaming.prepare, with_checks, build_events and build_dead_letters: the pure composition
of the stream job, on hand-written raw records with NULL payload fields and positions."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sluiceway.errors import TransformError
from sluiceway.sources.kinesis import RAW_SCHEMA
from sluiceway.sources.stream_files import RAW_COLUMNS, read_capture_files
from sluiceway.stream_spec import parse_stream_spec
from sluiceway.streaming import build_dead_letters, build_events, prepare, with_checks

KINESIS = 'source = { kind = "kinesis", stream = "clicks" }'
SPEC = f"""
{KINESIS}

[pipeline]
name = "clicks"
output = "/data/out"

[events]
schema = "event_id string, event_time timestamp, user_id bigint, page string"
event_id = "event_id"
event_time = "event_time"
dedupe_minutes = 10
transforms = [{{ name = "{__name__}:with_page_upper" }}]
quality = [
  {{ rule = "not_null", column = "user_id" }},
  {{ rule = "accepted_values", column = "page", values = ["home", "cart"] }},
]
"""
FIELDS = "event_id string, event_time timestamp, user_id bigint, page string"
PREPARED = f"{RAW_SCHEMA}, {FIELDS}, _error string"
ARRIVED = datetime(2024, 3, 10, 23, 30, tzinfo=UTC)
AT = datetime(2024, 3, 10, 23, 59, 59, tzinfo=UTC)
INGESTED = datetime(2024, 3, 11, 0, 0, 5, tzinfo=UTC)
PROCESSED = datetime(2024, 3, 11, 0, 1, tzinfo=UTC)


def with_page_upper(df: DataFrame) -> DataFrame:
    """A user transform on the payload fields."""
    return df.withColumn("page", F.upper(F.col("page")))


def _spec(text: str = SPEC):
    return parse_stream_spec(text, "clicks.toml")


def _payload(**fields) -> bytes:
    return json.dumps(fields).encode()


def _record(data: bytes | None, shard: str | None = "shard-0", seq: str | None = "1") -> tuple:
    return (data, "clicks", shard, seq, "pk", ARRIVED)


def _line(record: tuple | str) -> str:
    """A capture-file line (as `sluiceway produce --to-dir` writes) for a raw record."""
    if isinstance(record, str):
        return record
    data, stream, shard, seq, key, arrived = record
    return json.dumps(
        {
            "stream": stream,
            "shard_id": shard,
            "sequence_number": seq,
            "partition_key": key,
            "arrival_time": arrived.isoformat(),
            "data": None if data is None else data.decode(),
        }
    )


def _prepare(spark, tmp_path, records: list, spec) -> DataFrame:
    """Stream `records` through `prepare` (its dedupe runs on streams only) into a table,
    without `_ingested_at`, the one value no test can write down."""
    capture = tmp_path / "capture"
    capture.mkdir()
    (capture / "part-0.jsonl").write_text("".join(_line(r) + "\n" for r in records))
    name = f"prepared_{uuid.uuid4().hex}"
    query = (
        prepare(read_capture_files(spark, str(capture), 100), spec)
        .writeStream.format("memory")
        .queryName(name)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    table = spark.table(name)
    assert table.filter(F.col("_ingested_at").isNull()).count() == 0
    return table.drop("_ingested_at")


def test_prepare_parses_payloads_and_tags_bad_records(spark, tmp_path):
    good = _payload(event_id="e1", event_time="2024-03-10T23:59:59Z", user_id=7, page="home")
    nulls = _payload(event_id="e2", event_time="2024-03-10T23:59:59Z", user_id=None)
    no_id = _payload(event_time="2024-03-10T23:59:59Z", user_id=8)
    wrong = _payload(event_id="e4", event_time="2024-03-10T23:59:59Z", user_id="eight")
    records = [
        _record(good, seq="1"),
        _record(nulls, shard=None, seq="2"),  # EMR's connector gives no shard id
        _record(no_id, seq="3"),
        _record(wrong, seq="4"),
        _record(None, seq="5"),
        _record(b"{not json", seq="6"),
    ]
    expected = spark.createDataFrame(
        [
            (*_record(good, seq="1"), "e1", AT, 7, "home", None),
            (*_record(nulls, shard=None, seq="2"), "e2", AT, None, None, None),
            (*_record(no_id, seq="3"), None, None, None, None, "missing event_id"),
            (*_record(wrong, seq="4"), None, None, None, None,
             "schema violation: user_id: expected bigint"),
            (*_record(None, seq="5"), None, None, None, None, "empty payload"),
            (*_record(b"{not json", seq="6"), None, None, None, None,
             "malformed JSON: not a JSON object"),
        ],
        PREPARED,
    )  # fmt: skip

    prepared = _prepare(spark, tmp_path, records, _spec())

    assert_df_equality(prepared, expected, ignore_row_order=True, ignore_nullable=True)


E1 = _payload(event_id="e1", event_time="2024-03-10T23:59:59Z", user_id=7, page="home")
E3 = _payload(event_id="e3", event_time="2024-03-10T23:59:59Z", user_id=9, page="cart")
REPEATS = [
    _record(E1, seq="1"),
    _record(E1, shard="shard-1", seq="9"),  # a producer retry: same id, new position
    _record(E3, seq="2"),
    _record(b"", seq="3"),
    _record(b"", seq="3"),  # the same bad record read twice
    _record(b"", seq="4"),  # the same payload at another position: another record
]


def _what_stays(df: DataFrame) -> DataFrame:
    """Good records by event id; bad ones by their position (a retry's position varies)."""
    return df.select(
        "event_id", F.when(F.col("_error").isNotNull(), F.col("sequence_number")).alias("bad_at")
    )


def test_prepare_drops_a_repeated_event_id_and_a_bad_record_read_twice(spark, tmp_path):
    expected = spark.createDataFrame(
        [("e1", None), ("e3", None), (None, "3"), (None, "4")], "event_id string, bad_at string"
    )

    prepared = _prepare(spark, tmp_path, REPEATS, _spec())

    assert_df_equality(_what_stays(prepared), expected, ignore_row_order=True, ignore_nullable=True)


def test_prepare_keeps_each_bad_record_whose_position_is_unknown(spark, tmp_path):
    # A capture line that is not JSON reads as all NULL: no stream, shard or sequence.
    unknown = (None, None, None, None, None, None)
    nowhere = _record(None, shard=None, seq=None)
    expected = spark.createDataFrame(
        [(*unknown, "empty payload"), (*unknown, "empty payload"), (*nowhere, "empty payload")],
        f"{RAW_SCHEMA}, _error string",
    )

    prepared = _prepare(spark, tmp_path, ["not json", "not json either", nowhere], _spec())
    prepared = prepared.select(*RAW_COLUMNS, "_error")

    assert_df_equality(prepared, expected, ignore_row_order=True, ignore_nullable=True)


def test_prepare_without_a_dedupe_window_keeps_every_record(spark, tmp_path):
    spec = _spec(SPEC.replace("dedupe_minutes = 10", "dedupe_minutes = 0"))
    expected = spark.createDataFrame(
        [("e1", None), ("e1", None), ("e3", None), (None, "3"), (None, "3"), (None, "4")],
        "event_id string, bad_at string",
    )

    prepared = _prepare(spark, tmp_path, REPEATS, spec)

    assert_df_equality(_what_stays(prepared), expected, ignore_row_order=True, ignore_nullable=True)


def test_with_checks_folds_rule_failures_into_error_and_keeps_a_parse_error(spark):
    batch = spark.createDataFrame(
        [
            ("e1", 7, "home", None),
            ("e2", None, None, None),  # not_null fails on NULL; accepted_values passes it
            ("e3", 8, "checkout", None),
            ("e4", None, "checkout", None),
            (None, None, None, "empty payload"),  # a bad record's fields are all NULL
        ],
        "event_id string, user_id bigint, page string, _error string",
    )
    expected = spark.createDataFrame(
        [
            ("e1", 7, "home", None),
            ("e2", None, None, "quality: not_null(user_id)"),
            ("e3", 8, "checkout", "quality: accepted_values(page)"),
            ("e4", None, "checkout", "quality: not_null(user_id), accepted_values(page)"),
            (None, None, None, "empty payload"),
        ],
        "event_id string, user_id bigint, page string, _error string",
    )

    assert_df_equality(
        with_checks(batch, _spec()), expected, ignore_row_order=True, ignore_nullable=True
    )


GOOD = f"{RAW_SCHEMA}, {FIELDS}, _ingested_at timestamp"
EVENTS = (
    f"{FIELDS}, _shard_id string, _sequence_number string, _arrival_time timestamp, "
    "event_date date, event_hour int, _run_id string, _extracted_at timestamp, _source string"
)


def test_build_events_keeps_fields_and_lineage_partitions_by_utc_hour_and_stamps_the_batch(spark):
    good = spark.createDataFrame(
        [
            (b"{}", "clicks", "shard-0", "1", "pk", ARRIVED, "e1", AT, 7, "home", INGESTED),
            (b"{}", "clicks", None, "2", None, None, "e2", AT, None, None, INGESTED),
            (b"{}", "clicks", "shard-0", "3", "pk", ARRIVED, "e3", None, 9, "cart", INGESTED),
        ],
        GOOD,
    )
    stamp = ("clicks:7", PROCESSED, "kinesis:clicks")
    expected = spark.createDataFrame(
        [
            ("e1", AT, 7, "HOME", "shard-0", "1", ARRIVED, date(2024, 3, 10), 23, *stamp),
            ("e2", AT, None, None, None, "2", None, date(2024, 3, 10), 23, *stamp),
            ("e3", None, 9, "CART", "shard-0", "3", ARRIVED, None, None, *stamp),
        ],
        EVENTS,
    )

    events = build_events(good, _spec(), batch_id=7, processed_at=PROCESSED)

    assert_df_equality(events, expected, ignore_row_order=True, ignore_nullable=True)


def test_build_events_from_files_names_the_source_files(spark):
    spec = _spec(SPEC.replace(KINESIS, 'source = { kind = "files", path = "/capture" }'))
    good = spark.createDataFrame(
        [(b"{}", "clicks", "shard-0", "1", "pk", ARRIVED, "e1", AT, 7, "home", INGESTED)], GOOD
    )

    events = build_events(good, spec, batch_id=0, processed_at=PROCESSED)

    assert [tuple(r) for r in events.select("_run_id", "_source").collect()] == [
        ("clicks:0", "files")
    ]


def test_build_events_names_the_transform_a_bad_parameter_breaks(spark):
    spec = _spec(SPEC.replace(':with_page_upper" }', ':with_page_upper", params = { to = "x" } }'))
    good = spark.createDataFrame([], GOOD)

    with pytest.raises(
        TransformError, match=rf"^clicks\.toml: events\.transforms: {__name__}:with_page_upper: "
    ):
        build_events(good, spec, batch_id=0, processed_at=PROCESSED)


def test_build_dead_letters_keep_the_raw_payload_why_and_where_dated_by_arrival(spark):
    bad = spark.createDataFrame(
        [
            (b"{not json", "clicks", "shard-0", "6", "pk", ARRIVED, None, None, None, None,
             "malformed JSON: not a JSON object", INGESTED),
            (None, "clicks", None, "5", None, None, None, None, None, None,
             "empty payload", INGESTED),  # no arrival time: dated by ingestion
        ],
        f"{RAW_SCHEMA}, {FIELDS}, _error string, _ingested_at timestamp",
    )  # fmt: skip
    expected = spark.createDataFrame(
        [
            (b"{not json", "malformed JSON: not a JSON object", "clicks", "shard-0", "6", "pk",
             ARRIVED, INGESTED, date(2024, 3, 10)),
            (None, "empty payload", "clicks", None, "5", None, None, INGESTED, date(2024, 3, 11)),
        ],
        "payload binary, error string, stream string, shard_id string, sequence_number string, "
        "partition_key string, arrival_time timestamp, _ingested_at timestamp, arrival_date date",
    )  # fmt: skip

    assert_df_equality(
        build_dead_letters(bad), expected, ignore_row_order=True, ignore_nullable=True
    )
