"""The Kinesis source's offset and read logic against a small in-memory stand-in for the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from sluiceway.errors import SourceError
from sluiceway.sources import kinesis
from sluiceway.sources.kinesis import KinesisOptions

OPTS = KinesisOptions(stream="s", max_attempts=4)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "Op")


class FakeKinesis:
    """Shards of records with increasing sequence numbers; iterators are positions."""

    def __init__(self) -> None:
        self.shards: dict[str, dict] = {}
        self.fail_next: list[str] = []  # error codes raised by the next get_records calls

    def add_shard(self, sid: str, count: int, *, closed=False, parents=(), base=0):
        records = [
            {
                "SequenceNumber": str(10**20 * (base + 1) + i),
                "Data": f"{sid}:{i}".encode(),
                "PartitionKey": str(i),
                "ApproximateArrivalTimestamp": T0 + timedelta(seconds=i),
            }
            for i in range(count)
        ]
        self.shards[sid] = {"records": records, "closed": closed, "parents": list(parents)}

    def list_shards(self, **kwargs):
        shards = []
        for sid, shard in self.shards.items():
            entry = {"ShardId": sid, "SequenceNumberRange": {"StartingSequenceNumber": "1"}}
            if shard["closed"]:
                entry["SequenceNumberRange"]["EndingSequenceNumber"] = "9"
            keys = ("ParentShardId", "AdjacentParentShardId")
            entry.update(dict(zip(keys, shard["parents"], strict=False)))
            shards.append(entry)
        return {"Shards": shards}

    def get_shard_iterator(self, StreamName, ShardId, ShardIteratorType, **kwargs):
        records = self.shards[ShardId]["records"]
        if ShardIteratorType == "AFTER_SEQUENCE_NUMBER":
            seq = int(kwargs["StartingSequenceNumber"])
            index = sum(1 for r in records if int(r["SequenceNumber"]) <= seq)
        elif ShardIteratorType == "AT_TIMESTAMP":
            index = sum(
                1 for r in records if r["ApproximateArrivalTimestamp"] < kwargs["Timestamp"]
            )
        else:
            index = 0
        return {"ShardIterator": f"{ShardId}|{index}"}

    def get_records(self, ShardIterator, Limit):
        if self.fail_next:
            raise _error(self.fail_next.pop(0))
        sid, index = ShardIterator.split("|")
        shard, index = self.shards[sid], int(index)
        batch = shard["records"][index : index + Limit]
        end = index + len(batch)
        response = {
            "Records": batch,
            "MillisBehindLatest": 0 if end == len(shard["records"]) else 5,
        }
        if not (shard["closed"] and end == len(shard["records"]) and not batch):
            response["NextShardIterator"] = f"{sid}|{end}"
        return response


def test_call_backs_off_exponentially_while_throttled():
    attempts, sleeps = [], []

    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise _error("ProvisionedThroughputExceededException")
        return "ok"

    assert kinesis.call(OPTS, flaky, sleep=sleeps.append) == "ok"
    assert len(sleeps) == 2 and sleeps[0] < sleeps[1] * 2  # jittered, growing
    with pytest.raises(ClientError):
        kinesis.call(
            OPTS,
            lambda: (_ for _ in ()).throw(_error("LimitExceededException")),
            sleep=sleeps.append,
        )


def test_a_batch_stops_at_the_budget_and_its_replay_reads_exactly_the_same_records():
    fake = FakeKinesis()
    fake.add_shard("a", 25)

    first = kinesis.read_batch(OPTS, fake, "a", {"from": "trim_horizon"}, 10)
    replay = list(
        kinesis.read_range(OPTS, fake, "a", {"from": "trim_horizon"}, first.position["seq"])
    )
    rest = kinesis.read_batch(OPTS, fake, "a", first.position, 100)
    more = list(kinesis.read_range(OPTS, fake, "a", first.position, rest.position["seq"]))

    assert [r["Data"] for r in first.records] == [f"a:{i}".encode() for i in range(10)]
    assert replay == first.records
    assert len(rest.records) == 15 and more == rest.records and "closed" not in rest.position
    assert kinesis.read_batch(OPTS, fake, "a", rest.position, 100) == kinesis.ShardBatch(
        rest.position, []
    )


def test_read_range_renews_an_expired_iterator_and_retries_throttling():
    fake = FakeKinesis()
    fake.add_shard("a", 30)
    end = fake.shards["a"]["records"][-1]["SequenceNumber"]
    fake.fail_next = ["ProvisionedThroughputExceededException", "ExpiredIteratorException"]

    rows = list(
        kinesis.read_range(OPTS, fake, "a", {"from": "trim_horizon"}, end, sleep=lambda s: None)
    )

    assert [r["Data"] for r in rows] == [f"a:{i}".encode() for i in range(30)]


def test_read_range_fails_clearly_when_planned_records_are_gone():
    fake = FakeKinesis()
    fake.add_shard("a", 3, closed=True)

    with pytest.raises(SourceError, match="ended before sequence number"):
        list(kinesis.read_range(OPTS, fake, "a", {"from": "trim_horizon"}, str(10**30)))


def test_a_batch_respects_the_arrival_bound_of_a_bounded_run():
    fake = FakeKinesis()
    fake.add_shard("a", 10)
    bounded = KinesisOptions(
        stream="s", until_ms=int((T0 + timedelta(seconds=3)).timestamp() * 1000)
    )

    result = kinesis.read_batch(bounded, fake, "a", {"from": "trim_horizon"}, 100)

    assert len(result.records) == 4  # arrivals at 0, 1, 2, 3 seconds
    assert result.position == {"seq": result.records[-1]["SequenceNumber"]}


def test_children_start_only_after_all_their_parents_are_read_to_the_end():
    fake = FakeKinesis()
    fake.add_shard("p0", 2, closed=True)
    fake.add_shard("p1", 2, closed=True, base=1)
    fake.add_shard("c0", 1, parents=["p0"], base=2)
    fake.add_shard("m", 1, parents=["c0", "p1"], base=3)
    start = kinesis.initial_offset(OPTS, fake)
    assert list(start["shards"]) == ["p0", "p1"]  # roots only

    shards = fake.list_shards()["Shards"]
    p0 = kinesis.read_batch(OPTS, fake, "p0", start["shards"]["p0"], 100, closed=True)
    assert len(p0.records) == 2 and p0.position["closed"] is True
    after_p0 = kinesis.with_new_shards(
        OPTS, shards, {"shards": {**start["shards"], "p0": p0.position}}
    )
    assert list(after_p0["shards"]) == ["c0", "p0", "p1"]  # m still waits for p1 and c0

    closed_all = {"shards": {sid: {"seq": "1", "closed": True} for sid in ("p0", "p1", "c0")}}
    assert "m" in kinesis.with_new_shards(OPTS, shards, closed_all)["shards"]


def test_latest_starts_open_shards_at_the_current_time_and_skips_closed_ones():
    fake = FakeKinesis()
    fake.add_shard("old", 1, closed=True)
    fake.add_shard("new", 1, parents=["old"], base=1)
    opts = KinesisOptions(stream="s", starting_position="latest")

    offset = kinesis.initial_offset(opts, fake, now_ms=123)

    assert offset == {
        "shards": {
            "new": {"from": "at_timestamp", "ts": 123},
            "old": {"closed": True, "seq": None},
        }
    }


def test_options_round_trip_through_spark_string_options():
    opts = KinesisOptions("s", "us-east-1", "http://h:1", "latest", 50, 99, 0.5, 3)

    assert KinesisOptions.from_options({k.lower(): v for k, v in opts.to_options().items()}) == opts
    with pytest.raises(SourceError, match="stream"):
        KinesisOptions.from_options({})
