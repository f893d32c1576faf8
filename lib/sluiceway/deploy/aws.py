"""boto3 clients, checks that name the missing thing, and the artifact upload to S3.

Clients come from one boto3 Session, so the standard AWS_* variables (profile, region,
AWS_ENDPOINT_URL for a local endpoint) apply to every call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sluiceway.deploy.package import ArtifactSet
from sluiceway.errors import DeployError

log = logging.getLogger(__name__)

_NO_KEY = ("404", "NoSuchKey", "NotFound")


@dataclass
class AwsClients:
    """The control-plane and S3 clients a deploy uses; created on first use."""

    session: Any = None
    _cache: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._cache:
            import boto3

            self.session = self.session or boto3.session.Session()
            self._cache[service] = self.session.client(service)
        return self._cache[service]

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def glue(self) -> Any:
        return self.client("glue")

    @property
    def emr(self) -> Any:
        return self.client("emr-serverless")

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def iam(self) -> Any:
        return self.client("iam")

    @property
    def logs(self) -> Any:
        return self.client("logs")

    @property
    def sts(self) -> Any:
        return self.client("sts")


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", type(exc).__name__))


def aws_call(what: str, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Call `fn(**kwargs)`; an AWS or connection error becomes one DeployError naming `what`."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except ClientError as exc:
        # A proxy or a broken endpoint may answer with a whole HTML page: keep one line.
        message = str(exc.response.get("Error", {}).get("Message", "")).strip()
        message = message.splitlines()[0][:200] if message else ""
        raise DeployError(f"{what}: {error_code(exc)}{': ' + message if message else ''}") from exc
    except BotoCoreError as exc:
        raise DeployError(f"{what}: {exc}") from exc


def aws_lookup(
    what: str, fn: Callable[..., Any], /, *, missing: tuple[str, ...], **kwargs: Any
) -> Any:
    """Like aws_call, but None when the service answers with one of the `missing` codes."""
    from botocore.exceptions import ClientError

    try:
        return aws_call(what, fn, **kwargs)
    except DeployError as exc:
        cause = exc.__cause__
        if isinstance(cause, ClientError) and error_code(cause) in missing:
            return None
        raise


def check_bucket(clients: AwsClients, bucket: str) -> None:
    """Fail with one clear line if the bucket is missing or not ours to use."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        clients.s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise DeployError(f"S3 bucket {bucket} does not exist (create it first)") from exc
        if code in ("403", "AccessDenied", "Forbidden"):
            raise DeployError(f"S3 bucket {bucket}: access denied to these credentials") from exc
        raise DeployError(f"S3 bucket {bucket}: {code}") from exc
    except BotoCoreError as exc:
        raise DeployError(f"S3 bucket {bucket}: {exc}") from exc


def role_arn(clients: AwsClients, role: str, service: str) -> str:
    """The ARN of an existing IAM role (given by name or ARN); `service` names its user."""
    from botocore.exceptions import BotoCoreError, ClientError

    name = role.rsplit("/", 1)[-1]
    try:
        return str(clients.iam.get_role(RoleName=name)["Role"]["Arn"])
    except ClientError as exc:
        code = error_code(exc)
        if code in ("NoSuchEntity", "NoSuchEntityException"):
            raise DeployError(f"IAM role {role} does not exist (the {service} role)") from exc
        if code in ("AccessDenied", "AccessDeniedException") and role.startswith("arn:"):
            # Deployers without iam:GetRole can still pass a full ARN; the service checks it.
            log.warning("cannot check IAM role %s (%s); using it as given", role, code)
            return role
        if code in ("AccessDenied", "AccessDeniedException"):
            raise DeployError(
                f"IAM role {role}: cannot look it up ({code}); pass the role's full ARN"
            ) from exc
        raise DeployError(f"IAM role {role}: {code}") from exc
    except BotoCoreError as exc:
        raise DeployError(f"IAM role {role}: {exc}") from exc


@dataclass(frozen=True)
class RunResult:
    """How a Glue job run or an EMR Serverless job run ended."""

    state: str
    seconds: float
    message: str | None  # the service's error message for a failed run


def follow_run(
    what: str,
    poll: Callable[[], tuple[str, str | None]],
    done: tuple[str, ...],
    on_state: Callable[[str, float], None] | None,
    poll_seconds: float,
    max_wait_seconds: float | None,
) -> RunResult:
    """Poll `poll()` -> (state, message) until a state in `done`; `on_state(state, elapsed)`
    hears each new state. `what` names the run in the error for a run that outlasts the wait."""
    started = time.monotonic()
    last = None
    while True:
        state, message = poll()
        elapsed = time.monotonic() - started
        if state != last:
            last = state
            if on_state:
                on_state(state, elapsed)
        if state in done:
            return RunResult(state, elapsed, message)
        if max_wait_seconds is not None and elapsed > max_wait_seconds:
            raise DeployError(
                f"{what}: still {state} after {elapsed:.0f}s; stopped waiting (the run goes on)"
            )
        time.sleep(poll_seconds)


@dataclass(frozen=True)
class Uploaded:
    """Where an artifact set landed: one s3:// URI per file, by role (jars as a list)."""

    bucket: str
    prefix: str  # the set's own prefix: <prefix>/artifacts/<pipeline>/<version>-<build>
    uris: dict[str, str]
    jar_uris: tuple[str, ...]
    uploaded: int
    unchanged: int

    def uri(self, role: str) -> str:
        return self.uris[role]


def artifacts_prefix(prefix: str, artifacts: ArtifactSet) -> str:
    return "/".join(
        p for p in (prefix.strip("/"), "artifacts", artifacts.pipeline, artifacts.name) if p
    )


def upload_artifacts(
    clients: AwsClients, artifacts: ArtifactSet, bucket: str, prefix: str
) -> Uploaded:
    """Upload every file of the set (skipping objects already there with the same SHA-256),
    the manifest last: a prefix with a manifest holds a complete set."""
    base = artifacts_prefix(prefix, artifacts)
    uris: dict[str, str] = {}
    jar_uris: list[str] = []
    uploaded = unchanged = 0
    for item in (*artifacts.files, None):
        rel = item.path if item else "manifest.json"
        key = f"{base}/{rel}"
        data = (artifacts.root / rel).read_bytes()
        sha = item.sha256 if item else None
        if sha is not None and _has_object(clients, bucket, key, sha):
            unchanged += 1
        else:
            extra = {"Metadata": {"sha256": sha}} if sha else {}
            aws_call(
                f"upload s3://{bucket}/{key}",
                clients.s3.put_object,
                Bucket=bucket,
                Key=key,
                Body=data,
                **extra,
            )
            uploaded += 1
        uri = f"s3://{bucket}/{key}"
        if item is None:
            uris["manifest"] = uri
        elif item.role == "jar":
            jar_uris.append(uri)
        else:
            uris[item.role] = uri
    log.debug("artifacts %s: %d uploaded, %d unchanged", base, uploaded, unchanged)
    return Uploaded(bucket, base, uris, tuple(jar_uris), uploaded, unchanged)


def _has_object(clients: AwsClients, bucket: str, key: str, sha256: str) -> bool:
    head = aws_lookup(
        f"s3://{bucket}/{key}", clients.s3.head_object, missing=_NO_KEY, Bucket=bucket, Key=key
    )
    return head is not None and head.get("Metadata", {}).get("sha256") == sha256


def s3_tail(clients: AwsClients, uri: str, lines: int) -> list[str] | None:
    """The last `lines` lines of a (possibly gzipped) text object; None if it is not there."""
    import gzip

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    found = aws_lookup(uri, clients.s3.get_object, missing=_NO_KEY, Bucket=bucket, Key=key)
    if found is None:
        return None
    body = found["Body"].read()
    if key.endswith(".gz"):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise DeployError(f"{uri}: not a gzip file ({exc})") from exc
    return body.decode("utf-8", errors="replace").splitlines()[-lines:]
