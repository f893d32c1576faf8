"""sluiceway.report: the terminal output the CLI and the job runner share."""

from __future__ import annotations

from sluiceway.pipeline import RunReport, TableReport
from sluiceway.report import print_error, print_summary, print_table_progress


def _report() -> RunReport:
    orders = TableReport("orders", "table", status="written", rows_read=12, rows_written=10)
    orders.rows_quarantined, orders.seconds, orders.path = 2, 1.25, "/out/orders"
    orders.partitions = [{"p": "1"}, {"p": "2"}]
    mart = TableReport("mart", "output", status="unchanged", path="/out/mart")
    return RunReport("demo", "r1", "2026-01-01T00:00:00Z", "succeeded", 3.0, tables=[orders, mart])


def test_summary_is_one_aligned_line_per_dataset_then_the_totals(capsys):
    print_summary(_report())

    assert capsys.readouterr().out.splitlines() == [
        "  table   status     read  written  quarantined  partitions  seconds  path",
        "  orders  written    12    10       2            2           1.2      /out/orders",
        "  mart    unchanged  0     0        0            0           0.0      /out/mart",
        "run r1: succeeded, 2 datasets, 10 rows written, 3.0s",
    ]


def test_progress_goes_to_stdout_and_the_error_line_to_stderr(capsys):
    print_table_progress(_report().tables[0])
    print_error("x.toml: tables.orders: boom")

    out, err = capsys.readouterr()
    assert out == "  orders: written, 10 rows, 2 partitions, 1.2s\n"
    assert err == "sluiceway: error: x.toml: tables.orders: boom\n"


def test_an_iceberg_commit_is_shown_under_the_table_with_rows_and_files_in_and_out(capsys):
    report = _report()
    report.tables[0].commit = {
        "snapshot_id": 42,
        "added-records": 9,
        "deleted-records": 0,
        "added-data-files": 2,
        "deleted-data-files": 0,
        "added-delete-files": 1,
        "removed-delete-files": 0,
    }
    print_summary(report)

    lines = capsys.readouterr().out.splitlines()
    assert lines[3:] == [
        "  orders: iceberg snapshot 42: +9/-0 rows, +2/-0 data files, +1/-0 delete files",
        "run r1: succeeded, 2 datasets, 10 rows written, 3.0s",
    ]


def test_an_iceberg_tables_progress_line_shows_its_commit_not_partitions(capsys):
    item = TableReport("orders", "table", status="written", rows_written=10, seconds=1.2)
    item.commit = {
        "snapshot_id": 42,
        "added-records": 10,
        "deleted-records": 3,
        "added-data-files": 2,
        "deleted-data-files": 1,
        "added-delete-files": 0,
        "removed-delete-files": 0,
    }
    print_table_progress(item)
    out = capsys.readouterr().out
    assert out == (
        "  orders: written, 10 rows, iceberg snapshot 42: +10/-3 rows, +2/-1 data files, "
        "+0/-0 delete files, 1.2s\n"
    )
