"""Bad input to `sluiceway stream` / `produce`: one clear error, exit 1, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sluiceway.sources.kinesis import KinesisOptions

from .conftest import PYTHON_STREAMING, kafka_source, kinesis_source, write_stream_spec


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluiceway.cli", *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        timeout=300,
        check=False,
    )


def _assert_one_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("sluiceway: error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def _missing_stream_spec(tmp_path: Path) -> Path:
    return write_stream_spec(
        tmp_path, kinesis_source(KinesisOptions(stream="no-such-stream")), mode="interval"
    )


def test_missing_stream_is_one_error_and_nothing_is_written(tmp_path, kinesis_endpoint):
    result = _cli("stream", str(_missing_stream_spec(tmp_path)))

    _assert_one_error(result, "no-such-stream", "stream not found", kinesis_endpoint)
    assert not (tmp_path / "out").exists()


def test_unreachable_endpoint_is_one_error(tmp_path, kinesis_endpoint):
    env = {**os.environ, "SLUICEWAY_KINESIS_ENDPOINT": "http://127.0.0.1:9"}

    result = _cli("stream", str(_missing_stream_spec(tmp_path)), env=env)

    _assert_one_error(result, "cannot reach the endpoint", "127.0.0.1:9")
    assert not (tmp_path / "out").exists()


def test_missing_credentials_are_one_error(tmp_path, new_stream):
    opts = new_stream(1)
    spec = write_stream_spec(tmp_path, kinesis_source(opts), mode="interval")
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
    }
    env |= {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    result = _cli("stream", str(spec), env=env)

    _assert_one_error(result, "no AWS credentials", opts.stream)
    assert not (tmp_path / "out").exists()


def test_spec_error_names_the_file_and_the_key(tmp_path, kinesis_endpoint):
    spec = write_stream_spec(
        tmp_path, kinesis_source(KinesisOptions(stream="bad name!")), mode="interval"
    )

    result = _cli("stream", str(spec))

    _assert_one_error(result, str(spec), "source.stream", "not a Kinesis stream name")


def test_produce_into_a_missing_stream_is_one_error(kinesis_endpoint):
    result = _cli("produce", "--stream", "no-such-stream", "--count", "5")

    _assert_one_error(result, "no-such-stream", "stream not found")


@pytest.mark.skipif(
    PYTHON_STREAMING, reason="the check is for Spark lines without Python streaming sources"
)
def test_kinesis_source_on_spark_35_is_one_clear_error(tmp_path, new_stream):
    spec = write_stream_spec(tmp_path, kinesis_source(new_stream(1)), mode="interval")

    result = _cli("stream", str(spec), "--master", "local[1]")

    _assert_one_error(result, "needs Spark >= 4.0", "aws-kinesis")
    assert not (tmp_path / "out" / "events").exists()


def test_missing_kafka_topic_is_one_error_and_nothing_is_written(tmp_path, kafka_bootstrap):
    spec = write_stream_spec(tmp_path, kafka_source("no-such-topic"), mode="interval")

    result = _cli("stream", str(spec))

    _assert_one_error(
        result, str(spec), "source.topics", "no-such-topic not found", kafka_bootstrap
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.spark_free  # refused before Spark starts
def test_unreachable_kafka_brokers_are_one_error_before_spark(tmp_path, kafka_bootstrap):
    spec = write_stream_spec(tmp_path, kafka_source("clicks"), mode="interval")
    env = {**os.environ, "SLUICEWAY_KAFKA_BOOTSTRAP": "127.0.0.1:9"}

    result = _cli("stream", str(spec), env=env)

    _assert_one_error(result, "cannot reach any Kafka bootstrap server", "127.0.0.1:9")
    assert "starting Spark" not in result.stdout
    assert not (tmp_path / "out").exists()


@pytest.mark.spark_free
def test_produce_into_a_missing_kafka_topic_is_one_error(kafka_bootstrap):
    result = _cli("produce", "--topic", "no-such-topic", "--count", "5")

    _assert_one_error(result, "no-such-topic not found", kafka_bootstrap)
