"""The exception tree. Every error Sluiceway raises on purpose is a SluicewayError.

An error carries where it happened as data (`where`: the spec file and key path, a table
and its target) beside what went wrong (`message`); `str()` puts the place first, the one
line the CLI prints. `located(where)` is the one wrapper that gives a place to the errors
raised inside it and turns Spark's and botocore's exceptions into ours.

Imports only the standard library: the spec and `package` use it where Spark is absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class SluicewayError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def __reduce__(self) -> Any:  # keeps `where` through pickling (Spark ships errors)
        return (self.__class__, (self.message,), {"where": self.where})


class SpecError(SluicewayError):
    """The pipeline spec is malformed or names something that does not exist."""


class CredentialsError(SluicewayError):
    """Credentials could not be obtained (missing variable, unreadable secret)."""


class SourceError(SluicewayError):
    """Reading from a source failed: connection, authentication, missing table, bad data."""


class TransformError(SluicewayError):
    """A transform could not be resolved or applied."""


class SinkError(SluicewayError):
    """Writing an output failed; nothing was committed."""


class StateError(SluicewayError):
    """The run-state store could not be read or written."""


class DeployError(SluicewayError):
    """Packaging, uploading, deploying or submitting a job failed, or its run did."""


def _spark_errors() -> tuple[type[BaseException], ...]:
    try:
        from sluiceway.jvm_errors import SPARK_ERRORS
    except ImportError:  # no pyspark here: nothing of Spark's can be raised
        return ()
    return SPARK_ERRORS


def _aws_errors() -> tuple[type[BaseException], ...]:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return ()
    return (ClientError, BotoCoreError)


@contextmanager
def located(
    where: str,
    error: type[SluicewayError] = SluicewayError,
    *,
    doing: str | None = None,
    aws_client: Any = None,
    bucket: str | None = None,
) -> Iterator[None]:
    """Our errors raised inside without a place get `where`; a Spark or botocore exception
    becomes `error` at `where`, described in one line (the driver's or AWS's own words,
    after `doing`; `aws_client` and `bucket` let an AWS error name the endpoint and bucket)."""
    prefix = f"{doing}: " if doing else ""
    try:
        yield
    except SluicewayError as exc:
        if exc.where is None:
            exc.where = where
        raise
    except _spark_errors() as exc:
        from sluiceway.jvm_errors import describe_spark_error

        raise error(prefix + describe_spark_error(exc), where=where) from exc
    except _aws_errors() as exc:
        from sluiceway.aws import describe_aws_error

        raise error(prefix + describe_aws_error(exc, aws_client, bucket), where=where) from exc
