"""The `sluiceway` command: run pipelines, inspect and reset their state, fetch jars, demo."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from sluiceway.errors import SluicewayError
from sluiceway.logs import configure_logging
from sluiceway.report import (
    print_batch_progress,
    print_error,
    print_maintained,
    print_stream_summary,
    print_summary,
    print_table_progress,
)
from sluiceway.spec import DEFAULT_CATALOG_TYPES, ICEBERG_CATALOG_HELP


def _load(args: argparse.Namespace):  # -> PipelineSpec
    from sluiceway.spec import load_spec

    return load_spec(
        args.spec,
        output_root=args.output,
        state_location=args.state,
        iceberg_catalog=args.iceberg_catalog,
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from sluiceway import pipeline
    from sluiceway.runtimes.local import build_local_session

    spec = _load(args)
    pipeline.check(spec)  # a name that does not resolve fails before Spark starts
    started = time.monotonic()
    print(f"==> {spec.name}: starting Spark", flush=True)
    spark = build_local_session(f"sluiceway-{spec.name}", master=args.master)
    spark.sparkContext.setLogLevel("ERROR")
    print(
        f"==> {spec.name}: Spark {spark.version} up in {time.monotonic() - started:.1f}s",
        flush=True,
    )

    only = [t for t in args.tables.split(",") if t] if args.tables else None
    try:
        result = pipeline.run(
            spark, spec, full_refresh=args.full_refresh, only=only, on_table=print_table_progress
        )
    finally:
        spark.stop()
    print(f"==> {spec.name}: summary (output {spec.output_root}, state {spec.state_location})")
    print_summary(result)
    return 0


def _cmd_maintain(args: argparse.Namespace) -> int:
    from sluiceway.maintenance import maintain
    from sluiceway.runtimes.local import build_local_session

    spec = _load(args)
    print(f"==> {spec.name}: starting Spark", flush=True)
    spark = build_local_session(f"sluiceway-maintain-{spec.name}", master=args.master)
    spark.sparkContext.setLogLevel("ERROR")
    only = [t for t in args.tables.split(",") if t] if args.tables else None
    try:
        maintain(spark, spec, only=only, on_item=print_maintained)
    finally:
        spark.stop()
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


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def _cmd_init(args: argparse.Namespace) -> int:
    from sluiceway.init_spec import InitRequest, init_spec
    from sluiceway.spec_guess import Settings

    result = init_spec(
        InitRequest(
            engine=args.engine,
            host=args.host,
            port=args.port,
            database=args.database,
            user=args.user,
            password_env=args.password_env,
            secret_id=args.secret_id,
            schema=args.schema,
            tables=_names(args.tables),
            exclude=_names(args.exclude),
            output=args.output,
            name=args.name,
            settings=Settings(
                max_connections=args.max_connections,
                partition_mb=args.partition_mb,
                partition_rows=args.partition_rows,
            ),
        )
    )
    sys.stdout.write(result.text)
    sys.stdout.flush()
    print(result.summary, file=sys.stderr, flush=True)  # stdout is the spec
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from sluiceway.state import open_state_store, read_run_reports
    from sluiceway.view import render_page

    started = time.monotonic()
    spec = _load(args)
    runs = read_run_reports(open_state_store(spec.state_location), spec.name, args.runs)
    page = render_page(spec, runs)
    out = Path(args.out)
    try:
        out.write_text(page.html, encoding="utf-8")
    except OSError as exc:
        raise SluicewayError(f"view: cannot write {out}: {exc.strerror}") from exc
    print(
        f"view: {out}: {page.nodes} nodes, {page.charts} charts from {len(runs)} runs "
        f"(state {spec.state_location}), {len(page.html) / 1024:.0f} KB, "
        f"{time.monotonic() - started:.1f}s",
        flush=True,
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


def _cmd_jars_classpath(args: argparse.Namespace) -> int:
    import os

    from sluiceway import jars

    print(os.pathsep.join(str(p) for p in (*jars.s3a_jar_paths(), *jars.iceberg_jar_paths())))
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


def _cmd_deliver(args: argparse.Namespace) -> int:
    return _cmd_stream(args, deliver=True)


def _cmd_stream(args: argparse.Namespace, deliver: bool = False) -> int:
    from sluiceway import streaming
    from sluiceway.errors import SpecError
    from sluiceway.runtimes.local import build_local_session
    from sluiceway.stream_spec import load_stream_spec

    spec = load_stream_spec(args.spec, output_root=args.output, checkpoint=args.checkpoint)
    if deliver and spec.delivery is None:
        raise SpecError(
            "is required by `sluiceway deliver` (a plain stream spec: `sluiceway stream`)",
            where=f"{args.spec}: delivery",
        )
    mode = "available_now" if args.available_now else spec.trigger.mode
    if spec.delivery is not None:
        print(
            f"==> {spec.name}: delivering {spec.delivery.format} by "
            f"{spec.delivery.prefix_by} every {spec.trigger.interval_seconds}s, at most "
            f"{spec.source.max_records_per_batch} records a batch",
            flush=True,
        )
    streaming.preflight(spec)  # a bad name, a missing stream, a dead endpoint: before Spark
    stop = streaming.StopSignal()
    stop.install()  # SIGTERM: finish the running micro-batch, then stop
    print(f"==> {spec.name}: starting Spark ({mode})", flush=True)
    msk_iam = spec.source.kafka is not None and spec.source.kafka.msk_iam
    spark = build_local_session(f"sluiceway-{spec.name}", master=args.master, msk_iam=msk_iam)
    spark.sparkContext.setLogLevel("ERROR")

    try:
        result = streaming.run_spec(
            spark, spec, mode=mode, stop=stop, on_batch=print_batch_progress
        )
    finally:
        spark.stop()
    print_stream_summary(spec, result)
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
    if args.topic:
        return _produce_kafka(args, records, bad)
    if not args.stream:
        raise SluicewayError("produce: give --stream NAME, --topic NAME or --to-dir DIR")
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


def _produce_kafka(args: argparse.Namespace, records: list, bad: int) -> int:
    import os

    from sluiceway.demo import events

    if args.stream:
        raise SluicewayError("produce: give --stream or --topic, not both")
    bootstrap = os.environ.get(args.bootstrap_env or "", "") or args.bootstrap_servers
    if not bootstrap:
        raise SluicewayError(
            f"produce: no Kafka brokers: ${args.bootstrap_env} is not set and no "
            "--bootstrap-servers given"
        )
    if args.create:
        events.create_topic(bootstrap, args.topic, args.create)
    result = events.send_to_kafka(bootstrap, args.topic, records, rate=args.rate)
    print(
        f"==> sent {result.records} records ({bad} malformed) to {args.topic} in "
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
        p.add_argument(
            "--iceberg-catalog", choices=DEFAULT_CATALOG_TYPES, help=ICEBERG_CATALOG_HELP
        )

    run_p = sub.add_parser("run", help="run a pipeline with a local Spark")
    spec_args(run_p)
    run_p.add_argument(
        "--full-refresh", action="store_true", help="ignore watermarks, replace outputs"
    )
    run_p.add_argument("--tables", help="comma-separated tables/outputs to run (default: all)")
    run_p.add_argument("--master", help="Spark master (default local[*])")
    run_p.set_defaults(func=_cmd_run)

    maintain_p = sub.add_parser(
        "maintain",
        help="compact, expire snapshots and remove orphan files of a pipeline's Iceberg tables",
    )
    spec_args(maintain_p)
    maintain_p.add_argument("--tables", help="comma-separated tables/outputs (default: all)")
    maintain_p.add_argument("--master", help="Spark master (default local[*])")
    maintain_p.set_defaults(func=_cmd_maintain)

    add_init_command(sub)
    view_p = sub.add_parser(
        "view", help="one self-contained HTML page: the pipeline as a graph and its last runs"
    )
    spec_args(view_p)
    view_p.add_argument("--out", default="pipeline.html", help="the page (default pipeline.html)")
    view_p.add_argument("--runs", type=int, default=20, help="last runs to chart (default 20)")
    view_p.set_defaults(func=_cmd_view)

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
    jars_sub.add_parser(
        "classpath", help="print the cached S3A jars for a local driver (--driver-class-path)"
    ).set_defaults(func=_cmd_jars_classpath)

    for command, what, func in (
        ("stream", "run a streaming spec with a local Spark", _cmd_stream),
        ("deliver", "run a stream spec's [delivery] preset (Firehose-style)", _cmd_deliver),
    ):
        stream_p = sub.add_parser(command, help=what)
        stream_p.add_argument("spec", help="stream spec (TOML)")
        stream_p.add_argument("--output", help="override the spec's output root")
        stream_p.add_argument("--checkpoint", help="override the spec's checkpoint location")
        stream_p.add_argument(
            "--available-now", action="store_true", help="process what is there, then stop"
        )
        stream_p.add_argument("--master", help="Spark master (default local[*])")
        stream_p.set_defaults(func=func)

    produce_p = sub.add_parser(
        "produce", help="put sample events into a Kinesis stream or a Kafka topic"
    )
    produce_p.add_argument("--stream", help="Kinesis stream name")
    produce_p.add_argument("--topic", help="Kafka topic name")
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
    produce_p.add_argument(
        "--bootstrap-env",
        default="SLUICEWAY_KAFKA_BOOTSTRAP",
        help="environment variable holding the Kafka brokers (host:port,...), if set",
    )
    produce_p.add_argument("--bootstrap-servers", help="Kafka brokers, when the variable is unset")
    produce_p.add_argument(
        "--create",
        type=int,
        metavar="N",
        help="create the stream (N shards) or topic (N partitions)",
    )
    produce_p.add_argument("--to-dir", help="write capture files here instead of a stream")
    produce_p.set_defaults(func=_cmd_produce)

    demo_p = sub.add_parser("demo", help="TPC-H demo database tools")
    demo_sub = demo_p.add_subparsers(dest="demo_command", required=True)

    def db_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=25432)
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
    add_deploy_commands(sub)
    add_iam_command(sub)
    return parser


def add_init_command(sub) -> None:  # sub: the top-level subparsers
    p = sub.add_parser(
        "init",
        allow_abbrev=False,  # `--password=...` must not pass for `--password-env`
        help="print a pipeline spec (TOML) guessed from a database's catalog",
        description="Reads the catalog and planner statistics (never the rows) and prints a "
        "spec whose every guess is commented. The password comes from --password-env or "
        "--secret-id, never from the command line.",
    )
    p.add_argument("--engine", required=True, choices=["postgresql", "mysql"])
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--database")
    p.add_argument("--user")
    p.add_argument("--password-env", help="environment variable holding the password")
    p.add_argument("--secret-id", help="Secrets Manager secret (RDS JSON) with the credentials")
    p.add_argument("--schema", help="PostgreSQL schema (default public)")
    p.add_argument("--tables", help="comma-separated tables/views to include (default: all)")
    p.add_argument("--exclude", help="comma-separated tables/views to leave out")
    p.add_argument("--output", help="the spec's output root (default out/<name>)")
    p.add_argument("--name", help="pipeline name (default: the database's)")
    p.add_argument("--max-connections", type=int, default=4, help="per table (default 4)")
    p.add_argument(
        "--partition-mb", type=float, default=128.0, help="MiB of rows per Spark partition"
    )
    p.add_argument(
        "--partition-rows",
        type=int,
        default=1_000_000,
        help="tables with at least this many rows get partition_by on a date (default 1000000)",
    )
    p.set_defaults(func=_cmd_init)


# ---------------------------------------------------------------------------------------
# package, deploy glue, submit emr: the artifact set and the AWS runtimes (sluiceway.deploy)


def aws_clients():  # -> sluiceway.deploy.aws.AwsClients; tests replace this
    from sluiceway.deploy.aws import AwsClients

    return AwsClients()


def _kb(size: int) -> str:
    return f"{size / 1024:,.0f} KB" if size >= 1024 else f"{size} B"


def _print_artifacts(artifacts) -> None:  # artifacts: ArtifactSet
    built_for = artifacts.built_for
    platform = f"for {built_for.describe()}" if built_for else "for any platform"
    print(
        f"==> {artifacts.pipeline} ({artifacts.kind}): sluiceway {artifacts.version} build "
        f"{artifacts.build} {platform} in {artifacts.root}"
    )
    width = max(len(f.path) for f in artifacts.files)
    for f in artifacts.files:
        print(f"  {f.role:<15} {f.path:<{width}}  {_kb(f.bytes):>9}  sha256 {f.sha256[:16]}")


def _artifacts_for(args: argparse.Namespace, target: str | None = None):  # -> ArtifactSet
    """The set given with --artifacts, or the spec packaged now (for `target`, if any)."""
    from sluiceway.deploy.package import build_artifacts, load_artifacts

    if (args.spec is None) == (args.artifacts is None):
        raise SluicewayError(f"{args.command}: give a pipeline spec or --artifacts DIR (not both)")
    if args.artifacts is not None:
        artifacts = load_artifacts(args.artifacts)
        print(f"==> artifact set {artifacts.root}: {len(artifacts.files)} files, checksums ok")
        return artifacts
    artifacts = build_artifacts(args.spec, args.out, target)
    _print_artifacts(artifacts)
    return artifacts


class _Progress:
    """State transitions as one live line on a terminal, one line each otherwise."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.states: list[str] = []
        self.live = sys.stdout.isatty()

    def __call__(self, state: str, elapsed: float) -> None:
        self.states.append(state)
        stamp = f"{int(elapsed) // 60}m{int(elapsed) % 60:02d}s"
        if self.live:
            print(f"\r\x1b[K  {self.label}: {' -> '.join(self.states)}  ({stamp})", end="")
        else:
            print(f"  {self.label}: {' -> '.join(self.states)}  ({stamp})")
        sys.stdout.flush()

    def done(self) -> None:
        if self.live and self.states:
            print()


def _print_failure(what: str, result, logs: list[tuple[str, list[str] | None]]) -> int:
    """The run's end state and message, then the tail of each (log location, lines)."""
    print(f"==> {what} {result.state} after {result.seconds:.0f}s", file=sys.stderr)
    if result.message:
        print(f"  {result.message}", file=sys.stderr)
    for where, tail in logs:
        if tail:
            print(f"--- last {len(tail)} lines of {where} ---", file=sys.stderr)
            for line in tail:
                print(f"  {line}", file=sys.stderr)
        else:
            print(f"  (no log at {where} yet)", file=sys.stderr)
    return 1


def _cmd_package(args: argparse.Namespace) -> int:
    from sluiceway.deploy.package import build_artifacts

    _print_artifacts(build_artifacts(args.spec, args.out, args.target))
    return 0


def _network(args: argparse.Namespace):  # -> sluiceway.deploy.network.Network
    from sluiceway.deploy.network import Network

    return Network(tuple(args.subnet or ()), tuple(args.security_group or ()))


def _cmd_deploy_glue(args: argparse.Namespace) -> int:
    from sluiceway.deploy import glue

    if args.wait and not args.run:
        raise SluicewayError("deploy glue: --wait needs --run")
    # A spec is packaged for the job's Glue version unless --target says otherwise.
    target = args.target or (f"glue-{args.glue_version or '5.1'}" if args.spec else None)
    options = glue.GlueJobOptions(
        job_name=args.job_name,
        role=args.role,
        bucket=args.bucket,
        prefix=args.prefix,
        glue_version=args.glue_version or "5.1",
        worker_type=args.worker_type,
        workers=args.workers,
        timeout_minutes=args.timeout_minutes,
        max_retries=args.max_retries,
        connections=tuple(args.connection or ()),
        output=args.output,
        state=args.state,
        checkpoint=args.checkpoint,
        network=_network(args),
        network_connection=args.network_connection,
    )
    options.validate()  # bad options fail before anything is built or uploaded
    artifacts = _artifacts_for(args, target)
    stream = artifacts.kind == "stream"
    if stream and args.full_refresh:
        raise SluicewayError("deploy glue: --full-refresh: a stream resumes from its checkpoint")
    built_for = artifacts.built_for
    if args.glue_version is None and built_for is not None and built_for.glue_version:
        options = replace(options, glue_version=built_for.glue_version)
    clients = aws_clients()
    deployment = glue.deploy_glue_job(clients, artifacts, options)
    up = deployment.uploaded
    kind = "streaming job" if stream else "job"
    print(
        f"==> Glue {kind} {deployment.job_name} {deployment.action}: Glue {options.glue_version} "
        f"({glue.GLUE_VERSIONS[options.glue_version]}), {options.workers} x {options.worker_type}"
    )
    print(
        f"  artifacts s3://{up.bucket}/{up.prefix}/ ({up.uploaded} new, {up.unchanged} unchanged)"
    )
    print(f"  script {deployment.definition['Command']['ScriptLocation']}")
    print(f"  spec {deployment.definition['DefaultArguments']['--spec']}")
    if not args.run:
        return 0
    run_id = glue.start_glue_run(clients, deployment.job_name, full_refresh=args.full_refresh)
    print(f"==> started run {run_id}")
    if not args.wait:
        return 0
    progress = _Progress(f"run {run_id}")
    result = glue.wait_glue_run(
        clients,
        deployment.job_name,
        run_id,
        progress,
        poll_seconds=args.poll_seconds,
        max_wait_seconds=(options.timeout_minutes or 120) * 60 + 1800,
        # A stream runs until it is stopped: follow it until it runs.
        until=(*glue.RUN_STATES_DONE, "RUNNING") if stream else glue.RUN_STATES_DONE,
    )
    progress.done()
    if result.state == "RUNNING":
        print(
            f"==> stream run {run_id} RUNNING after {result.seconds:.0f}s; stop it with "
            f"`aws glue batch-stop-job-run --job-name {deployment.job_name} "
            f"--job-run-ids {run_id}`"
        )
        return 0
    if result.state == "SUCCEEDED":
        print(f"==> run {run_id} SUCCEEDED in {result.seconds:.0f}s")
        return 0
    where = f"CloudWatch Logs {glue.ERROR_LOG_GROUP}/{run_id}"
    return _print_failure(f"run {run_id}", result, [(where, glue.glue_log_tail(clients, run_id))])


def _cmd_submit_emr(args: argparse.Namespace) -> int:
    from sluiceway.deploy import emr

    options = emr.EmrSubmitOptions(
        application=args.application,
        role=args.role,
        bucket=args.bucket,
        prefix=args.prefix,
        create_application=args.create_application,
        spark=args.spark,
        release_label=args.release_label,
        python=args.python,
        timeout_minutes=args.timeout_minutes,
        full_refresh=args.full_refresh,
        client_token=args.client_token,
        spark_conf=emr.parse_conf(args.conf or ()),
        output=args.output,
        state=args.state,
        network=_network(args),
        checkpoint=args.checkpoint,
        reader=args.reader,
    )
    options.validate()
    artifacts = _artifacts_for(args, args.target)
    stream = artifacts.kind == "stream"
    clients = aws_clients()
    submission = emr.submit_emr_job(clients, artifacts, options)
    app = submission.application
    up = submission.uploaded
    print(
        f"==> EMR Serverless application {app.id} ({app.name}, {app.release_label})"
        + (": created" if app.created else "")
    )
    print(
        f"  artifacts s3://{up.bucket}/{up.prefix}/ ({up.uploaded} new, {up.unchanged} unchanged)"
    )
    mode = "STREAMING job run" if stream else "job run"
    print(f"==> started {mode} {submission.run_id} (client token {submission.client_token})")
    print(
        f"  to retry this submission without a second run: --client-token {submission.client_token}"
    )
    if args.no_wait:
        return 0
    progress = _Progress(f"job run {submission.run_id}")
    result = emr.wait_emr_run(
        clients,
        app.id,
        submission.run_id,
        progress,
        poll_seconds=args.poll_seconds,
        max_wait_seconds=(options.timeout_minutes or 120) * 60 + 1800,
        # A stream runs until it is cancelled: follow it until it runs.
        until=(*emr.RUN_STATES_DONE, "RUNNING") if stream else emr.RUN_STATES_DONE,
    )
    progress.done()
    if result.state == "RUNNING":
        print(
            f"==> stream job run {submission.run_id} RUNNING after {result.seconds:.0f}s; stop "
            f"it with `aws emr-serverless cancel-job-run --application-id {app.id} "
            f"--job-run-id {submission.run_id}`"
        )
        return 0
    if result.state == "SUCCESS":
        print(f"==> job run {submission.run_id} SUCCESS in {result.seconds:.0f}s")
        return 0
    stderr_uri = emr.driver_log_uri(options.log_uri, app.id, submission.run_id, "stderr")
    stdout_uri = emr.driver_log_uri(options.log_uri, app.id, submission.run_id, "stdout")
    logs = [(stderr_uri, emr.driver_log_tail(clients, stderr_uri, delay_seconds=args.poll_seconds))]
    # spark-submit's Python runner merges the Python driver's stderr into its stdout, so
    # the job's own `sluiceway: error:` line (or a Python traceback) is in stdout.gz.
    logs.append((stdout_uri, emr.driver_log_tail(clients, stdout_uri, lines=10, attempts=1)))
    return _print_failure(f"job run {submission.run_id}", result, logs)


def _cmd_iam(args: argparse.Namespace) -> int:
    import os

    from sluiceway import iam

    spec = iam.load_any_spec(
        args.spec, args.output, args.state, args.iceberg_catalog, args.checkpoint
    )
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    target = iam.Target(
        account=args.account or "${Account}",
        region=region or "${Region}",
        partition=args.partition,
        platform=args.platform,
        bucket=args.bucket,
        prefix=args.prefix,
        job_name=args.job_name,
        application=args.application,
        job_role=args.job_role,
        connections=tuple(args.connection or ()),
    )
    document = iam.policies_for(spec, target, args.role)
    print(json.dumps(document, indent=2))
    size = len(json.dumps(document, separators=(",", ":")))
    if size > iam.MANAGED_POLICY_CHARS:
        # IAM counts the document without whitespace; too long a policy is refused.
        print(
            f"sluiceway: warning: {size} characters: over IAM's {iam.MANAGED_POLICY_CHARS} for "
            "a managed policy (10,240 for all inline policies of a role together)",
            file=sys.stderr,
        )
    return 0


def add_iam_command(sub) -> None:  # sub: the top-level subparsers
    from sluiceway.iam import PLATFORMS, ROLES

    iam_p = sub.add_parser("iam", help="print the least-privilege IAM policy a spec needs (JSON)")
    iam_p.add_argument("spec", help="pipeline or stream spec (TOML)")
    iam_p.add_argument("--role", default="job", choices=ROLES, help="whose policy (default job)")
    iam_p.add_argument("--output", help="the run's output root, as given to run/deploy")
    iam_p.add_argument("--state", help="the run's state location, as given to run/deploy")
    iam_p.add_argument("--checkpoint", help="a stream's checkpoint location, as given to deploy")
    iam_p.add_argument(
        "--iceberg-catalog", choices=DEFAULT_CATALOG_TYPES, help=ICEBERG_CATALOG_HELP
    )
    iam_p.add_argument("--account", help="AWS account id (default: the ${Account} placeholder)")
    iam_p.add_argument("--region", help="AWS region (default: AWS_REGION, else ${Region})")
    iam_p.add_argument("--partition", default="aws", help="ARN partition (default aws)")
    iam_p.add_argument(
        "--platform", choices=PLATFORMS, help="add what a Glue job / EMR Serverless run needs"
    )
    iam_p.add_argument("--bucket", help="the artifacts bucket given to deploy/submit")
    iam_p.add_argument("--prefix", default="sluiceway", help="key prefix in that bucket")
    iam_p.add_argument("--job-name", help="the Glue job's name (deployer)")
    iam_p.add_argument("--application", help="the EMR Serverless application id (deployer)")
    iam_p.add_argument("--job-role", help="name of the job role the deployer passes")
    iam_p.add_argument(
        "--connection",
        action="append",
        help="Glue connection the job is given, or --subnet creates (repeatable)",
    )
    iam_p.set_defaults(func=_cmd_iam)


def add_deploy_commands(sub) -> None:  # sub: the top-level subparsers
    from sluiceway.deploy.emr import DEFAULT_PYTHON, RELEASE_LABELS, STREAM_READERS
    from sluiceway.deploy.glue import GLUE_VERSIONS
    from sluiceway.deploy.targets import TARGETS

    package_p = sub.add_parser(
        "package", help="build the versioned artifact set (wheel, zip, jobs, spec, jars)"
    )
    package_p.add_argument("spec", help="pipeline spec (TOML)")
    package_p.add_argument("--out", default="dist", help="where to write the set (default dist/)")
    package_p.add_argument(
        "--target",
        choices=sorted(TARGETS),
        help="build for one platform: its jars, its Python (default: any platform)",
    )
    package_p.set_defaults(func=_cmd_package)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("spec", nargs="?", help="pipeline spec to package (or --artifacts)")
        p.add_argument("--artifacts", help="an artifact set built by `sluiceway package`")
        p.add_argument("--out", default="dist", help="where to package (default dist/)")
        p.add_argument("--role", required=True, help="IAM role name or ARN the job runs as")
        p.add_argument("--bucket", required=True, help="S3 bucket for artifacts (and logs/temp)")
        p.add_argument("--prefix", default="sluiceway", help="key prefix in the bucket")
        p.add_argument(
            "--timeout-minutes", type=int, help="default 120 for a pipeline, none for a stream"
        )
        p.add_argument("--target", choices=sorted(TARGETS), help="the platform to package for")
        p.add_argument("--checkpoint", help="a stream's checkpoint (s3://), instead of the spec's")
        p.add_argument("--full-refresh", action="store_true", help="the run ignores watermarks")
        p.add_argument("--output", help="the run's output root (s3://), instead of the spec's")
        p.add_argument("--state", help="the run's state location (s3://), instead of the spec's")
        p.add_argument("--subnet", action="append", help="VPC subnet id to run in (repeatable)")
        p.add_argument(
            "--security-group", action="append", help="security group id for --subnet (repeatable)"
        )
        p.add_argument("--poll-seconds", type=float, default=15.0, help=argparse.SUPPRESS)

    deploy_p = sub.add_parser("deploy", help="deploy a pipeline as a cloud job")
    deploy_sub = deploy_p.add_subparsers(dest="deploy_command", required=True)
    glue_p = deploy_sub.add_parser("glue", help="create or update an AWS Glue job")
    common(glue_p)
    glue_p.add_argument("--job-name", required=True)
    glue_p.add_argument(
        "--glue-version",
        choices=sorted(GLUE_VERSIONS),
        help="default: the set's target's, else 5.1",
    )
    glue_p.add_argument("--worker-type", default="G.1X")
    glue_p.add_argument("--workers", type=int, default=2)
    glue_p.add_argument("--max-retries", type=int, default=0)
    glue_p.add_argument(
        "--connection", action="append", help="Glue connection for network access (repeatable)"
    )
    glue_p.add_argument(
        "--network-connection",
        help="name of the NETWORK connection --subnet creates or reuses (default JOB-network)",
    )
    glue_p.add_argument("--run", action="store_true", help="start a run after deploying")
    glue_p.add_argument("--wait", action="store_true", help="follow the run until it ends")
    glue_p.set_defaults(func=_cmd_deploy_glue)

    submit_p = sub.add_parser("submit", help="submit a pipeline run to a cloud runtime")
    submit_sub = submit_p.add_subparsers(dest="submit_command", required=True)
    emr_p = submit_sub.add_parser("emr", help="start a job run on EMR Serverless and follow it")
    common(emr_p)
    emr_p.add_argument("--application", required=True, help="application id or name")
    emr_p.add_argument(
        "--create-application", action="store_true", help="create it if there is none by that name"
    )
    emr_p.add_argument(
        "--spark", default="3.5", choices=sorted(RELEASE_LABELS), help="line of a new application"
    )
    emr_p.add_argument(
        "--release-label",
        help=f"release of a new application (default: {', '.join(RELEASE_LABELS.values())})",
    )
    emr_p.add_argument("--python", default=DEFAULT_PYTHON, help="Python for driver and executors")
    emr_p.add_argument(
        "--reader",
        default="aws-kinesis",
        choices=STREAM_READERS,
        help="a stream's Kinesis reader: EMR's connector, or Sluiceway's (Spark 4 only)",
    )
    emr_p.add_argument("--client-token", help="reuse to retry a submission without a second run")
    emr_p.add_argument("--conf", action="append", help="extra Spark conf KEY=VALUE (repeatable)")
    emr_p.add_argument("--no-wait", action="store_true", help="return once the run has started")
    emr_p.set_defaults(func=_cmd_submit_emr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args.func(args))
    except SluicewayError as exc:
        print_error(exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
