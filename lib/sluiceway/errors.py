"""The exception tree. Every error Sluiceway raises on purpose is a SluicewayError."""

from __future__ import annotations


class SluicewayError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero."""


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
