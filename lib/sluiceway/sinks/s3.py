"""Checks that S3 locations can be used, before a run reads or writes anything.

Spark's S3 connector reports a missing bucket, a denied request or an unreachable
endpoint only when the first task touches it, after the source was read, and an
unreachable endpoint only after minutes of retries. One HeadBucket per bucket up front
turns each of these into one line naming the bucket and the endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluiceway import aws
from sluiceway.errors import SinkError


def check_s3_locations(locations: Mapping[str, str], client: Any | None = None) -> None:
    """Fail with a SinkError if a bucket in `locations` is missing, denied or unreachable.

    `locations` maps where a location comes from (`spec.toml: tables.x.sink.path`) to the
    location; local paths are skipped.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    checked: set[str] = set()
    for where, location in locations.items():
        if not aws.is_s3_uri(location):
            continue
        bucket, _ = aws.split_s3_uri(location)
        if bucket in checked:
            continue
        client = client or aws.client("s3")
        try:
            client.head_bucket(Bucket=bucket)
        except (ClientError, BotoCoreError) as exc:
            detail = aws.describe_aws_error(exc, client, bucket)
            raise SinkError(f"{location}: {detail}", where=where) from exc
        checked.add(bucket)
