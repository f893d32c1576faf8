"""boto3 clients as the standard AWS variables and profile configure them, and AWS errors
as one line.

boto3 itself reads AWS_PROFILE, AWS_DEFAULT_REGION, the credential chain and
AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>, so the same code talks to a local endpoint
or to AWS. It does not read AWS_REGION, which the AWS CLI, the Java SDK (and so S3A and
Iceberg) and Lambda-style runtimes use: `session()` takes it when AWS_DEFAULT_REGION is
unset, so boto3 and the JVM agree on one region. Used by the IO modules only.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

S3_SCHEMES = ("s3", "s3a")
# Bounded retries and a short connect timeout: a wrong endpoint fails in seconds, with
# the endpoint named, instead of backing off for minutes.
_CONFIG = {
    "retries": {"max_attempts": 3, "mode": "standard"},
    "connect_timeout": 5,
    "read_timeout": 60,
}
_ACCESS_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "AllAccessDisabled",
    "Forbidden",
    "403",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "UnrecognizedClientException",
}
# Of those, the ones that say the credentials themselves are wrong, not their permissions.
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "UnrecognizedClientException",
}


# Operations whose IAM action is not the operation's own name (the rest: service:Operation).
_IAM_ACTIONS = {
    "HeadBucket": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "HeadObject": "s3:GetObject",
    "DeleteObjects": "s3:DeleteObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
}
# AWS names the action in most denials: "... is not authorized to perform: glue:GetTable ...".
_DENIED_ACTION = re.compile(r"not authorized to perform:? ([a-z0-9-]+:[A-Za-z0-9]+)")


def is_s3_uri(location: str) -> bool:
    return urlsplit(location).scheme in S3_SCHEMES


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> ("bucket", "some/key"); s3a:// alike."""
    parts = urlsplit(uri)
    if parts.scheme not in S3_SCHEMES or not parts.netloc:
        raise ValueError(f"{uri}: not an s3:// or s3a:// URI with a bucket")
    return parts.netloc, parts.path.strip("/")


def session() -> Any:
    """A boto3 session; its region from AWS_DEFAULT_REGION, else AWS_REGION, else the
    profile's."""
    import boto3

    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or None
    return boto3.session.Session(region_name=region)


def client(service: str, *, region: str | None = None, endpoint: str | None = None) -> Any:
    """A boto3 client configured from the environment, with bounded retries; `region` and
    `endpoint` override the environment's (a Kinesis source's options on an executor)."""
    from botocore.config import Config

    return session().client(
        service, region_name=region, endpoint_url=endpoint or None, config=Config(**_CONFIG)
    )


def error_code(exc: BaseException) -> str:
    """The error code of a botocore ClientError ("NoSuchKey", "AccessDenied"), else "error"."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return "error"
    return str(response.get("Error", {}).get("Code", "error"))


def denied_action(exc: BaseException, aws_client: Any) -> str:
    """The IAM action a denied call needed: as AWS names it, else from the operation."""
    found = _DENIED_ACTION.search(str(getattr(exc, "response", {}).get("Error", {}).get("Message")))
    if found:
        return found.group(1)
    operation = str(getattr(exc, "operation_name", "") or "")
    if operation in _IAM_ACTIONS:
        return _IAM_ACTIONS[operation]
    return f"{aws_client.meta.service_model.signing_name}:{operation or '?'}"


def endpoint_of(aws_client: Any) -> str:
    """The endpoint a client sends to, and where it came from when it is not AWS's own."""
    url = str(aws_client.meta.endpoint_url)
    service = aws_client.meta.service_model.service_id.replace(" ", "_").upper()
    for variable in (f"AWS_ENDPOINT_URL_{service}", "AWS_ENDPOINT_URL"):
        if os.environ.get(variable):
            return f"{url} ({variable})"
    return url


def describe_aws_error(exc: BaseException, aws_client: Any, bucket: str | None = None) -> str:
    """One line for a boto3/botocore failure: what is wrong, naming the bucket or endpoint."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ReadTimeoutError,
    )

    where = f"bucket {bucket}" if bucket else "the request"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "error"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket",) or (bucket and code == "404" and status == 404):
            return f"bucket {bucket} does not exist at {endpoint_of(aws_client)}"
        if code in _ACCESS_CODES and code not in _CREDENTIAL_CODES:
            return (
                f"access denied to {where} at {endpoint_of(aws_client)} ({code}): these "
                f"credentials are not allowed {denied_action(exc, aws_client)}; check the "
                "credentials (AWS_PROFILE / AWS_ACCESS_KEY_ID) and their policy "
                "(`sluiceway iam SPEC` prints the one a run needs)"
            )
        if code in _ACCESS_CODES:
            return (
                f"access denied to {where} at {endpoint_of(aws_client)} ({code}): check the "
                "credentials (AWS_PROFILE / AWS_ACCESS_KEY_ID) and their permissions"
            )
        message = str(error.get("Message") or "").strip()
        return f"{where}: {code}{': ' + message if message else ''}"
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError):
        return f"cannot reach {endpoint_of(aws_client)} for {where}: {exc}"
    if isinstance(exc, ReadTimeoutError):
        return f"no answer from {endpoint_of(aws_client)} for {where}: {exc}"
    if isinstance(exc, NoCredentialsError):
        return (
            f"no AWS credentials for {where}: set AWS_PROFILE or AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, NoRegionError):
        return (
            f"no AWS region for {where}: set AWS_REGION (or AWS_DEFAULT_REGION) or a profile "
            "with a region"
        )
    return f"{where}: {exc}"
