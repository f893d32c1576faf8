"""The streaming job on EMR Serverless (STREAMING mode) or EMR on EC2.

EMR 7.1+ ships the `aws-kinesis` Structured Streaming connector; it is the default
reader here. On a release with Spark >= 4.0 the project's Python source works too
(`--reader python`). The job runs until it is cancelled: EMR sends SIGTERM, and the
running micro-batch is finished first.
"""

from __future__ import annotations

import argparse

from pyspark.sql import SparkSession

from sluiceway import streaming
from sluiceway.runtimes.local import apply_pipeline_conf
from sluiceway.runtimes.spec_location import read_stream_spec_location
from sluiceway.stream_spec import StreamSpec


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run a Sluiceway stream on EMR")
    parser.add_argument("spec", help="stream spec: local, shipped with --files, or s3://")
    parser.add_argument("--output", help="override the spec's output root")
    parser.add_argument("--checkpoint", help="override the spec's checkpoint location")
    parser.add_argument("--reader", choices=streaming.READERS, default="aws-kinesis")
    return parser.parse_args(argv)


def session(app_name: str) -> SparkSession:
    return apply_pipeline_conf(SparkSession.builder.appName(app_name).getOrCreate())


def load(args: argparse.Namespace) -> StreamSpec:
    return read_stream_spec_location(args.spec, args.output, args.checkpoint)
