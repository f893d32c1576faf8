"""Small helpers for integration tests: talk to the real test databases, write specs."""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Db:
    engine: str  # "postgresql" | "mysql"
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    password_env: str

    def libpq_conninfo(self, database: str | None = None) -> str:
        """A libpq/psycopg connection string (PostgreSQL only)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
            connect_timeout=5,
        )

    def execute(self, *statements: str, params: list[tuple] | None = None) -> None:
        """Run statements in one transaction; `params` makes the last one an executemany."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                for i, sql in enumerate(statements):
                    if params is not None and i == len(statements) - 1:
                        cur.executemany(sql, params)
                    else:
                        cur.execute(sql)
            conn.commit()
        finally:
            conn.close()

    def query(self, sql: str) -> list[tuple]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())
        finally:
            conn.close()

    def connect(self):
        if self.engine == "postgresql":
            import psycopg

            return psycopg.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                dbname=self.database,
                connect_timeout=5,
            )
        import pymysql

        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database,
            charset="utf8mb4",
            connect_timeout=5,
        )

    def connection_toml(self, name: str = "db", **extra: object) -> str:
        lines = [
            f"[connections.{name}]",
            f'engine = "{self.engine}"',
            f'host = "{self.host}"',
            f"port = {self.port}",
            f'database = "{self.database}"',
            f'user = "{self.user}"',
            f'password_env = "{self.password_env}"',
        ]
        lines += [
            f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in extra.items()
        ]
        return "\n".join(lines) + "\n"


def pg() -> Db:
    return Db(
        "postgresql",
        os.environ.get("SLUICEWAY_PG_HOST", "127.0.0.1"),
        int(os.environ.get("SLUICEWAY_PG_PORT", "25432")),
        os.environ.get("SLUICEWAY_PG_USER", "sluiceway"),
        os.environ.get("SLUICEWAY_PG_PASSWORD", "sluiceway-local"),
        os.environ.get("SLUICEWAY_PG_DB", "sluiceway_test"),
        "SLUICEWAY_PG_PASSWORD",
    )


def mysql() -> Db:
    return Db(
        "mysql",
        os.environ.get("SLUICEWAY_MYSQL_HOST", "127.0.0.1"),
        int(os.environ.get("SLUICEWAY_MYSQL_PORT", "23306")),
        os.environ.get("SLUICEWAY_MYSQL_USER", "sluiceway"),
        os.environ.get("SLUICEWAY_MYSQL_PASSWORD", "sluiceway-local"),
        os.environ.get("SLUICEWAY_MYSQL_DB", "sluiceway_test"),
        "SLUICEWAY_MYSQL_PASSWORD",
    )


def write_spec(
    tmp_path: Path, db: Db, body: str, name: str = "t", connection_extra: dict | None = None
) -> Path:
    """A spec with one connection `db`, output and state under tmp_path, plus `body`."""
    os.environ.setdefault(db.password_env, db.password)
    text = (
        f'[pipeline]\nname = "{name}"\noutput = "{tmp_path / "out"}"\n\n'
        + db.connection_toml("db", **(connection_extra or {}))
        + "\n"
        + textwrap.dedent(body)
    )
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path
