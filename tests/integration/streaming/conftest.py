"""Fixtures for the streaming tests: the Kinesis emulator, fresh streams, stream specs,
and the job run as its CLI in a subprocess (to be SIGKILLed at a kill point).

The Kinesis endpoint is kinesalite, started by `python3 scripts/services.py start`
(SLUICEWAY_KINESIS_ENDPOINT). An endpoint that does not answer fails the tests that need
it, never skips them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pyspark
import pytest

from sluiceway.demo.events import EVENT_SCHEMA, create_stream
from sluiceway.faults import ENV as KILL_AT
from sluiceway.sources.kinesis import KinesisOptions, make_client

# Python streaming data sources (pyspark.sql.datasource) exist from Spark 4.0 on.
PYTHON_STREAMING = int(pyspark.__version__.split(".")[0]) >= 4
needs_python_streaming = pytest.mark.skipif(
    not PYTHON_STREAMING,
    reason="PySpark 3.5 has no Python streaming data sources (pyspark.sql.datasource is "
    "Spark >= 4.0), so the project's Kinesis source cannot run; the pipeline logic is "
    "tested on 3.5 through the files source",
)


@pytest.fixture(scope="session")
def kinesis_endpoint() -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    endpoint = os.environ.get("SLUICEWAY_KINESIS_ENDPOINT", "http://127.0.0.1:24567")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("SLUICEWAY_KINESIS_ENDPOINT", endpoint)
    problem: Exception | None = None
    try:
        make_client(KinesisOptions(stream="probe", endpoint=endpoint)).list_streams(Limit=1)
    except (BotoCoreError, ClientError) as exc:
        problem = exc
    if problem is not None:
        pytest.fail(
            f"the Kinesis emulator at {endpoint} does not answer: {problem}\n"
            "start it with `python3 scripts/services.py start kinesis`",
            pytrace=False,
        )
    return endpoint


@pytest.fixture
def new_stream(kinesis_endpoint: str) -> Iterator[Callable[[int], KinesisOptions]]:
    """Create streams with a fresh name and the given shard count; deleted afterwards."""
    made: list[KinesisOptions] = []

    def make(shards: int) -> KinesisOptions:
        opts = KinesisOptions(
            stream=f"test-{uuid.uuid4().hex[:10]}", region="us-east-1", endpoint=kinesis_endpoint
        )
        create_stream(opts, shards)
        made.append(opts)
        return opts

    yield make
    for opts in made:
        make_client(opts).delete_stream(StreamName=opts.stream, EnforceConsumerDeletion=True)


def write_stream_spec(
    tmp_path: Path,
    source: str,
    *,
    mode: str = "available_now",
    interval_seconds: int = 1,
    events_extra: str = "",
    sink_extra: str = "",
    name: str = "s",
) -> Path:
    """A stream spec with output and checkpoint under tmp_path/out and the demo schema."""
    text = textwrap.dedent(
        f"""
        [pipeline]
        name = "{name}"
        output = "{tmp_path / "out"}"

        [source]
        """
    )
    text += textwrap.dedent(source).strip() + "\n"
    text += textwrap.dedent(
        f"""
        [events]
        schema = "{EVENT_SCHEMA}"
        event_id = "event_id"
        event_time = "event_time"
        """
    )
    text += textwrap.dedent(events_extra).strip() + "\n"
    text += "\n[sink]\n" + textwrap.dedent(sink_extra).strip() + "\n"
    text += f'\n[trigger]\nmode = "{mode}"\ninterval_seconds = {interval_seconds}\n'
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def kinesis_source(opts: KinesisOptions, max_records: int = 100_000) -> str:
    return f"""
    kind = "kinesis"
    stream = "{opts.stream}"
    region = "us-east-1"
    endpoint_env = "SLUICEWAY_KINESIS_ENDPOINT"
    max_records_per_batch = {max_records}
    """


def files_source(path: Path, max_files_per_batch: int) -> str:
    return f"""
    kind = "files"
    path = "{path}"
    max_files_per_batch = {max_files_per_batch}
    """


def read_dataset(spark, path: str):  # -> DataFrame | None
    """The Parquet dataset at `path`, or None when nothing was written there."""
    if not Path(path).exists():
        return None
    return spark.read.parquet(path)


def ids(df) -> list[str]:  # df: DataFrame | None
    return [] if df is None else [r["event_id"] for r in df.select("event_id").collect()]


# ---------------------------------------------------------------------------------------
# Kafka: the real broker `python3 scripts/services.py start kafka` runs (KRaft, one node)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    bootstrap = os.environ.setdefault("SLUICEWAY_KAFKA_BOOTSTRAP", "127.0.0.1:29092")
    problem: Exception | None = None
    try:
        KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000).close()
    except KafkaError as exc:
        problem = exc
    if problem is not None:
        pytest.fail(
            f"the Kafka broker at {bootstrap} does not answer: {problem}\n"
            "start it with `python3 scripts/services.py start kafka`",
            pytrace=False,
        )
    return bootstrap


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Iterator[Callable[[int], str]]:
    """Create topics with a fresh name and the given partition count; deleted afterwards."""
    from kafka.admin import KafkaAdminClient

    from sluiceway.demo.events import create_topic

    made: list[str] = []

    def make(partitions: int) -> str:
        topic = f"test-{uuid.uuid4().hex[:10]}"
        create_topic(kafka_bootstrap, topic, partitions)
        made.append(topic)
        return topic

    yield make
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.delete_topics(made)
    finally:
        admin.close()


def kafka_source(topic: str, max_records: int = 100_000, extra: str = "") -> str:
    return f"""
    kind = "kafka"
    bootstrap_servers_env = "SLUICEWAY_KAFKA_BOOTSTRAP"
    topics = ["{topic}"]
    max_records_per_batch = {max_records}
    {extra}
    """


def run_stream_cli(
    spec: Path, kill_at: str | None = None, command: str = "stream"
) -> subprocess.CompletedProcess[str]:
    """`sluiceway <command> SPEC --available-now` in a subprocess on local[2]; with
    `kill_at` it SIGKILLs itself at that point (see `sluiceway.faults`)."""
    env = {**os.environ, "SLUICEWAY_SPARK_MASTER": "local[2]"}
    env.pop(KILL_AT, None)
    if kill_at:
        env[KILL_AT] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "sluiceway.cli", command, str(spec), "--available-now"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        start_new_session=True,  # its own process group: the kill takes the JVM with it
    )
