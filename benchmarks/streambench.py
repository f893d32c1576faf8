"""What the two streaming benchmarks share: the runs, timing the job's micro-batches,
latencies. stream_kafka.py and stream_kinesis.py each give a `Source`.

1. Throughput: N records are written to a fresh topic/stream, then read to the end,
   `--repeat` times each, (a) by the source's plain consumer loop and (b) by the
   streaming job with a bounded run and a fresh checkpoint (parse, dedupe, dead letters,
   Parquet, exactly-once commits), with the spec's own batch cap unless
   `--max-records-per-batch` is given. Median records per second, and the ratio.
2. Latency: a producer writes at a steady rate, by default half the job's sustained
   rate, while both consumers run; the latency of a record is (a) when the loop got it,
   (b) when the job committed the batch holding it, minus its arrival time in the
   stream. p50 and p95, against the trigger interval. The producer and the plain loop run
   in processes of their own, so neither holds the GIL the job's driver needs.

The job's throughput is quoted two ways:
- start to end: records / the whole run, query start included (checkpoint creation,
  source set-up, the first planning);
- sustained: records / the time Spark spent in the micro-batches that carried records
  (each batch's `triggerExecution`: offsets, planning, reading, processing, commits), so
  the one-off query start and the waits between triggers are left out.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pyspark.sql.streaming import StreamingQueryListener

from sluiceway import streaming
from sluiceway.demo.events import EVENT_SCHEMA, sample_records
from sluiceway.stream_spec import parse_stream_spec


@dataclass(frozen=True)
class Source:
    """A stream source for the benchmark. `where` is what its functions are given to
    find the topic or stream (picklable: the producer and the loop run in processes)."""

    loop_name: str
    create: Callable[[int], Any]  # partitions/shards -> a new, empty `where`
    send: Callable[[Any, list[Any], float | None], None]  # where, records, rate
    # where, stop, records wanted, latencies to fill -> (records read, seconds)
    loop: Callable[[Any, threading.Event, int | None, list[float] | None], tuple[int, float]]
    source_toml: Callable[[Any], str]  # where -> the spec's [source] keys, but the cap
    idle_seconds: float = 0.0  # a bounded run's wait for more data, left out of its time


def spec_text(
    source: Source, where: Any, out: Path, mode: str, max_records: int | None, interval: int
) -> str:
    """The benchmark's stream spec: the demo events, `where` read by `source`."""
    cap = f"max_records_per_batch = {max_records}" if max_records else ""
    return f"""
[pipeline]
name = "bench"
output = "{out}"
[source]
{source.source_toml(where)}
{cap}
[events]
schema = "{EVENT_SCHEMA}"
event_id = "event_id"
event_time = "event_time"
[trigger]
mode = "{mode}"
interval_seconds = {interval}
"""


def main(source: Source, doc: str, default_records: int) -> None:
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--records", type=int, default=default_records)
    parser.add_argument("--partitions", type=int, default=4, help="partitions or shards")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs (0: none)")
    parser.add_argument("--rate", type=float, help="records/s in the latency run")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the latency run")
    parser.add_argument("--interval", type=int, default=1, help="trigger interval, seconds")
    parser.add_argument("--max-records-per-batch", type=int, help="default: the spec's")
    args = parser.parse_args()
    if not args.repeat and not args.rate:
        parser.error("--repeat 0 (no throughput runs) needs --rate")

    from sluiceway.runtimes.local import build_local_session

    print(f"load averages at the start: {os.getloadavg()}")
    spark = build_local_session("sluiceway-bench", master="local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    listener = BatchTimes()
    spark.streams.addListener(listener)
    work = Path(tempfile.mkdtemp(prefix="sluiceway-bench-"))
    rate = args.rate
    if args.repeat:
        sustained = throughput(spark, listener, source, args, work)
        rate = rate or round(sustained / 2)
    latency(spark, listener, source, args, work, rate)
    print(f"load averages at the end: {os.getloadavg()}")
    spark.stop()


def throughput(spark: Any, listener: BatchTimes, source: Source, args: Any, work: Path) -> float:
    """Run the loop and the job over one backlog `args.repeat` times; the job's sustained
    median."""
    where = source.create(args.partitions)
    started = time.monotonic()
    source.send(where, sample_records(args.records, malformed_share=0.01), None)
    print(f"wrote {args.records} records in {time.monotonic() - started:.1f}s")
    loop, whole, sustained = [], [], []
    listener.durations.clear()
    for run in range(args.repeat):
        count, seconds = source.loop(where, threading.Event(), args.records, None)
        loop.append(count / seconds)
        out = work / f"throughput-{run}"
        text = spec_text(source, where, out, "available_now", args.max_records_per_batch, 1)
        report, busy = timed_run(spark, listener, parse_stream_spec(text))
        records, total = report.total("records"), report.seconds - source.idle_seconds
        whole.append(records / total)
        sustained.append(records / busy)
        batches = sum(1 for b in report.batches if b["metrics"]["records"])
        print(
            f"  run {run + 1}: loop {count} records in {seconds:.1f}s; job {records} in "
            f"{total:.1f}s, of which {busy:.1f}s in {batches} batches"
        )
    rate = print_throughput(source.loop_name, args.records, loop, whole, sustained)
    listener.print_durations()
    return rate


def latency(
    spark: Any, listener: BatchTimes, source: Source, args: Any, work: Path, rate: float
) -> None:
    where = source.create(args.partitions)
    text = spec_text(
        source, where, work / "latency", "interval", args.max_records_per_batch, args.interval
    )
    spec = parse_stream_spec(text)
    count = int(rate * args.seconds)
    spawn = multiprocessing.get_context("spawn")
    latencies = spawn.Queue()
    loop = spawn.Process(target=_timed_loop, args=(source, where, count, latencies))
    producer = spawn.Process(target=source.send, args=(where, sample_records(count, seed=2), rate))
    job_stop = streaming.StopSignal()
    listener.durations.clear()

    def start_then_stop() -> None:
        time.sleep(15)  # let the query start before the clock matters
        loop.start()
        producer.start()
        producer.join()
        time.sleep(5 + 2 * args.interval)  # drain
        job_stop.event.set()

    driver = threading.Thread(target=start_then_stop, daemon=True)
    before = _children_cpu()
    driver.start()
    report = streaming.run_spec(spark, spec, stop=job_stop)
    driver.join()
    loop_latencies = latencies.get(timeout=60)
    loop.join()
    load = (_children_cpu() - before) / report.seconds
    job = job_latencies(spark, report, spec.sink.path)
    print(f"\nlatency ({count} records at {rate:.0f}/s, interval trigger {args.interval}s)")
    print_latency(source.loop_name, loop_latencies, job, args.interval)
    print_batches(report)
    listener.print_durations()
    print(f"  the producer and the plain loop used {load:.2f} of the machine's cores meanwhile")


def _children_cpu() -> float:
    """CPU seconds of the child processes ended so far (the producer, the plain loop)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_loop(source: Source, where: Any, count: int, out: Any) -> None:
    """The plain loop in a process of its own: puts the records' latencies on `out`."""
    latencies: list[float] = []
    source.loop(where, threading.Event(), count, latencies)
    out.put(latencies)


class BatchTimes(StreamingQueryListener):
    """Each micro-batch's input rows and `triggerExecution` time, as Spark reports them."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, float]] = []
        self.durations: list[dict[str, int]] = []  # Spark's durationMs of each batch with data

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        progress = event.progress
        seconds = progress.durationMs.get("triggerExecution", 0) / 1000
        self.batches.append((progress.numInputRows, seconds))
        if progress.numInputRows:
            self.durations.append(dict(progress.durationMs))

    def print_durations(self) -> None:
        """Where Spark says the batches' time went (medians, ms)."""
        keys = sorted({key for d in self.durations for key in d})
        medians = {k: statistics.median(d.get(k, 0) for d in self.durations) for k in keys}
        print(
            "  Spark's durationMs, medians: "
            + ", ".join(f"{k} {v:.0f}" for k, v in medians.items())
        )

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        pass


def timed_run(spark: Any, listener: BatchTimes, spec: Any) -> tuple[streaming.StreamReport, float]:
    """Run the job; returns its report and the seconds spent in batches that had records."""
    listener.batches.clear()
    report = streaming.run_spec(spark, spec)
    wanted = sum(1 for b in report.batches if b["metrics"]["records"])
    deadline = time.monotonic() + 10  # progress events reach Python asynchronously
    while time.monotonic() < deadline:
        busy = [seconds for rows, seconds in listener.batches if rows]
        if len(busy) >= wanted:
            return report, sum(busy)
        time.sleep(0.2)
    raise RuntimeError(f"Spark reported {len(busy)} batches with records, expected {wanted}")


def job_latencies(spark: Any, report: streaming.StreamReport, events_path: str) -> list[float]:
    """Commit time of each record's batch minus its arrival time."""
    committed = {
        b["batch_id"]: datetime.fromisoformat(b["committed_at"]).timestamp() for b in report.batches
    }
    rows = spark.read.parquet(events_path).select("_run_id", "_arrival_time").collect()
    return [
        committed[int(r["_run_id"].rsplit(":", 1)[1])] - r["_arrival_time"].timestamp()
        for r in rows
        if int(r["_run_id"].rsplit(":", 1)[1]) in committed
    ]


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else float("nan")


def print_throughput(
    loop_name: str, records: int, loop: list[float], whole: list[float], sustained: list[float]
) -> float:
    """Print the medians of the rates (records/s) and their ratios; returns the job's
    sustained median."""
    med = statistics.median
    print(f"\nthroughput ({records} records read from a backlog; medians of {len(loop)} runs)")
    print(f"  {loop_name + ':':30}{med(loop):8.0f} records/s  {_runs(loop)}")
    print(f"  {'sluiceway job, start to end:':30}{med(whole):8.0f} records/s  {_runs(whole)}")
    print(f"  {'sluiceway job, sustained:':30}{med(sustained):8.0f} records/s  {_runs(sustained)}")
    print(
        f"  {'ratio job/loop:':30}{med(whole) / med(loop):8.2f} start to end, "
        f"{med(sustained) / med(loop):.2f} sustained"
    )
    return med(sustained)


def print_latency(loop_name: str, loop: list[float], job: list[float], interval: float) -> None:
    for name, values in ((loop_name, loop), ("sluiceway job", job)):
        print(
            f"  {name + ':':28}p50 {pct(values, 50):6.2f}s  p95 {pct(values, 95):6.2f}s  "
            f"({len(values)} records)"
        )
    print(f"  {'job p95 / trigger interval:':28}{pct(job, 95) / interval:6.2f}")


def print_batches(report: streaming.StreamReport) -> None:
    """How the batches of a run went: sizes, times, and the ones that compacted."""
    batches = [b for b in report.batches if b["metrics"]["records"]]
    if not batches:
        return
    sizes = [b["metrics"]["records"] for b in batches]
    seconds = [b["metrics"]["seconds"] for b in batches]
    compacting = [b["metrics"]["seconds"] for b in batches if b.get("deleted")]
    print(
        f"  {len(batches)} batches: records median {statistics.median(sizes):.0f} "
        f"(max {max(sizes)}); seconds median {statistics.median(seconds):.2f} "
        f"(max {max(seconds):.2f}); {len(compacting)} compacted small files"
        + (f" (median {statistics.median(compacting):.2f}s)" if compacting else "")
    )


def _runs(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.0f}" for v in values) + ")"
