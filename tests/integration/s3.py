"""Small helpers for tests against the local S3 endpoint: list what a run left behind."""

from __future__ import annotations

from typing import Any


def objects(client: Any, bucket: str, prefix: str = "") -> dict[str, str]:
    """Every object under `prefix`: key -> ETag."""
    found: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["ETag"]
    return found


def partition_dirs(client: Any, bucket: str, prefix: str) -> set[str]:
    """The partition directories (`a=1/b=2`) that hold Parquet files under `prefix`."""
    base = prefix.rstrip("/") + "/"
    dirs = set()
    for key in objects(client, bucket, base):
        rest = key[len(base) :]
        if rest.endswith(".parquet") and "/" in rest and not rest.startswith(("_", ".")):
            dirs.add(rest.rsplit("/", 1)[0])
    return dirs


def download(client: Any, bucket: str, prefix: str, target) -> int:
    """Copy the Parquet files under `prefix` to the local directory `target`, keeping the
    layout; returns how many were copied."""
    base = prefix.rstrip("/") + "/"
    count = 0
    for key in objects(client, bucket, base):
        rest = key[len(base) :]
        if not rest.endswith(".parquet") or rest.startswith(("_", ".")):
            continue
        dest = target / rest
        dest.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, str(dest))
        count += 1
    return count
