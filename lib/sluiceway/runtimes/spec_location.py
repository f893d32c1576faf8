"""Where a job finds its spec file: a local path, a file shipped with the job, or S3."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sluiceway.errors import SpecError


def local_spec_path(location: str) -> str:
    """A local path for `location`: as given, in the job's working directory, or from S3.

    Glue (`--extra-files`) and EMR (`--files`) put shipped files in the working directory,
    so a path that does not exist is also looked up there by its file name.
    """
    if location.startswith(("s3://", "s3a://")):
        return _download(location)
    if Path(location).is_file():
        return location
    shipped = Path.cwd() / Path(location).name
    if shipped.is_file():
        return str(shipped)
    return location  # load_stream_spec reports it missing, naming the path


def _download(uri: str) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri.split("://", 1)[1].partition("/")
    handle, target = tempfile.mkstemp(suffix=Path(key).suffix or ".toml")
    os.close(handle)
    try:
        boto3.client("s3").download_file(bucket, key, target)
    except (BotoCoreError, ClientError) as exc:
        raise SpecError(f"{uri}: cannot read spec: {exc}") from exc
    return target
