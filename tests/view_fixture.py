"""A spec with every kind of node `sluiceway view` draws, and run reports for it.

The reports are built from the pipeline's own RunReport/TableReport, so they have exactly
the shape a run writes; their numbers are made up (the integration tests chart real runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SPEC = """
[pipeline]
name = "shop"
output = "{output}"

[connections.src]
engine = "postgresql"
host = "db.internal"
database = "shop"
password_env = "SHOP_PASSWORD"

[connections.serving]
engine = "mysql"
host = "serving.internal"
password_env = "SERVING_PASSWORD"

[tables.orders]
connection = "src"
table = "public.orders"
primary_key = ["id"]
incremental_column = "updated_at"
quality = [{{ rule = "not_null", column = "customer_id" }}]
catalog = {{ database = "shop" }}
load = [{{ kind = "jdbc", connection = "serving", table = "orders" }}]

[tables.customers]
connection = "src"
table = "public.customers"
primary_key = ["id"]

[tables.customers.sink]
format = "iceberg"

[outputs.daily]
builder = "with_audit_columns"
inputs = ["orders"]

[outputs.top_customers]
builder = "with_audit_columns"
inputs = ["daily", "customers"]
"""

TABLES = ("orders", "customers")
OUTPUTS = ("daily", "top_customers")
EVIL = "<script>alert('x')</script> & more"


def write_spec(tmp_path: Path) -> Path:
    path = tmp_path / "shop.toml"
    path.write_text(SPEC.format(output=tmp_path / "out"), encoding="utf-8")
    return path


def reports(count: int = 4) -> list[dict[str, Any]]:
    """`count` runs: a full one, incremental ones, the last with a failed output."""
    from sluiceway.pipeline import RunReport, TableReport

    runs = []
    for i in range(count):
        failed = i == count - 1
        run = RunReport(
            "shop",
            f"2026120{i + 1}T000000Z-{i:06x}",
            f"2026-12-0{i + 1}T00:00:00+00:00",
            status="failed" if failed else "succeeded",
            seconds=20.0 + i,
            full_refresh=i == 0,
            error=EVIL if failed else None,
        )
        read = 100_000 if i == 0 else 150 * i
        run.tables = [
            TableReport(
                "orders",
                "table",
                status="written",
                rows_read=read,
                rows_written=read - 3,
                rows_quarantined=3,
                watermark_after={"kind": "timestamp", "value": f"2026-12-0{i + 1} 00:00:00"},
                seconds=4.0 + i,
            ),
            TableReport("customers", "table", status="unchanged" if i else "written", seconds=1.5),
            TableReport(
                "daily",
                "output",
                status="failed" if failed else "written",
                rows_written=0 if failed else 365,
                seconds=2.0,
                error=EVIL if failed else None,
            ),
        ]
        runs.append(run.to_json())
    return runs
