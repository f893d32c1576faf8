"""Write `sluiceway init`'s proposals as a pipeline spec: TOML with each guess's reason.

Pure text: the result parses with `sluiceway.spec.parse_spec` as written (the tests parse
every spec they make), and every guessed value is followed by `# why`.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sluiceway.spec_guess import Guess, Proposal

_COMMENT_COLUMN = 40  # where the `# why` comments start, when the value leaves room


@dataclass(frozen=True)
class Source:
    """The connection the spec reads from, as given on init's command line."""

    name: str  # the connection's key, connections.<name>
    engine: str
    host: str | None
    port: int | None
    database: str | None
    user: str | None
    password_env: str | None
    secret_id: str | None
    schema: str | None
    max_connections: int


def toml_value(value: object) -> str:
    """A TOML literal for a string, int or list of strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML's
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML literal for {value!r}")


def _line(key: str, value: object, why: str | None = None) -> str:
    text = f"{key} = {toml_value(value)}"
    if why:
        text = f"{text.ljust(_COMMENT_COLUMN - 1)} # {_one_line(why)}"
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _comments(lines: Iterable[str]) -> list[str]:
    """`# ` lines, wrapped to the width of the spec."""
    return [f"# {part}" for line in lines for part in textwrap.wrap(_one_line(line), 96)]


def render_spec(
    pipeline: str,
    output: str,
    source: Source,
    proposals: Sequence[Proposal],
    header: Sequence[str],
) -> str:
    """The whole spec: a header comment, [pipeline], the connection, one table each."""
    out = [*_comments(header), "[pipeline]", _line("name", pipeline), _line("output", output), ""]
    out += _connection(source)
    for proposal in proposals:
        out += ["", *_table(proposal)]
    return "\n".join(out) + "\n"


def _connection(source: Source) -> list[str]:
    lines = [f"[connections.{source.name}]", _line("engine", source.engine)]
    for key in ("host", "port", "database", "user", "password_env", "secret_id"):
        value = getattr(source, key)
        if value is not None:
            lines.append(_line(key, value))
    lines.append(
        _line(
            "max_connections",
            source.max_connections,
            "JDBC connections (and Spark partitions) per table at most",
        )
    )
    return lines


def _guess(key: str, guess: Guess | None) -> list[str]:
    return [] if guess is None else [_line(key, guess.value, guess.why)]


def _table(p: Proposal) -> list[str]:
    t = p.table
    first, *rest = p.notes or ("",)
    lines = _comments([f"{t.schema}.{t.name}: {t.kind}" + (f", {first}" if first else ""), *rest])
    lines += [f"[tables.{p.name}]", _line("table", p.relation)]
    if p.primary_key is not None:
        lines.append(_line("primary_key", list(p.primary_key.value), p.primary_key.why))
    lines += _guess("split_column", p.split_column)
    lines += _guess("split_strategy", p.split_strategy)
    lines += _guess("rows_per_partition", p.rows_per_partition)
    lines += _guess("incremental_column", p.incremental_column)
    if p.partition_column is not None:
        column = p.partition_column.value
        prefix = f"{column}_"
        lines.append(
            _line("partition_by", [f"{prefix}year", f"{prefix}month"], p.partition_column.why)
        )
        params = (
            f'{{ column = {toml_value(column)}, prefix = {toml_value(prefix)}, grain = "month" }}'
        )
        lines += [
            "transforms = [",
            f'  {{ name = "with_date_partitions", params = {params} }},',
            "]",
        ]
    path, mode = toml_value(f"tables/{p.name}"), toml_value(p.mode.value)
    sink = f"sink = {{ path = {path}, mode = {mode} }}"
    lines.append(f"{sink.ljust(_COMMENT_COLUMN - 1)} # {_one_line(p.mode.why)}")
    return lines
