"""The `sluiceway` command: run pipelines, inspect and reset their state, fetch jars, demo."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sluiceway.errors import SluicewayError
from sluiceway.logs import configure_logging


def _load(args: argparse.Namespace):  # -> PipelineSpec
    from sluiceway.spec import load_spec

    return load_spec(args.spec, output_root=args.output, state_location=args.state)


def print_summary(report) -> None:  # report: RunReport
    """The end-of-run table: one line per dataset, then totals."""
    rows = [("table", "status", "read", "written", "quarantined", "partitions", "seconds", "path")]
    for t in report.tables:  # a run report's datasets
        rows.append(
            (
                t.name,
                t.status,
                str(t.rows_read),
                str(t.rows_written),
                str(t.rows_quarantined),
                str(len(t.partitions)),
                f"{t.seconds:.1f}",
                t.path,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    total = sum(t.rows_written for t in report.tables)
    print(
        f"run {report.run_id}: {report.status}, {len(report.tables)} datasets, "
        f"{total} rows written, {report.seconds:.1f}s"
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from sluiceway import pipeline
    from sluiceway.runtimes.local import build_local_session

    spec = _load(args)
    started = time.monotonic()
    print(f"==> {spec.name}: starting Spark", flush=True)
    spark = build_local_session(f"sluiceway-{spec.name}", master=args.master)
    spark.sparkContext.setLogLevel("ERROR")
    print(
        f"==> {spec.name}: Spark {spark.version} up in {time.monotonic() - started:.1f}s",
        flush=True,
    )

    def progress(item) -> None:
        print(
            f"  {item.name}: {item.status}, {item.rows_written} rows, "
            f"{len(item.partitions)} partitions, {item.seconds:.1f}s",
            flush=True,
        )

    only = [t for t in args.tables.split(",") if t] if args.tables else None
    try:
        report = pipeline.run(
            spark, spec, full_refresh=args.full_refresh, only=only, on_table=progress
        )
    finally:
        spark.stop()
    print(f"==> {spec.name}: summary (output {spec.output_root}, state {spec.state_location})")
    print_summary(report)
    return 0


def _cmd_state_show(args: argparse.Namespace) -> int:
    from sluiceway.state import open_state_store

    spec = _load(args)
    store = open_state_store(spec.state_location)
    state = {t.name: store.read_json(f"{spec.name}/tables/{t.name}.json") for t in spec.tables}
    state["latest_run"] = store.read_json(f"{spec.name}/runs/latest.json")
    print(json.dumps(state, indent=2, sort_keys=True))
    return 0


def _cmd_state_reset(args: argparse.Namespace) -> int:
    from sluiceway.state import open_state_store

    spec = _load(args)
    if not args.all and not args.table:
        raise SluicewayError("state reset: name --table T (repeatable) or --all")
    names = [t.name for t in spec.tables] if args.all else args.table
    for name in names:
        spec.table(name)  # unknown names fail before anything is deleted
    store = open_state_store(spec.state_location)
    for name in names:
        removed = store.delete(f"{spec.name}/tables/{name}.json")
        print(
            f"  {name}: "
            + ("watermark removed (next run is a full refresh)" if removed else "no watermark")
        )
    return 0


def _cmd_jars_fetch(args: argparse.Namespace) -> int:
    from sluiceway import jars

    for path in jars.fetch_jars():
        print(f"  {path}")
    return 0


def _cmd_jars_path(args: argparse.Namespace) -> int:
    from sluiceway import jars

    print(",".join(str(p) for p in jars.local_jar_paths()))
    return 0


def _demo_conninfo(args: argparse.Namespace) -> str:
    import os

    return (
        f"host={args.host} port={args.port} dbname={args.database} user={args.user} "
        f"password={os.environ.get(args.password_env, '')}"
    )


def _cmd_demo_load(args: argparse.Namespace) -> int:
    from sluiceway.demo import tpch_db

    started = time.monotonic()
    data_dir = Path(args.data_dir)
    print(f"==> generating TPC-H scale factor {args.scale} with tpchgen-cli", flush=True)
    tpch_db.generate(args.scale, data_dir)
    print(f"==> loading into {args.host}:{args.port}/{args.database}", flush=True)
    counts = tpch_db.load(_demo_conninfo(args), args.scale, data_dir)
    for table, count in counts.items():
        print(f"  {table}: {count} rows")
    print(f"==> loaded in {time.monotonic() - started:.1f}s")
    return 0


def _cmd_demo_mutate(args: argparse.Namespace) -> int:
    from sluiceway.demo import tpch_db

    summary = tpch_db.mutate(
        _demo_conninfo(args), args.new_orders, args.updated_orders, seed=args.seed
    )
    print(
        f"==> {len(summary.new_order_keys)} new orders ({summary.new_lineitems} lineitems), "
        f"{len(summary.updated_order_keys)} updated orders ({summary.updated_lineitems} lineitems) "
        f"at {summary.at.isoformat()}"
    )
    return 0


def _cmd_stream(args: argparse.Namespace) -> int:
    from sluiceway import streaming
    from sluiceway.runtimes.local import build_local_session
    from sluiceway.stream_spec import load_stream_spec

    spec = load_stream_spec(args.spec, output_root=args.output, checkpoint=args.checkpoint)
    mode = "available_now" if args.available_now else spec.trigger.mode
    streaming.preflight(spec)  # a missing stream or a dead endpoint fails before Spark starts
    stop = streaming.StopSignal()
    stop.install()  # SIGTERM: finish the running micro-batch, then stop
    print(f"==> {spec.name}: starting Spark ({mode})", flush=True)
    spark = build_local_session(f"sluiceway-{spec.name}", master=args.master)
    spark.sparkContext.setLogLevel("ERROR")

    def progress(record: dict) -> None:
        m = record["metrics"]
        print(
            f"  batch {record['batch_id']}: {m['records']} records, {m['events']} events, "
            f"{m['dead_letters']} dead letters, {len(record['files'])} files, "
            f"{m.get('seconds', 0):.1f}s",
            flush=True,
        )

    try:
        report = streaming.run_spec(spark, spec, mode=mode, stop=stop, on_batch=progress)
    finally:
        spark.stop()
    print(
        f"==> {spec.name}: {report.status}, {len(report.batches)} batches, "
        f"{report.total('events')} events, {report.total('dead_letters')} dead letters, "
        f"{report.seconds:.1f}s (output {spec.sink.path}, dead letters "
        f"{spec.sink.dead_letter_path}, checkpoint {spec.trigger.checkpoint})"
    )
    return 0


def _cmd_produce(args: argparse.Namespace) -> int:
    import os

    from sluiceway.demo import events
    from sluiceway.sources.kinesis import KinesisOptions

    try:
        records = events.sample_records(
            args.count,
            malformed_share=args.malformed,
            duplicate_share=args.duplicates,
            seed=args.seed,
        )
    except ValueError as exc:
        raise SluicewayError(f"produce: {exc}") from exc
    bad = sum(1 for r in records if r.event_id is None)
    if args.to_dir:
        paths = events.write_capture(args.to_dir, records)
        print(f"==> wrote {len(records)} records ({bad} malformed) in {len(paths)} files")
        return 0
    if not args.stream:
        raise SluicewayError("produce: give --stream NAME (or --to-dir DIR)")
    endpoint = os.environ.get(args.endpoint_env) if args.endpoint_env else None
    opts = KinesisOptions(stream=args.stream, region=args.region, endpoint=endpoint)
    if args.create:
        events.create_stream(opts, args.create)
    result = events.put_records(opts, records, rate=args.rate)
    print(
        f"==> put {result.records} records ({bad} malformed) into {args.stream} in "
        f"{result.seconds:.1f}s ({result.records / max(result.seconds, 1e-3):.0f}/s)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sluiceway", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def spec_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("spec", help="pipeline spec (TOML)")
        p.add_argument("--output", help="override the spec's output root (path or s3:// URI)")
        p.add_argument("--state", help="override the spec's state location")

    run_p = sub.add_parser("run", help="run a pipeline with a local Spark")
    spec_args(run_p)
    run_p.add_argument(
        "--full-refresh", action="store_true", help="ignore watermarks, replace outputs"
    )
    run_p.add_argument("--tables", help="comma-separated tables/outputs to run (default: all)")
    run_p.add_argument("--master", help="Spark master (default local[*])")
    run_p.set_defaults(func=_cmd_run)

    state_p = sub.add_parser("state", help="show or reset a pipeline's watermarks")
    state_sub = state_p.add_subparsers(dest="state_command", required=True)
    show_p = state_sub.add_parser("show", help="print watermarks and the latest run report")
    spec_args(show_p)
    show_p.set_defaults(func=_cmd_state_show)
    reset_p = state_sub.add_parser(
        "reset", help="forget watermarks: the next run re-reads everything"
    )
    spec_args(reset_p)
    reset_p.add_argument("--table", action="append", help="table to reset (repeatable)")
    reset_p.add_argument("--all", action="store_true", help="reset every table")
    reset_p.set_defaults(func=_cmd_state_reset)

    jars_p = sub.add_parser("jars", help="the pinned JVM jars")
    jars_sub = jars_p.add_subparsers(dest="jars_command", required=True)
    jars_sub.add_parser("fetch", help="fetch and verify the pinned jars").set_defaults(
        func=_cmd_jars_fetch
    )
    jars_sub.add_parser(
        "path", help="print the cached jars, comma-separated (for --jars)"
    ).set_defaults(func=_cmd_jars_path)

    stream_p = sub.add_parser("stream", help="run a streaming spec with a local Spark")
    stream_p.add_argument("spec", help="stream spec (TOML)")
    stream_p.add_argument("--output", help="override the spec's output root")
    stream_p.add_argument("--checkpoint", help="override the spec's checkpoint location")
    stream_p.add_argument(
        "--available-now", action="store_true", help="process what is there, then stop"
    )
    stream_p.add_argument("--master", help="Spark master (default local[*])")
    stream_p.set_defaults(func=_cmd_stream)

    produce_p = sub.add_parser("produce", help="put sample events into a Kinesis stream")
    produce_p.add_argument("--stream", help="stream name")
    produce_p.add_argument("--count", type=int, default=1000, help="records to put")
    produce_p.add_argument("--rate", type=float, help="records per second (default: as fast)")
    produce_p.add_argument("--malformed", type=float, default=0.0, help="share, 0..1")
    produce_p.add_argument("--duplicates", type=float, default=0.0, help="share, 0..1")
    produce_p.add_argument("--seed", type=int, default=0)
    produce_p.add_argument("--region", help="AWS region (default: boto3's)")
    produce_p.add_argument(
        "--endpoint-env",
        default="SLUICEWAY_KINESIS_ENDPOINT",
        help="environment variable holding an endpoint URL, if set",
    )
    produce_p.add_argument("--create", type=int, metavar="SHARDS", help="create the stream")
    produce_p.add_argument("--to-dir", help="write capture files here instead of a stream")
    produce_p.set_defaults(func=_cmd_produce)

    demo_p = sub.add_parser("demo", help="TPC-H demo database tools")
    demo_sub = demo_p.add_subparsers(dest="demo_command", required=True)

    def db_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=55432)
        p.add_argument("--database", default="tpch")
        p.add_argument("--user", default="sluiceway")
        p.add_argument(
            "--password-env",
            default="SLUICEWAY_TPCH_PASSWORD",
            help="environment variable holding the password",
        )

    load_p = demo_sub.add_parser("load", help="generate TPC-H with tpchgen-cli and load PostgreSQL")
    db_args(load_p)
    load_p.add_argument("--scale", type=float, default=0.01)
    load_p.add_argument("--data-dir", default=".cache/tpch")
    load_p.set_defaults(func=_cmd_demo_load)
    mutate_p = demo_sub.add_parser("mutate", help="insert new and update existing orders")
    db_args(mutate_p)
    mutate_p.add_argument("--new-orders", type=int, default=100)
    mutate_p.add_argument("--updated-orders", type=int, default=50)
    mutate_p.add_argument("--seed", type=int, default=0)
    mutate_p.set_defaults(func=_cmd_demo_mutate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args.func(args))
    except SluicewayError as exc:
        print(f"sluiceway: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
