"""The Glue streaming job's path (runtimes.glue_streaming.run_on_glue) end to end, on a
stand-in for Glue's GlueContext: its Kinesis source is replaced by a file stream with the
schema Glue's Kinesis source gives (one string column "$json$data_infer_schema$_temporary$"
with the payload, and "__src_timestamp"; no shard or sequence number), and its forEachBatch
by Structured Streaming's foreachBatch with an available-now trigger. Everything after the
source is the job's own code: the mapping, parse, dedupe, dead letters and the sink. The
stream the spec names exists on kinesalite, for the job's start-up check."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sluiceway.demo.events import sample_records
from sluiceway.errors import SourceError
from sluiceway.runtimes.glue_streaming import (
    GLUE_ARRIVAL_COLUMN,
    GLUE_PAYLOAD_COLUMNS,
    run_on_glue,
    with_raw_columns,
)
from sluiceway.stream_spec import load_stream_spec

from .conftest import ids, kinesis_source, read_dataset, write_stream_spec


class GlueKinesisStandIn:
    """GlueContext's create_data_frame.from_options(connection_type="kinesis") and
    forEachBatch, over payload lines in `payloads` (one file per Kinesis fetch)."""

    def __init__(self, spark, payloads: Path) -> None:
        self.spark_session = spark
        self.options: dict[str, str] = {}
        self.create_data_frame = SimpleNamespace(from_options=self._from_options)
        self._payloads = payloads

    def _from_options(self, connection_type: str, connection_options: dict[str, str]):
        from pyspark.sql import functions as F

        assert connection_type == "kinesis"
        self.options = connection_options
        lines = self.spark_session.readStream.option("maxFilesPerTrigger", 1).text(
            str(self._payloads)
        )
        return lines.select(
            F.col("value").alias(GLUE_PAYLOAD_COLUMNS[0]),
            F.current_timestamp().alias(GLUE_ARRIVAL_COLUMN),
        )

    def forEachBatch(self, frame, batch_function, options: dict[str, Any]) -> None:  # noqa: N802
        query = (
            frame.writeStream.foreachBatch(batch_function)
            .option("checkpointLocation", options["checkpointLocation"])
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination()


def test_glue_kinesis_records_land_once_each_and_bad_ones_as_dead_letters(
    spark, tmp_path, new_stream
):
    records = sample_records(120, malformed_share=0.1, duplicate_share=0.05, seed=11)
    payloads = tmp_path / "payloads"
    payloads.mkdir()
    for part in range(3):  # three fetches, three micro-batches
        chunk = records[part * 40 : (part + 1) * 40]
        text = "\n".join(r.data.decode() for r in chunk) + "\n"
        (payloads / f"fetch-{part}.txt").write_text(text, encoding="utf-8")
    spec = load_stream_spec(write_stream_spec(tmp_path, kinesis_source(new_stream(1))))
    glue = GlueKinesisStandIn(spark, payloads)

    run_on_glue(glue, spec)

    assert (glue.options["classification"], glue.options["inferSchema"]) == ("json", "true")
    out = tmp_path / "out"
    valid = {r.event_id for r in records if r.kind == "valid"}
    landed = ids(read_dataset(spark, str(out / "events")))
    assert sorted(landed) == sorted(valid)  # once each: the duplicates dropped by event id
    malformed = [r for r in records if r.kind not in ("valid", "duplicate")]
    dead = read_dataset(spark, str(out / "_dead_letters"))
    assert dead is not None and dead.count() == len(malformed) == 12
    # Payloads kept as given (two identical malformed payloads stay two dead letters).
    got = sorted(bytes(r["payload"]) for r in dead.select("payload").collect())
    assert got == sorted(r.data for r in malformed)


def test_a_glue_source_without_the_payload_column_is_one_clear_error(spark):
    raw = spark.createDataFrame([("x",)], "data_col string")
    with pytest.raises(SourceError, match=r"without the payload column"):
        with_raw_columns(raw, "clicks")
