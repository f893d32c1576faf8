"""End to end against the Kinesis emulator: exactly once, dead letters, kills, resharding.

These use the project's Python Kinesis source, which needs Spark >= 4.0.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sluiceway import streaming
from sluiceway.demo.events import put_records, sample_records
from sluiceway.sources.kinesis import list_shards, make_client
from sluiceway.stream_spec import load_stream_spec

from .conftest import ids, kinesis_source, needs_python_streaming, read_dataset, write_stream_spec

pytestmark = needs_python_streaming


def test_stream_with_several_shards_lands_each_valid_record_once_and_every_malformed_one(
    spark, tmp_path, new_stream
):
    opts = new_stream(4)
    records = sample_records(2000, malformed_share=0.1, seed=11)
    put_records(opts, records)
    spec = load_stream_spec(write_stream_spec(tmp_path, kinesis_source(opts, max_records=600)))

    report = streaming.run_spec(spark, spec)

    valid = [r.event_id for r in records if r.event_id]
    malformed = sorted(r.data for r in records if r.event_id is None)
    assert len(valid) == 1800 and len(malformed) == 200
    assert sorted(ids(read_dataset(spark, spec.sink.path))) == sorted(valid)
    dead = read_dataset(spark, spec.sink.dead_letter_path).collect()
    assert sorted(bytes(r["payload"]) for r in dead) == malformed
    shards = {s["ShardId"] for s in list_shards(opts, make_client(opts))}
    assert {r["shard_id"] for r in dead} <= shards
    assert all(r["sequence_number"] and r["arrival_time"] and r["error"] for r in dead)
    # 2000 records, at most 600 a batch: the per-batch limit held.
    assert len([b for b in report.batches if b["metrics"]["records"]]) >= 4
    assert max(b["metrics"]["records"] for b in report.batches) <= 600


def _spawn(spec: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sluiceway.cli", "stream", str(spec), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SLUICEWAY_SPARK_MASTER": "local[2]"},
            start_new_session=True,  # its own process group: the JVM and workers die with it
        )


def test_job_killed_mid_batch_restarts_on_its_checkpoint_exactly_once_and_stops_on_sigterm(
    spark, tmp_path, new_stream
):
    opts = new_stream(4)
    records = sample_records(1600, malformed_share=0.1, duplicate_share=0.02, seed=12)
    put_records(opts, records)
    spec_path = write_stream_spec(
        tmp_path, kinesis_source(opts, max_records=400), mode="interval", interval_seconds=1
    )
    spec = load_stream_spec(spec_path)
    sink = Path(spec.trigger.checkpoint) / "sink"
    log = tmp_path / "job.log"

    job = _spawn(spec_path, log)
    deadline = time.monotonic() + 300
    killed_during: list[str] = []
    while not killed_during:
        assert job.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "no second batch started:\n" + log.read_text()
        committed = {p.stem for p in (sink / "commits").glob("*.json")}
        staging = [p.name for p in (sink / "staging").glob("*") if p.name not in committed]
        if committed and staging:  # a later batch is being written, not yet committed
            os.killpg(job.pid, signal.SIGKILL)
            killed_during = staging
        time.sleep(0.05)
    job.wait(60)
    assert job.returncode == -signal.SIGKILL
    assert not (sink / "commits" / f"{killed_during[0]}.json").exists()

    # Restarted on the same checkpoint, then stopped with SIGTERM: it ends cleanly.
    committed = len(list((sink / "commits").glob("*.json")))
    job = _spawn(spec_path, log)
    while len(list((sink / "commits").glob("*.json"))) <= committed:
        assert job.poll() is None, log.read_text()
        assert time.monotonic() < deadline + 300, "no batch after the restart:\n" + log.read_text()
        time.sleep(0.1)
    job.send_signal(signal.SIGTERM)
    assert job.wait(180) == 0, log.read_text()
    assert ": stopped, " in log.read_text()

    streaming.run_spec(spark, load_stream_spec(spec_path), mode="available_now")

    valid = {r.event_id for r in records if r.event_id}
    written = ids(read_dataset(spark, spec.sink.path))
    assert len(written) == len(valid)  # nothing twice
    assert set(written) == valid  # nothing missing
    dead = read_dataset(spark, spec.sink.dead_letter_path)
    assert dead.count() == 160
    assert not list((sink / "staging").glob("*")) and not list((sink / "pending").glob("*"))


def test_second_available_now_run_picks_up_only_records_added_after_the_first(
    spark, tmp_path, new_stream
):
    opts = new_stream(3)
    first = sample_records(400, malformed_share=0.05, seed=13)
    put_records(opts, first)
    spec = load_stream_spec(write_stream_spec(tmp_path, kinesis_source(opts)))
    first_report = streaming.run_spec(spark, spec)
    assert first_report.total("records") == 400

    second = sample_records(300, malformed_share=0.1, seed=14)
    resent = [r for r in first if r.event_id][:50]  # re-sent within the dedupe window
    put_records(opts, [*second, *resent])
    report = streaming.run_spec(spark, spec)

    assert report.total("records") == 300
    assert report.total("dead_letters") == 30
    new_ids = {r.event_id for r in second if r.event_id}
    second_run = set(report_ids(spark, spec, report))
    assert second_run == new_ids
    everything = {r.event_id for r in [*first, *second] if r.event_id}
    written = ids(read_dataset(spark, spec.sink.path))
    assert sorted(written) == sorted(everything)


def report_ids(spark, spec, report) -> list[str]:
    """Event ids in the files the report's batches wrote."""
    files = [f for b in report.batches for f in b["files"] if "/events/" in f]
    if not files:
        return []
    return [
        r["event_id"]
        for r in spark.read.option("basePath", spec.sink.path).parquet(*files).collect()
    ]


def test_split_and_merged_shards_are_followed_without_loss_or_repeats(spark, tmp_path, new_stream):
    opts = new_stream(2)
    client = make_client(opts)
    spec = load_stream_spec(write_stream_spec(tmp_path, kinesis_source(opts, max_records=500)))
    batches = [sample_records(150, seed=s) for s in (21, 22, 23)]
    put_records(opts, batches[0])
    streaming.run_spec(spark, spec)

    shards = list_shards(opts, client)
    low = shards[0]["HashKeyRange"]
    middle = (int(low["StartingHashKey"]) + int(low["EndingHashKey"])) // 2
    client.split_shard(
        StreamName=opts.stream, ShardToSplit=shards[0]["ShardId"], NewStartingHashKey=str(middle)
    )
    _wait_active(client, opts.stream)
    put_records(opts, batches[1])
    children = [
        s for s in list_shards(opts, client) if s.get("ParentShardId") == shards[0]["ShardId"]
    ]
    upper_child = max(children, key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))
    client.merge_shards(
        StreamName=opts.stream,
        ShardToMerge=upper_child["ShardId"],
        AdjacentShardToMerge=shards[1]["ShardId"],
    )
    _wait_active(client, opts.stream)
    put_records(opts, batches[2])
    streaming.run_spec(spark, spec)

    expected = [r.event_id for b in batches for r in b]
    assert sorted(ids(read_dataset(spark, spec.sink.path))) == sorted(expected)
    assert len(list_shards(opts, client)) == 5  # 2 original, 2 from the split, 1 merged


def _wait_active(client, stream: str) -> None:
    deadline = time.monotonic() + 30
    while (
        client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
            "StreamStatus"
        ]
        != "ACTIVE"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)


class CountingProxy(ThreadingHTTPServer):
    """Passes Kinesis API calls through to the emulator, counting what GetRecords returned.

    Every process of the job (driver, planner and executor Python workers) calls the
    endpoint in the source's options, so this sees each GetRecords call of the run."""

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = urlsplit(upstream).netloc
        self.lock = threading.Lock()
        self.get_records_calls = 0
        self.records_returned = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    server: CountingProxy

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        upstream = http.client.HTTPConnection(self.server.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        upstream.request("POST", self.path, body, headers)
        response = upstream.getresponse()
        payload = response.read()
        if self.headers.get("X-Amz-Target", "").endswith(".GetRecords") and response.status == 200:
            with self.server.lock:
                self.server.get_records_calls += 1
                self.server.records_returned += len(json.loads(payload)["Records"])
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def counting_proxy(kinesis_endpoint: str, monkeypatch) -> Iterator[CountingProxy]:
    proxy = CountingProxy(kinesis_endpoint)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SLUICEWAY_KINESIS_ENDPOINT", proxy.url)  # the spec's endpoint_env
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def test_each_record_is_fetched_from_kinesis_once(spark, tmp_path, new_stream, counting_proxy):
    # The batch's records are read on the driver and shipped with the planned batch:
    # the executors do not read the range again (the old reader fetched every record twice).
    opts = new_stream(2)
    records = sample_records(200, malformed_share=0.0, seed=15)
    put_records(opts, records)
    spec = load_stream_spec(write_stream_spec(tmp_path, kinesis_source(opts, max_records=100)))

    report = streaming.run_spec(spark, spec)

    assert report.total("records") == 200
    assert len([b for b in report.batches if b["metrics"]["records"]]) >= 2
    assert counting_proxy.records_returned == 200, counting_proxy.get_records_calls
    # The offsets keep the format checkpoints of the earlier (probing) reader hold:
    # each shard's last sequence number read.
    written = read_dataset(spark, spec.sink.path).collect()
    last = {}
    for row in written:
        seq = last.get(row["_shard_id"], "0")
        last[row["_shard_id"]] = max(seq, row["_sequence_number"], key=int)
    offsets = Path(spec.trigger.checkpoint) / "offsets"
    newest = max((p for p in offsets.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    source_offset = newest.read_text().splitlines()[-1]
    assert source_offset == json.dumps(
        {"shards": {sid: {"seq": seq} for sid, seq in sorted(last.items())}}
    )
