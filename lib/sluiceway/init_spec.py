"""`sluiceway init`: read a database's catalog, guess each table's settings, write the spec.

The catalog is read by `sources/db_catalog.py`, the guesses are `spec_guess.py`'s pure
functions and the text is `spec_write.py`'s; this module strings them together and
checks that the spec it wrote parses, so a spec init prints always runs unchanged.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from sluiceway.errors import CredentialsError, SluicewayError
from sluiceway.sources.credentials import Credentials, resolve_credentials
from sluiceway.sources.db_catalog import describe, read_catalog
from sluiceway.spec import SOURCE_ENGINES, Connection, parse_spec
from sluiceway.spec_guess import Proposal, Settings, propose, select_tables, snake_name, spec_names
from sluiceway.spec_reader import IDENTIFIER
from sluiceway.spec_write import Source, render_spec


@dataclass(frozen=True)
class InitRequest:
    """init's command line: where the database is, what to keep, how to guess."""

    engine: str
    host: str | None
    port: int | None
    database: str | None
    user: str | None
    password_env: str | None
    secret_id: str | None
    schema: str | None = None  # PostgreSQL; MySQL's schema is the database
    tables: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    output: str | None = None
    name: str | None = None
    settings: Settings = Settings()


@dataclass(frozen=True)
class InitResult:
    text: str  # the spec
    proposals: tuple[Proposal, ...]
    summary: str  # init's one-line summary


def init_spec(request: InitRequest, *, now: datetime | None = None) -> InitResult:
    """The spec for `request`'s database, with every guess commented."""
    started = time.monotonic()
    conn = _connection(request)
    creds = _credentials(conn)
    where = describe(request.engine, creds)
    schema = _schema(request, creds.database)
    catalog = read_catalog(
        request.engine, creds, schema=schema, slices=request.settings.max_connections
    )
    tables, skipped = select_tables(catalog, list(request.tables), list(request.exclude))
    if not tables:
        raise SluicewayError(f"init: {where} (schema {schema}) has no table or view to read")
    names = spec_names(tables)
    relation = (lambda t: f"{schema}.{t}") if request.engine == "postgresql" else (lambda t: t)
    proposals = tuple(propose(t, names[t.name], relation(t.name), request.settings) for t in tables)
    pipeline = request.name or snake_name(creds.database or "pipeline")
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        f"Written by `sluiceway init` from the catalog of {where} (schema {schema}) at {stamp}.",
        "Each guess says why after its `#`: read them before the first run.",
        *skipped,
    ]
    text = render_spec(
        pipeline,
        request.output or f"out/{pipeline}",
        _source(request, snake_name(creds.database or conn.name)),  # a secret may name it
        proposals,
        header,
    )
    parse_spec(text, "<sluiceway init>")  # what init prints must parse as written
    return InitResult(
        text, proposals, _summary(where, schema, proposals, skipped, time.monotonic() - started)
    )


def _connection(request: InitRequest) -> Connection:
    settings = request.settings
    if settings.max_connections < 1 or settings.partition_mb <= 0 or settings.partition_rows < 1:
        raise SluicewayError(
            "init: --max-connections, --partition-mb and --partition-rows must be > 0"
        )
    if request.engine not in SOURCE_ENGINES:
        raise SluicewayError(f"init: --engine must be one of {', '.join(SOURCE_ENGINES)}")
    if not request.password_env and not request.secret_id:
        raise SluicewayError(
            "init: give --password-env VAR or --secret-id ID (a password never goes on the "
            "command line)"
        )
    if request.password_env and not IDENTIFIER.match(request.password_env):
        # Never echoed: it may be a password given by mistake.
        raise SluicewayError("init: --password-env must name an environment variable")
    if not request.host and not request.secret_id:
        raise SluicewayError("init: give --host (or a --secret-id whose secret holds it)")
    return Connection(
        name=snake_name(request.database or "db"),
        engine=request.engine,
        host=request.host,
        port=request.port,
        database=request.database,
        user=request.user,
        password_env=request.password_env,
        secret_id=request.secret_id,
        max_connections=request.settings.max_connections,
        fetch_size=10_000,
        rows_per_partition=500_000,
    )


# init's flag for each connection key a credentials error can name: the user typed no spec.
_FLAGS = {
    "password_env": "--password-env",
    "secret_id": "--secret-id",
    "user": "--user",
    "host": "--host",
}


def _credentials(conn: Connection) -> Credentials:
    """The login, with an error placed at the option that gave it (not a spec key)."""
    try:
        return resolve_credentials(conn)
    except CredentialsError as exc:
        key = (exc.where or "").rsplit(".", 1)[-1]
        raise CredentialsError(exc.message, where=f"init {_FLAGS.get(key, key)}") from exc


def _schema(request: InitRequest, database: str | None) -> str:
    if request.engine == "postgresql":
        return request.schema or "public"
    if request.schema and request.schema != database:
        raise SluicewayError(
            f"init: --schema {request.schema}: a MySQL schema is its database; "
            "give it as --database"
        )
    if not database:
        raise SluicewayError("init: give --database (or a --secret-id whose secret has dbname)")
    return database


def _source(request: InitRequest, name: str) -> Source:
    return Source(
        name=name,
        engine=request.engine,
        host=request.host,
        port=request.port,
        database=request.database,
        user=request.user,
        password_env=request.password_env,
        secret_id=request.secret_id,
        schema=request.schema,
        max_connections=request.settings.max_connections,
    )


def _summary(
    where: str, schema: str, proposals: tuple[Proposal, ...], skipped: list[str], seconds: float
) -> str:
    kinds = Counter(p.table.kind for p in proposals)
    modes = Counter(p.mode.value for p in proposals)
    incremental = sum(1 for p in proposals if p.incremental_column)
    quantiles = sum(1 for p in proposals if p.split_strategy and p.split_strategy.value != "range")
    return (
        f"init: {where} schema {schema}: {_count(kinds['table'], 'table')}, "
        f"{_count(kinds['view'], 'view')} "
        f"({', '.join(f'{n} {m}' for m, n in sorted(modes.items()))}), "
        f"{incremental} incremental, {quantiles} quantile splits, {len(skipped)} skipped, "
        f"{seconds:.1f}s"
    )


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"
