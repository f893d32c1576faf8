"""Where a job finds its spec: a local path, a file shipped with the job, or an S3 object.

Both kinds of spec (batch and stream) are found the same way; an S3 spec is read into
memory and parsed under its URI, so every error names the URI, not a temporary file.
"""

from __future__ import annotations

from pathlib import Path

from sluiceway import aws
from sluiceway.sources.spec_object import read_s3_spec_text
from sluiceway.spec import PipelineSpec, parse_spec
from sluiceway.spec_reader import read_spec_file
from sluiceway.stream_spec import StreamSpec, parse_stream_spec


def local_spec_path(location: str) -> str:
    """`location` as given, or the file of that name in the job's working directory.

    Glue (`--extra-files`) and EMR (`--files`) put shipped files in the working directory,
    so a path that does not exist is also looked up there by its file name.
    """
    if Path(location).is_file():
        return location
    shipped = Path.cwd() / Path(location).name
    if shipped.is_file():
        return str(shipped)
    return location  # the spec loader reports it missing, naming the path


def _spec_text(location: str) -> tuple[str, str]:
    """The spec's text and the name its errors give: the S3 URI, or the local file."""
    if aws.is_s3_uri(location):
        return read_s3_spec_text(location), location
    path = local_spec_path(location)
    return read_spec_file(path), path


def read_spec_location(
    location: str,
    output_root: str | None = None,
    state_location: str | None = None,
    iceberg_catalog: str | None = None,
) -> PipelineSpec:
    """The pipeline spec at a local path, a shipped file or an s3:// URI."""
    text, source = _spec_text(location)
    return parse_spec(
        text,
        source,
        output_root=output_root,
        state_location=state_location,
        iceberg_catalog=iceberg_catalog,
    )


def read_stream_spec_location(
    location: str, output_root: str | None = None, checkpoint: str | None = None
) -> StreamSpec:
    """The stream spec at a local path, a shipped file or an s3:// URI."""
    text, source = _spec_text(location)
    return parse_stream_spec(text, source, output_root=output_root, checkpoint=checkpoint)
