from __future__ import annotations

import pytest

from sluiceway.errors import SpecError
from sluiceway.stream_spec import load_stream_spec, parse_stream_spec
from sluiceway.streaming import event_schema

GOOD = """
[pipeline]
name = "clicks"
output = "/data/out"

[source]
kind = "kinesis"
stream = "clicks"
region = "eu-west-1"

[events]
schema = "event_id string, event_time timestamp, n bigint, tags array<string>, m map<string,int>, s struct<a:int,b:decimal(10,2)>"
event_id = "event_id"
event_time = "event_time"
quality = [{ rule = "not_null", column = "n" }]
"""


def test_example_spec_parses_with_defaults_under_the_output_root():
    spec = load_stream_spec("pipelines/clickstream.toml", output_root="/o")

    assert spec.source.kind == "kinesis" and spec.source.stream == "sluiceway-clickstream"
    assert spec.sink.path == "/o/events"
    assert spec.sink.dead_letter_path == "/o/_dead_letters"
    assert spec.trigger.checkpoint == "/o/_checkpoints/clickstream"
    assert spec.events.dedupe_minutes == 10


def test_schema_with_nested_types_becomes_a_struct_type():
    spec = parse_stream_spec(GOOD, "x.toml")

    assert event_schema(spec).simpleString() == (
        "struct<event_id:string,event_time:timestamp,n:bigint,tags:array<string>,"
        "m:map<string,int>,s:struct<a:int,b:decimal(10,2)>>"
    )
    assert spec.trigger.mode == "interval" and spec.trigger.interval_seconds == 30
    assert spec.trigger.state_partitions is None  # Spark's default parallelism


def test_schema_is_plain_data_spelt_as_spark_spells_it():
    spec = parse_stream_spec(GOOD, "x.toml")

    assert spec.events.field_names == ("event_id", "event_time", "n", "tags", "m", "s")
    assert [(f.name, f.type_name) for f in spec.events.fields] == [
        (f.name, f.dataType.simpleString()) for f in event_schema(spec).fields
    ]
    assert spec.events.fields[2].type == "long"  # Spark's JSON name for bigint


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('stream = "clicks"\n', "", "x.toml: source.stream: is required for a kinesis source"),
        ('stream = "clicks"', 'stream = "a b"', "x.toml: source.stream: 'a b' is not a Kinesis"),
        ('region = "eu-west-1"', 'region = "europe"', "x.toml: source.region: 'europe'"),
        ('kind = "kinesis"', 'kind = "files"', "x.toml: source.path: is required"),
        ('event_id = "event_id"', 'event_id = "id"', "x.toml: events.event_id: column 'id' is not"),
        (
            'event_time = "event_time"',
            'event_time = "n"',
            "events.event_time: column 'n' is bigint",
        ),
        ("n bigint", "n bigint, _x int", "events.schema: column '_x' is reserved"),
        ("n bigint", "n bignum", "events.schema: unsupported type: 'bignum'"),
        ("n bigint", "n bigint, n int", "events.schema: names column(s) twice: n"),
        ('column = "n"', 'column = "nope"', "events.quality[0].column: column 'nope' is not"),
        ("[events]", "[events]\nwatermark = 3", "events.watermark: unknown key"),
        ("[events]", "[trigger]\nmode = 'now'\n[events]", "trigger.mode: must be one of"),
        ("[events]", "[trigger]\nstate_partitions = 0\n[events]", "state_partitions: must be > 0"),
    ],
)
def test_spec_errors_name_the_file_and_the_key(old, new, message):
    assert old in GOOD
    with pytest.raises(SpecError) as caught:
        parse_stream_spec(GOOD.replace(old, new, 1), "x.toml")

    assert message in str(caught.value)


def test_overrides_replace_output_root_and_checkpoint():
    text = GOOD + "[trigger]\nstate_partitions = 4\n"
    spec = parse_stream_spec(text, "x.toml", output_root="s3://b/o", checkpoint="/ck")

    assert spec.sink.path == "s3://b/o/events"
    assert spec.trigger.checkpoint == "/ck"
    assert spec.trigger.state_partitions == 4  # kept by the checkpoint override


# ---------------------------------------------------------------------------------------
# [delivery]: the Firehose-style preset of `sluiceway deliver`

DELIVERY = """
[delivery]
buffer_seconds = 90
buffer_records = 2500
format = "json.gz"
prefix_by = "arrival_time"
prefix = "raw"
error_prefix = "raw_errors"
"""


def test_delivery_preset_sets_trigger_cap_paths_format_and_prefixes():
    spec = parse_stream_spec(GOOD + DELIVERY, "x.toml")

    assert spec.delivery is not None and spec.delivery.format == "json.gz"
    assert spec.trigger.interval_seconds == 90
    assert spec.source.max_records_per_batch == 2500
    assert (spec.sink.path, spec.sink.dead_letter_path) == ("/data/out/raw", "/data/out/raw_errors")
    assert (spec.sink.file_format, spec.sink.compression) == ("json", "gzip")
    assert spec.sink.partition_by == ("arrival_date", "arrival_hour")
    assert spec.events.dedupe_minutes == 0  # Firehose does not dedupe; nor does the preset


def test_delivery_defaults_are_parquet_by_event_time_and_an_asked_dedupe_is_kept():
    text = GOOD.replace("[events]", "[events]\ndedupe_minutes = 5") + "\n[delivery]\n"
    spec = parse_stream_spec(text, "x.toml")

    assert spec.delivery is not None and spec.delivery.prefix_by == "event_time"
    assert (spec.sink.file_format, spec.sink.compression) == ("parquet", "zstd")
    assert spec.sink.partition_by == ("event_date", "event_hour")
    assert spec.events.dedupe_minutes == 5
    plain = parse_stream_spec(GOOD, "x.toml")  # without [delivery] nothing changes
    assert plain.delivery is None and plain.events.dedupe_minutes == 10


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            '"json.gz"',
            '"csv"',
            "x.toml: delivery.format: must be one of parquet, json.gz, got 'csv'",
        ),
        (
            '"arrival_time"',
            '"ingest_time"',
            "x.toml: delivery.prefix_by: must be one of event_time",
        ),
        (
            "buffer_seconds = 90",
            "buffer_seconds = 0",
            "x.toml: delivery.buffer_seconds: must be > 0",
        ),
        ("buffer_records = 2500", "buffer_mb = 5", "x.toml: delivery.buffer_mb: unknown key"),
        (
            "[delivery]",
            "[trigger]\ninterval_seconds = 5\n[delivery]",
            "x.toml: delivery.buffer_seconds: sets trigger.interval_seconds, which the spec",
        ),
        (
            "[delivery]",
            "[sink]\ncompression = 'zstd'\n[delivery]",
            "x.toml: delivery.format: json.gz is always gzip",
        ),
        ("n bigint", "n bigint, arrival_hour int", "x.toml: events.schema: column 'arrival_hour'"),
    ],
)
def test_delivery_errors_name_the_key(old, new, message):
    text = GOOD + DELIVERY
    assert old in text
    with pytest.raises(SpecError) as caught:
        parse_stream_spec(text.replace(old, new, 1), "x.toml")

    assert message in str(caught.value)


def test_deliver_refuses_a_spec_without_delivery_before_spark(tmp_path, capsys):
    from sluiceway.cli import main

    spec = tmp_path / "plain.toml"
    spec.write_text(GOOD.replace("/data/out", str(tmp_path / "out")), encoding="utf-8")

    assert main(["deliver", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}: delivery: is required by `sluiceway deliver`" in err
    assert not (tmp_path / "out").exists()


def test_example_delivery_spec_parses():
    spec = load_stream_spec("pipelines/delivery.toml", output_root="/o")

    assert spec.delivery is not None and spec.source.kind == "kafka"
    assert spec.sink.dead_letter_path == "/o/errors" and spec.sink.file_format == "json"
