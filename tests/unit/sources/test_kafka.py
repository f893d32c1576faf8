"""The kafka source kind: spec keys, the options Spark's Kafka source gets, the reach check."""

from __future__ import annotations

import socket

import pytest

from sluiceway.errors import SourceError, SpecError
from sluiceway.sources.kafka import check_reachable, kafka_options
from sluiceway.stream_spec import parse_stream_spec

pytestmark = pytest.mark.spark_free

SPEC = """
[pipeline]
name = "clicks"
output = "/data/out"

[source]
kind = "kafka"
{source}

[events]
schema = "event_id string, event_time timestamp"
event_id = "event_id"
event_time = "event_time"
"""
MSK = """
bootstrap_servers = "b-1.msk.example:9098,b-2.msk.example:9098"
topics = ["clicks", "orders"]
starting_offsets = "latest"
max_records_per_batch = 2000
security_protocol = "SASL_SSL"
sasl_mechanism = "AWS_MSK_IAM"
consumer = { "fetch.max.bytes" = 1048576, "client.dns.lookup" = "use_all_dns_ips" }
"""


def _source(text: str):
    spec = parse_stream_spec(SPEC.format(source=text), "x.toml")
    assert spec.source.kafka is not None
    return spec


def test_msk_iam_spec_becomes_the_options_of_sparks_kafka_source():
    spec = _source(MSK)

    options = kafka_options(spec.source.kafka, "x.toml", max_records_per_batch=2000)

    assert options == {
        "kafka.bootstrap.servers": "b-1.msk.example:9098,b-2.msk.example:9098",
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "AWS_MSK_IAM",
        "kafka.sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
        "kafka.sasl.client.callback.handler.class": (
            "software.amazon.msk.auth.iam.IAMClientCallbackHandler"
        ),
        "kafka.client.dns.lookup": "use_all_dns_ips",
        "kafka.fetch.max.bytes": "1048576",
        "subscribe": "clicks,orders",
        "startingOffsets": "latest",
        "maxOffsetsPerTrigger": "2000",
        "failOnDataLoss": "true",
    }
    assert spec.source.kafka.msk_iam


def test_pattern_and_brokers_from_the_environment(monkeypatch):
    spec = _source(
        'bootstrap_servers_env = "MY_BROKERS"\nbootstrap_servers = "fallback:9092"\n'
        'topic_pattern = "clicks-.*"'
    )
    kafka = spec.source.kafka

    assert kafka_options(kafka, "x.toml", max_records_per_batch=5)["kafka.bootstrap.servers"] == (
        "fallback:9092"
    )
    monkeypatch.setenv("MY_BROKERS", "127.0.0.1:1234")
    options = kafka_options(kafka, "x.toml", max_records_per_batch=5)
    assert options["kafka.bootstrap.servers"] == "127.0.0.1:1234"
    assert options["subscribePattern"] == "clicks-.*" and "subscribe" not in options
    assert options["kafka.security.protocol"] == "PLAINTEXT"
    assert options["startingOffsets"] == "earliest"


def test_brokers_variable_unset_without_a_fallback_names_the_key(monkeypatch):
    monkeypatch.delenv("MY_BROKERS", raising=False)
    spec = _source('bootstrap_servers_env = "MY_BROKERS"\ntopics = ["t"]')

    with pytest.raises(SourceError) as caught:
        kafka_options(spec.source.kafka, "x.toml", max_records_per_batch=5)
    assert str(caught.value) == (
        "x.toml: source.bootstrap_servers_env: $MY_BROKERS is not set and no "
        "bootstrap_servers is given"
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('topics = ["t"]', "source.bootstrap_servers: is required for a kafka source"),
        ('bootstrap_servers = "b:9092"', "source.topics: give either topics"),
        (
            'bootstrap_servers = "b:9092"\ntopics = ["t"]\ntopic_pattern = "t.*"',
            "source.topics: give either topics",
        ),
        (
            'bootstrap_servers = "b"\ntopics = ["t"]',
            "source.bootstrap_servers: 'b' is not host:port",
        ),
        (
            'bootstrap_servers = "b:1"\ntopics = ["a b"]',
            "source.topics: 'a b' is not a Kafka topic",
        ),
        ('bootstrap_servers = "b:1"\ntopics = []', "source.topics: names no topic"),
        ('bootstrap_servers = "b:1"\ntopic_pattern = "("', "source.topic_pattern: '(' is not a"),
        (
            'bootstrap_servers = "b:1"\ntopics = ["t"]\nstarting_offsets = "trim_horizon"',
            "source.starting_offsets: must be one of earliest, latest",
        ),
        (
            'bootstrap_servers = "b:1"\ntopics = ["t"]\nsasl_mechanism = "AWS_MSK_IAM"',
            'source.sasl_mechanism: needs security_protocol = "SASL_SSL"',
        ),
        (
            'bootstrap_servers = "b:1"\ntopics = ["t"]\nsecurity_protocol = "SASL_SSL"\n'
            'sasl_mechanism = "SCRAM-SHA-512"',
            "source.sasl_mechanism: must be one of AWS_MSK_IAM, got 'SCRAM-SHA-512' (SCRAM",
        ),
        (
            'bootstrap_servers = "b:1"\ntopics = ["t"]\nsecurity_protocol = "SASL_SSL"',
            "source.security_protocol: SASL_SSL needs a sasl_mechanism",
        ),
        (
            'bootstrap_servers = "b:1"\ntopics = ["t"]\nconsumer = { "sasl.jaas.config" = "x" }',
            "source.consumer.sasl.jaas.config: is set by the source's own keys or by Spark",
        ),
        (
            'bootstrap_servers = "b:1"\ntopics = ["t"]\nconsumer = { "group.id" = "g" }',
            "source.consumer.group.id: is set by the source's own keys or by Spark",
        ),
        (
            'bootstrap_servers = "b:1"\ntopics = ["t"]\nstream = "s"',
            "source.stream: only applies to a kinesis source",
        ),
    ],
)
def test_bad_kafka_source_is_one_error_naming_the_key(source, message):
    with pytest.raises(SpecError) as caught:
        parse_stream_spec(SPEC.format(source=source), "x.toml")
    assert f"x.toml: {message}" in str(caught.value)


def test_kafka_keys_in_a_kinesis_source_are_refused():
    text = SPEC.format(source="").replace('kind = "kafka"', 'kind = "kinesis"\nstream = "s"')
    with pytest.raises(SpecError, match="source.topics: only applies to a kafka source"):
        parse_stream_spec(text.replace('stream = "s"', 'stream = "s"\ntopics = ["t"]'), "x.toml")


def test_unreachable_brokers_fail_before_spark_naming_each():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = _source(f'bootstrap_servers = "127.0.0.1:{port}"\ntopics = ["t"]')

    with pytest.raises(SourceError) as caught:
        check_reachable(spec.source.kafka, "x.toml", timeout_s=1)
    assert "x.toml: source: cannot reach any Kafka bootstrap server" in str(caught.value)
    assert f"127.0.0.1:{port}" in str(caught.value)
