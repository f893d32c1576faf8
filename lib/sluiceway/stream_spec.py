"""The streaming spec: a TOML file parsed once into frozen dataclasses.

A stream spec is its own file (the batch spec's parser stays as it is):

    [pipeline]  name, output                  as in a batch spec
    [source]    where raw records come from   kind = "kinesis" | "kafka" | "files"
    [events]    the JSON payload: schema, event id and time, transforms, quality rules
    [sink]      valid events and dead letters: paths, compression, file sizing
    [trigger]   interval or available_now, checkpoint location
    [delivery]  the Firehose-style preset (`sluiceway deliver`): buffering, file format,
                prefixes; it sets the sink and trigger keys it names, and dedupes
                nothing unless events.dedupe_minutes says so

Errors name the file and the dotted key, like the batch spec's:
`pipelines/clickstream.toml: source.stream: is required`.

Like the batch spec it parses with the standard library alone: the events schema is kept
as plain data (each field's type in Spark's JSON form), which `streaming.event_schema`
turns into a StructType; `spec_check.check_stream_spec` resolves the transform names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sluiceway.quality_rules import QualityRule
from sluiceway.spec import COMPRESSIONS, join_path
from sluiceway.spec_reader import (
    IDENTIFIER,
    Reader,
    TransformStep,
    parse_package,
    parse_quality,
    parse_transforms,
    read_spec_file,
    top_reader,
)

SOURCE_KINDS = ("kinesis", "kafka", "files")
STARTING_POSITIONS = ("trim_horizon", "latest")
STARTING_OFFSETS = ("earliest", "latest")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")
# Amazon MSK's IAM login, the one SASL mechanism that needs no secret in the spec.
SASL_MECHANISMS = ("AWS_MSK_IAM",)
# Kafka topic names: 1-249 of [a-zA-Z0-9._-].
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,249}$")
# Consumer settings the source's own keys set, Spark manages, or that would put a secret
# in the spec (a JAAS config carries the password): refused in `consumer`.
_MANAGED_CONSUMER_KEYS = (
    "bootstrap.servers",
    "security.protocol",
    "group.id",
    "auto.offset.reset",
    "enable.auto.commit",
    "key.deserializer",
    "value.deserializer",
    "interceptor.classes",
)
_CONSUMER_KEY = re.compile(r"^[a-z][a-z0-9]*(\.[a-z0-9]+)*$")
_KINESIS_KEYS = ("stream", "region", "endpoint_env", "starting_position")
_KAFKA_KEYS = (
    "bootstrap_servers",
    "bootstrap_servers_env",
    "topics",
    "topic_pattern",
    "starting_offsets",
    "security_protocol",
    "sasl_mechanism",
    "consumer",
)
TRIGGER_MODES = ("interval", "available_now")
DELIVERY_FORMATS = ("parquet", "json.gz")
PREFIX_BY = ("event_time", "arrival_time")
# [delivery] keys and the key of the full spec each one sets: giving both is refused.
_DELIVERY_SETS = {
    "buffer_seconds": ("trigger", "interval_seconds"),
    "buffer_records": ("source", "max_records_per_batch"),
    "prefix": ("sink", "path"),
    "error_prefix": ("sink", "dead_letter_path"),
}
# Kinesis stream names: 1-128 of [a-zA-Z0-9_.-].
_STREAM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
# Columns the pipeline adds; a payload field of the same name would be shadowed.
EVENT_PARTITIONS = ("event_date", "event_hour")
RESERVED_COLUMNS = EVENT_PARTITIONS


@dataclass(frozen=True)
class StreamSource:
    kind: str
    stream: str | None  # kinesis
    region: str | None
    endpoint_env: str | None  # environment variable holding an endpoint URL (emulator)
    starting_position: str
    max_records_per_batch: int
    path: str | None  # files: a directory of capture files (JSON lines)
    max_files_per_batch: int
    kafka: KafkaSource | None = None


@dataclass(frozen=True)
class KafkaSource:
    """Where and how a kafka source reads: Spark's own Kafka source takes these as options."""

    bootstrap_servers: str | None  # host:port,... as written
    bootstrap_servers_env: str | None  # a variable holding them; wins when set
    topics: tuple[str, ...]  # subscribe to these ...
    topic_pattern: str | None  # ... or to every topic matching this Java regex
    starting_offsets: str  # "earliest" | "latest": where a new checkpoint starts
    security_protocol: str
    sasl_mechanism: str | None
    consumer: tuple[tuple[str, str], ...]  # further consumer settings, passed through

    @property
    def msk_iam(self) -> bool:
        return self.sasl_mechanism == "AWS_MSK_IAM"

    def describe(self) -> str:
        what = f"pattern {self.topic_pattern!r}" if self.topic_pattern else ", ".join(self.topics)
        return f"kafka topic(s) {what}"


@dataclass(frozen=True)
class EventField:
    """One payload field: its name and its type in Spark's JSON form (`StructType.fromJson`)."""

    name: str
    type: Any  # "long", "decimal(10,2)", {"type": "array", "elementType": ..., ...}

    @property
    def type_name(self) -> str:
        """The type as Spark writes it (`simpleString`): "bigint", "array<string>"."""
        return _type_name(self.type)


@dataclass(frozen=True)
class EventsSpec:
    schema: str  # DDL, as written
    fields: tuple[EventField, ...]  # the DDL parsed and validated
    event_id: str
    event_time: str
    dedupe_minutes: int
    transforms: tuple[TransformStep, ...]
    quality: tuple[QualityRule, ...]

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def schema_json(self) -> dict[str, Any]:
        """The payload schema in Spark's JSON form; every field nullable."""
        return {
            "type": "struct",
            "fields": [
                {"name": f.name, "type": f.type, "nullable": True, "metadata": {}}
                for f in self.fields
            ],
        }


@dataclass(frozen=True)
class StreamSink:
    path: str
    dead_letter_path: str
    compression: str
    target_file_mb: int
    compact_min_files: int
    file_format: str = "parquet"  # or "json": JSON lines (gzip), compaction off
    # The valid events' partition columns: from the event time, or (a delivery spec's
    # prefix_by = "arrival_time") from the time the record reached the stream.
    partition_by: tuple[str, str] = ("event_date", "event_hour")


@dataclass(frozen=True)
class TriggerSpec:
    mode: str
    interval_seconds: int
    checkpoint: str
    state_partitions: int | None = None  # None: Spark's default parallelism at the first start


@dataclass(frozen=True)
class StreamSpec:
    name: str
    source_file: str
    output_root: str
    source: StreamSource
    events: EventsSpec
    sink: StreamSink
    trigger: TriggerSpec
    package_modules: tuple[str, ...] = ()  # [package] modules: user code to ship
    delivery: DeliverySpec | None = None  # [delivery]: what `sluiceway deliver` needs


@dataclass(frozen=True)
class DeliverySpec:
    """The Firehose-style preset, as written; its values are already in sink and trigger."""

    format: str  # "parquet" | "json.gz"
    prefix_by: str  # "event_time" | "arrival_time"


def load_stream_spec(
    path: str | Path, output_root: str | None = None, checkpoint: str | None = None
) -> StreamSpec:
    """Read and validate a stream spec; `output_root`/`checkpoint` override the file's."""
    text = read_spec_file(path)
    return parse_stream_spec(text, str(path), output_root=output_root, checkpoint=checkpoint)


def parse_stream_spec(
    text: str,
    source: str = "<spec>",
    output_root: str | None = None,
    checkpoint: str | None = None,
) -> StreamSpec:
    top, pipe, name = top_reader(
        text, source, "pipeline", "source", "events", "sink", "trigger", "package", "delivery"
    )
    pipe.only("name", "output")
    root = output_root or pipe.get("output", str, required=True)
    tables = {
        "source": top.get("source", dict, required=True),
        "events": top.get("events", dict, required=True),
        "sink": top.get("sink", dict, {}),
        "trigger": top.get("trigger", dict, {}),
    }
    delivery = None
    if "delivery" in top.data:
        # The preset writes its keys into the tables they stand for, then parses as usual.
        delivery = _parse_delivery(top.child("delivery", top.get("delivery", dict)), tables)

    stream_source = _parse_source(top.child("source", tables["source"]))
    events = _parse_events(top.child("events", tables["events"]))
    sink = _parse_sink(top.child("sink", tables["sink"]), root, delivery)
    for column in set(sink.partition_by) & set(events.field_names):
        top.fail("events.schema", f"column {column!r} is reserved for the delivery's prefixes")
    trigger = _parse_trigger(top.child("trigger", tables["trigger"]), root, name)
    if checkpoint:
        trigger = replace(trigger, checkpoint=checkpoint)
    return StreamSpec(
        name,
        source,
        root,
        stream_source,
        events,
        sink,
        trigger,
        parse_package(top),
        delivery,
    )


def _parse_delivery(r: Reader, tables: dict[str, dict[str, Any]]) -> DeliverySpec:
    """Check [delivery] and copy its keys into `tables` (the source, sink, trigger tables)."""
    r.only(*_DELIVERY_SETS, "format", "prefix_by")
    for key, (table, own) in _DELIVERY_SETS.items():
        if key not in r.data:
            continue
        if own in tables[table]:
            r.fail(key, f"sets {table}.{own}, which the spec gives too; give one of them")
        # Checked here, so that a bad value is reported under its own key.
        value = r.positive(key, 1) if key.startswith("buffer_") else r.get(key, str)
        tables[table] = {**tables[table], own: value}
    fmt = r.choice("format", DELIVERY_FORMATS, "parquet")
    if fmt == "json.gz" and "compression" in tables["sink"]:
        r.fail("format", "json.gz is always gzip; remove sink.compression")
    # Firehose does not dedupe; the preset neither, unless the spec asks for it.
    tables["events"] = {"dedupe_minutes": 0, **tables["events"]}
    return DeliverySpec(format=fmt, prefix_by=r.choice("prefix_by", PREFIX_BY, "event_time"))


def _parse_source(r: Reader) -> StreamSource:
    r.only(
        "kind",
        *_KINESIS_KEYS,
        *_KAFKA_KEYS,
        "max_records_per_batch",
        "path",
        "max_files_per_batch",
    )
    kind = r.choice("kind", SOURCE_KINDS, "kinesis")
    stream = r.get("stream", str)
    region = r.get("region", str)
    path = r.get("path", str)
    if kind == "files" and path is None:
        r.fail("path", "is required for a files source")
    owners = {"kinesis": _KINESIS_KEYS, "kafka": _KAFKA_KEYS, "files": ("path",)}
    for owner, keys in owners.items():
        for key in keys:
            if key in r.data and owner != kind:
                r.fail(key, f"only applies to a {owner} source")
    if kind == "kinesis":
        if stream is None:
            r.fail("stream", "is required for a kinesis source")
        if not _STREAM_NAME.match(stream):
            r.fail(
                "stream", f"{stream!r} is not a Kinesis stream name (1-128 of A-Z a-z 0-9 _ . -)"
            )
        if region is not None and not _REGION.match(region):
            r.fail("region", f"{region!r} is not an AWS region name like 'us-east-1'")
    return StreamSource(
        kind=kind,
        stream=stream,
        region=region,
        endpoint_env=r.identifier("endpoint_env"),
        starting_position=r.choice("starting_position", STARTING_POSITIONS, "trim_horizon"),
        max_records_per_batch=r.positive("max_records_per_batch", 100_000),
        path=path,
        max_files_per_batch=r.positive("max_files_per_batch", 100),
        kafka=_parse_kafka(r) if kind == "kafka" else None,
    )


def _parse_kafka(r: Reader) -> KafkaSource:
    servers = r.get("bootstrap_servers", str)
    servers_env = r.identifier("bootstrap_servers_env")
    if servers is None and servers_env is None:
        r.fail("bootstrap_servers", "is required for a kafka source (or bootstrap_servers_env)")
    if servers is not None:
        for server in servers.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                r.fail("bootstrap_servers", f"{server.strip()!r} is not host:port")
    topics = r.get("topics", (list, str))
    pattern = r.get("topic_pattern", str)
    if (topics is None) == (pattern is None):
        r.fail("topics", "give either topics (a list of names) or topic_pattern, not both")
    names = [topics] if isinstance(topics, str) else list(topics or [])
    if topics is not None and not names:
        r.fail("topics", "names no topic")
    for name in names:
        if not isinstance(name, str) or not _TOPIC_NAME.match(name):
            r.fail("topics", f"{name!r} is not a Kafka topic name (1-249 of A-Z a-z 0-9 _ . -)")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            r.fail("topic_pattern", f"{pattern!r} is not a regular expression: {exc}")
    protocol = r.choice("security_protocol", SECURITY_PROTOCOLS, "PLAINTEXT")
    mechanism = r.get("sasl_mechanism", str)
    if mechanism is not None:
        if mechanism not in SASL_MECHANISMS:
            r.fail(
                "sasl_mechanism",
                f"must be one of {', '.join(SASL_MECHANISMS)}, got {mechanism!r} (SCRAM and "
                "PLAIN need a password, which a spec never holds)",
            )
        if protocol != "SASL_SSL":
            r.fail("sasl_mechanism", 'needs security_protocol = "SASL_SSL"')
    elif protocol == "SASL_SSL":
        r.fail("security_protocol", "SASL_SSL needs a sasl_mechanism")
    return KafkaSource(
        bootstrap_servers=servers,
        bootstrap_servers_env=servers_env,
        topics=tuple(names),
        topic_pattern=pattern,
        starting_offsets=r.choice("starting_offsets", STARTING_OFFSETS, "earliest"),
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        consumer=_parse_consumer(r.child("consumer", r.get("consumer", dict, {}))),
    )


def _parse_consumer(r: Reader) -> tuple[tuple[str, str], ...]:
    """Further Kafka consumer settings (`fetch.max.bytes = 52428800`), values as strings."""
    settings = []
    for key, value in r.data.items():
        if not _CONSUMER_KEY.match(key):
            r.fail(key, "is not a Kafka consumer setting name (like fetch.max.bytes)")
        if key in _MANAGED_CONSUMER_KEYS or key.startswith("sasl.") or key.startswith("ssl."):
            r.fail(key, "is set by the source's own keys or by Spark; it cannot be given here")
        if isinstance(value, bool):
            value = str(value).lower()
        if not isinstance(value, str | int | float):
            r.fail(key, f"must be a string or a number, got {value!r}")
        settings.append((key, str(value)))
    return tuple(sorted(settings))


def _parse_events(r: Reader) -> EventsSpec:
    r.only("schema", "event_id", "event_time", "dedupe_minutes", "transforms", "quality")
    schema_text = r.get("schema", str, required=True)
    schema = _parse_schema(r, schema_text)
    fields = {f.name: f.type_name for f in schema}
    event_id = r.identifier("event_id", required=True) or ""
    event_time = r.identifier("event_time", required=True) or ""
    for key, column in (("event_id", event_id), ("event_time", event_time)):
        if column not in fields:
            r.fail(key, f"column {column!r} is not in the schema (have: {', '.join(fields)})")
    if fields[event_time] not in ("timestamp", "timestamp_ntz", "date"):
        r.fail("event_time", f"column {event_time!r} is {fields[event_time]}, not a timestamp")
    for column in fields:
        if column in RESERVED_COLUMNS or column.startswith("_"):
            r.fail("schema", f"column {column!r} is reserved for the columns the pipeline adds")
    quality = parse_quality(r)
    for index, rule in enumerate(quality):
        if rule.column not in fields:
            r.fail(f"quality[{index}].column", f"column {rule.column!r} is not in the schema")
    dedupe = r.get("dedupe_minutes", int, 10)
    if dedupe < 0:
        r.fail("dedupe_minutes", f"must be >= 0, got {dedupe}")
    return EventsSpec(
        schema=schema_text,
        fields=schema,
        event_id=event_id,
        event_time=event_time,
        dedupe_minutes=dedupe,
        transforms=parse_transforms(r, "transforms"),
        quality=quality,
    )


def _parse_schema(r: Reader, text: str) -> tuple[EventField, ...]:
    """Parse DDL with the standard library (Spark 3.5 has no public parser without a session)."""
    fields: list[tuple[str, str]] = []
    for part in _split_top_level(text):
        bits = part.strip().split(None, 1)
        if len(bits) != 2 or not IDENTIFIER.match(bits[0]):
            r.fail("schema", f"cannot read {part.strip()!r}; expected 'name type'")
        fields.append((bits[0], bits[1].strip()))
    if not fields:
        r.fail("schema", "names no columns")
    names = [n for n, _ in fields]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        r.fail("schema", f"names column(s) twice: {', '.join(duplicates)}")
    try:
        return tuple(EventField(n, _json_type(t)) for n, t in fields)
    except ValueError as exc:
        raise r.error("schema", f"unsupported type: {exc}") from exc


_SIMPLE_TYPES = {
    "string": "string",
    "boolean": "boolean",
    "int": "integer",
    "integer": "integer",
    "bigint": "long",
    "long": "long",
    "smallint": "short",
    "tinyint": "byte",
    "double": "double",
    "float": "float",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp_ntz": "timestamp_ntz",
    "binary": "binary",
}
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
# Spark's JSON names that its simpleString spells differently.
_SIMPLE_NAMES = {"integer": "int", "long": "bigint", "short": "smallint", "byte": "tinyint"}


def _json_type(text: str) -> object:
    """Spark's JSON form of one DDL type; nested types as array<...>, struct<...>, map<...>."""
    t = text.strip()
    low = t.lower()
    if low in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[low]
    match = _DECIMAL.match(low)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2))
        if not 0 < precision <= 38 or scale > precision:
            raise ValueError(f"decimal({precision},{scale}) is out of range")
        return f"decimal({precision},{scale})"
    if low.startswith("array<") and low.endswith(">"):
        return {"type": "array", "elementType": _json_type(t[6:-1]), "containsNull": True}
    if low.startswith("map<") and low.endswith(">"):
        key, value = _split_top_level(t[4:-1])
        return {
            "type": "map",
            "keyType": _json_type(key),
            "valueType": _json_type(value),
            "valueContainsNull": True,
        }
    if low.startswith("struct<") and low.endswith(">"):
        inner = []
        for part in _split_top_level(t[7:-1]):
            name, _, kind = part.partition(":")
            if not IDENTIFIER.match(name.strip()) or not kind:
                raise ValueError(f"struct field {part.strip()!r}: expected 'name:type'")
            inner.append(
                {"name": name.strip(), "type": _json_type(kind), "nullable": True, "metadata": {}}
            )
        return {"type": "struct", "fields": inner}
    raise ValueError(f"{t!r}")


def _type_name(json_type: Any) -> str:
    """Spark's simpleString of a type in its JSON form."""
    if isinstance(json_type, str):
        return _SIMPLE_NAMES.get(json_type, json_type)
    if json_type["type"] == "array":
        return f"array<{_type_name(json_type['elementType'])}>"
    if json_type["type"] == "map":
        return f"map<{_type_name(json_type['keyType'])},{_type_name(json_type['valueType'])}>"
    inner = ",".join(f"{f['name']}:{_type_name(f['type'])}" for f in json_type["fields"])
    return f"struct<{inner}>"


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside <...> or (...)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if "".join(current).strip():
        parts.append("".join(current))
    return parts


def _parse_sink(r: Reader, root: str, delivery: DeliverySpec | None) -> StreamSink:
    r.only("path", "dead_letter_path", "compression", "target_file_mb", "compact_min_files")
    json_gz = delivery is not None and delivery.format == "json.gz"
    by_arrival = delivery is not None and delivery.prefix_by == "arrival_time"
    return StreamSink(
        path=join_path(root, r.get("path", str, "events")),
        dead_letter_path=join_path(root, r.get("dead_letter_path", str, "_dead_letters")),
        compression="gzip" if json_gz else r.choice("compression", COMPRESSIONS, "zstd"),
        target_file_mb=r.positive("target_file_mb", 128),
        compact_min_files=r.positive("compact_min_files", 8),
        file_format="json" if json_gz else "parquet",
        partition_by=("arrival_date", "arrival_hour") if by_arrival else EVENT_PARTITIONS,
    )


def _parse_trigger(r: Reader, root: str, name: str) -> TriggerSpec:
    r.only("mode", "interval_seconds", "checkpoint", "state_partitions")
    state = r.positive("state_partitions", 1) if "state_partitions" in r.data else None
    return TriggerSpec(
        mode=r.choice("mode", TRIGGER_MODES, "interval"),
        interval_seconds=r.positive("interval_seconds", 30),
        checkpoint=join_path(root, r.get("checkpoint", str, f"_checkpoints/{name}")),
        state_partitions=state,
    )
