"""The one runner every job entrypoint calls, batch or stream: spec location in, exit status out.

jobs/*.py differ only in how they get their arguments and their SparkSession; from there
these functions do the same thing on every platform. Progress goes through logging (set
up by the entrypoint); the terminal output comes from sluiceway.report: the summary on
stdout, and one `sluiceway: error: ...` line on stderr, which is the line `sluiceway
submit emr` shows from the driver's log when a run fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from pyspark.sql import SparkSession

from sluiceway import pipeline, report, streaming
from sluiceway.errors import SluicewayError
from sluiceway.runtimes.local import apply_pipeline_conf
from sluiceway.runtimes.spec_location import read_spec_location, read_stream_spec_location

if TYPE_CHECKING:
    from sluiceway.runtimes.glue import GlueContextLike
    from sluiceway.sources.credentials import JdbcConfReader

log = logging.getLogger(__name__)


def parse_flag(value: bool | str, name: str) -> bool:
    """A job argument that is a boolean; Glue passes every argument as a string."""
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise SluicewayError(f"job argument {name}: expected true or false, got {value!r}")


def _exit_status(job: Callable[[], None]) -> int:
    """Run `job`; a Sluiceway error becomes the one error line and status 1."""
    try:
        job()
    except SluicewayError as exc:
        report.print_error(exc)
        return 1
    return 0


def run_batch_job(
    spark: SparkSession,
    spec_location: str,
    *,
    full_refresh: bool | str = False,
    output_root: str | None = None,
    state_location: str | None = None,
    iceberg_catalog: str | None = None,
    jdbc_conf: JdbcConfReader | None = None,
) -> int:
    """Load the spec, run the pipeline on `spark`, print the summary; 0 on success, else 1.

    `jdbc_conf` reads the spec's Glue connections (GlueContext's on Glue)."""

    def job() -> None:
        refresh = parse_flag(full_refresh, "full_refresh")
        spec = read_spec_location(spec_location, output_root, state_location, iceberg_catalog)
        log.info("%s: running on Spark %s (spec %s)", spec.name, spark.version, spec_location)
        result = pipeline.run(
            apply_pipeline_conf(spark), spec, full_refresh=refresh, jdbc_conf=jdbc_conf
        )
        report.print_summary(result)

    return _exit_status(job)


def run_stream_job(
    spark: SparkSession,
    spec_location: str,
    *,
    reader: str = "python",
    output_root: str | None = None,
    checkpoint: str | None = None,
    glue_context: GlueContextLike | None = None,
) -> int:
    """Load the stream spec and run it until it ends or SIGTERM stops it; 0 or 1.

    With `glue_context`, the stream runs the Glue way (runtimes/glue_streaming.py);
    otherwise it reads the spec's source with `reader` (streaming.run_spec).
    """
    stop = streaming.StopSignal()
    stop.install()  # the platform cancels with SIGTERM: finish the running batch, then stop

    def job() -> None:
        spec = read_stream_spec_location(spec_location, output_root, checkpoint)
        log.info("%s: streaming on Spark %s (spec %s)", spec.name, spark.version, spec_location)
        if glue_context is not None:
            from sluiceway.runtimes import glue_streaming

            glue_streaming.run(glue_context, spec, stop=stop)
        else:
            streaming.run_spec(apply_pipeline_conf(spark), spec, reader=reader, stop=stop)

    return _exit_status(job)
