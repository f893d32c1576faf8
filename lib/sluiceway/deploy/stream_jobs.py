"""What a deployed stream job differs in from a batch one (a set built from a stream spec).

- Glue: a streaming job (Command.Name "gluestreaming") running jobs/glue_stream.py, which
  reads Kinesis with GlueContext's Kinesis source and forEachBatch, and Kafka with Spark's
  Kafka source (which Glue ships) and the checkpoint at trigger.checkpoint; no
  --full_refresh, and no jars but MSK's IAM login module when the spec asks for IAM.
  No Timeout unless one is given: a Glue streaming job runs until stopped (Glue restarts
  it after 7 days, in the job's maintenance window if it has one).
- EMR Serverless: a STREAMING-mode job run (StartJobRun `mode`) of jobs/emr_stream.py,
  which reads Kinesis with EMR's aws-kinesis connector, put on --jars from the path the EMR
  Serverless guide gives ("Supported streaming connectors"), and Kafka with Spark's Kafka
  source of the set's target line (its jars in the set); EMR Serverless retries a
  failed streaming run from its checkpoint by itself. No executionTimeoutMinutes unless
  one is given.

Both refuse, before anything is uploaded, a stream that could not run there: an output or
checkpoint on local disk (lost when the run ends), `available_now` (a deployed stream runs
until it is stopped), and on Glue a source other than Kinesis or Kafka.
"""

from __future__ import annotations

from sluiceway.deploy.package import SPEC, ArtifactSet, load_set_spec
from sluiceway.errors import DeployError
from sluiceway.stream_spec import StreamSpec

GLUE_STREAMING_COMMAND = "gluestreaming"
EMR_STREAMING_MODE = "STREAMING"
EMR_KINESIS_CONNECTOR_JAR = (
    "/usr/share/aws/kinesis/spark-sql-kinesis/lib/spark-streaming-sql-kinesis-connector.jar"
)
_S3 = ("s3://", "s3a://")


def deployed_stream_spec(
    artifacts: ArtifactSet,
    platform: str,
    output: str | None = None,
    checkpoint: str | None = None,
    *,
    on_glue: bool,
) -> StreamSpec:
    """The set's stream spec with the run's overrides, checked for `platform`."""
    spec = load_set_spec(artifacts.root / artifacts.file(SPEC).path, "stream", output, checkpoint)
    assert isinstance(spec, StreamSpec)  # load_set_spec returns the kind it is asked for
    problems = stream_problems(spec, platform, on_glue=on_glue)
    if problems:
        raise DeployError(f"{artifacts.pipeline}: cannot run as {platform}: " + "; ".join(problems))
    return spec


def stream_problems(spec: StreamSpec, platform: str, *, on_glue: bool) -> list[str]:
    """What in a stream spec a deployed stream cannot have, one line per key."""
    problems = []
    places = (
        ("pipeline.output", spec.output_root, "--output s3://bucket/prefix"),
        ("trigger.checkpoint", spec.trigger.checkpoint, "--checkpoint s3://bucket/prefix"),
    )
    for key, location, fix in places:
        if not location.startswith(_S3):
            problems.append(
                f"{key}: {location} is a local path, which {platform} loses when it ends; "
                f"give {fix}"
            )
    if spec.trigger.mode == "available_now":
        problems.append(
            f"trigger.mode: available_now; {platform} runs a stream until it is stopped: "
            'use "interval"'
        )
    if on_glue and spec.source.kind not in ("kinesis", "kafka"):
        problems.append(f"source.kind: {spec.source.kind}; {platform} reads Kinesis or Kafka")
    elif spec.source.kind == "files" and not (spec.source.path or "").startswith(_S3):
        problems.append(f"source.path: {spec.source.path} is not on S3, where {platform} reads")
    return problems


def source_kind(artifacts: ArtifactSet) -> str:
    """The `[source] kind` of a stream set's spec (its checks ran when it was packaged)."""
    import tomllib

    data = tomllib.loads((artifacts.root / artifacts.file(SPEC).path).read_text("utf-8"))
    return str(data.get("source", {}).get("kind", ""))


def stream_arguments(output: str | None, checkpoint: str | None) -> dict[str, str]:
    """The job arguments that carry the run's overrides (none when the spec's own hold)."""
    given = {"--output": output, "--checkpoint": checkpoint}
    return {key: value for key, value in given.items() if value is not None}
