"""The one library call every batch entrypoint makes: spec location in, exit status out.

jobs/glue_batch.py and jobs/emr_batch.py differ only in how they get their arguments and
their SparkSession; from there `run_batch_job` does the same thing on every platform. It
owns the job's terminal the way the CLI owns the user's: progress through logging (set up
by the entrypoint), the summary table on stdout, and one `sluiceway: error: ...` line on
stderr, which is the line `sluiceway submit emr` shows from the driver's log when a run
fails.
"""

from __future__ import annotations

import logging
import sys

from pyspark.sql import SparkSession

from sluiceway import pipeline
from sluiceway.errors import SluicewayError, SpecError
from sluiceway.report import print_summary
from sluiceway.runtimes.local import apply_pipeline_conf
from sluiceway.spec import PipelineSpec, load_spec, parse_spec

log = logging.getLogger(__name__)

S3_SCHEMES = ("s3://", "s3a://")


def read_spec_location(
    location: str, output_root: str | None = None, state_location: str | None = None
) -> PipelineSpec:
    """Load a spec from a local path, or from an s3:// URI (how Glue and EMR jobs get it)."""
    if not location.startswith(S3_SCHEMES):
        return load_spec(location, output_root=output_root, state_location=state_location)
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = location.split("://", 1)[1].partition("/")
    if not bucket or not key:
        raise SpecError(f"{location}: not an s3://bucket/key URI")
    try:
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise SpecError(f"{location}: cannot read spec: {code}") from exc
    except BotoCoreError as exc:
        raise SpecError(f"{location}: cannot read spec: {exc}") from exc
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{location}: spec is not UTF-8 text") from exc
    return parse_spec(text, location, output_root=output_root, state_location=state_location)


def parse_flag(value: bool | str, name: str) -> bool:
    """A job argument that is a boolean; Glue passes every argument as a string."""
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise SluicewayError(f"job argument {name}: expected true or false, got {value!r}")


def run_batch_job(
    spark: SparkSession,
    spec_location: str,
    *,
    full_refresh: bool | str = False,
    output_root: str | None = None,
    state_location: str | None = None,
) -> int:
    """Load the spec, run the pipeline on `spark`, print the summary; 0 on success, else 1."""
    try:
        refresh = parse_flag(full_refresh, "full_refresh")
        spec = read_spec_location(spec_location, output_root, state_location)
        log.info("%s: running on Spark %s (spec %s)", spec.name, spark.version, spec_location)
        report = pipeline.run(apply_pipeline_conf(spark), spec, full_refresh=refresh)
    except SluicewayError as exc:
        print(f"sluiceway: error: {exc}", file=sys.stderr, flush=True)
        return 1
    print_summary(report)
    sys.stdout.flush()
    return 0
