"""Where a job finds its spec: a local path, a file shipped with the job, or an S3 object.

Both kinds of spec (batch and stream) are found the same way; an S3 spec is read into
memory and parsed under its URI, so every error names the URI, not a temporary file.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from sluiceway import aws
from sluiceway.sources.spec_object import read_s3_spec_text
from sluiceway.spec import PipelineSpec, load_spec, parse_spec
from sluiceway.stream_spec import StreamSpec, load_stream_spec, parse_stream_spec

_Spec = TypeVar("_Spec", PipelineSpec, StreamSpec)


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


def _read(location: str, load: Callable[[str], _Spec], parse: Callable[[str, str], _Spec]) -> _Spec:
    if aws.is_s3_uri(location):
        return parse(read_s3_spec_text(location), location)
    return load(local_spec_path(location))


def read_spec_location(
    location: str, output_root: str | None = None, state_location: str | None = None
) -> PipelineSpec:
    """The pipeline spec at a local path, a shipped file or an s3:// URI."""
    load = partial(load_spec, output_root=output_root, state_location=state_location)
    parse = partial(parse_spec, output_root=output_root, state_location=state_location)
    return _read(location, load, parse)


def read_stream_spec_location(
    location: str, output_root: str | None = None, checkpoint: str | None = None
) -> StreamSpec:
    """The stream spec at a local path, a shipped file or an s3:// URI."""
    load = partial(load_stream_spec, output_root=output_root, checkpoint=checkpoint)
    parse = partial(parse_stream_spec, output_root=output_root, checkpoint=checkpoint)
    return _read(location, load, parse)
