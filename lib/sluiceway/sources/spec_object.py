"""A spec kept as an S3 object (a Glue or EMR job's `--spec s3://...`), read as text."""

from __future__ import annotations

from sluiceway import aws
from sluiceway.errors import SpecError


def read_s3_spec_text(uri: str) -> str:
    """The text of the spec object at an s3:// (or s3a://) URI."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri.split("://", 1)[1].partition("/")
    if not bucket or not key:
        raise SpecError(f"{uri}: not an s3://bucket/key URI")
    try:
        body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        raise SpecError(f"{uri}: cannot read spec: {aws.error_code(exc)}") from exc
    except BotoCoreError as exc:
        raise SpecError(f"{uri}: cannot read spec: {exc}") from exc
    try:
        return str(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SpecError(f"{uri}: spec is not UTF-8 text") from exc
