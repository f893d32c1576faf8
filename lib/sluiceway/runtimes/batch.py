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
from sluiceway.errors import SluicewayError
from sluiceway.report import print_summary
from sluiceway.runtimes.local import apply_pipeline_conf
from sluiceway.runtimes.spec_location import read_spec_location

log = logging.getLogger(__name__)


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
