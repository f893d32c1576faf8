"""EMR Serverless: the SparkSession that spark-submit configured, plus our pipeline settings.

EMR Serverless starts the driver with `spark-submit` and the sparkSubmitParameters that
`sluiceway submit emr` sent (--py-files, --jars, the Python to use, TZ=UTC); the job only
has to pick that session up. Nothing here reads the environment or argv.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from sluiceway.runtimes.local import apply_pipeline_conf


def emr_session(app_name: str = "sluiceway-batch") -> SparkSession:
    """The session spark-submit configured, with the settings every pipeline relies on."""
    return apply_pipeline_conf(SparkSession.builder.appName(app_name).getOrCreate())
