from __future__ import annotations

from datetime import date, datetime

import pytest

from sluiceway.sources.jdbc import (
    DIALECTS,
    Watermark,
    _from_number,
    _literal,
    _to_number,
    _window_start,
)


@pytest.mark.parametrize(
    "kind, text",
    [
        ("int", "-42"),
        ("date", "1969-12-31"),
        ("date", "2024-02-29"),
        ("timestamp", "2024-03-31 01:30:00.123456"),
        ("timestamp", "1960-01-01 00:00:00"),
    ],
)
def test_numbers_round_trip_exactly(kind, text):
    number = _to_number(kind, text)
    back = _from_number(kind, number)
    assert _literal(kind, back) == _literal(kind, text)


def test_literals_are_typed_and_microsecond_exact():
    assert _literal("int", "12") == "12"
    assert _literal("date", "2024-01-05") == "DATE '2024-01-05'"
    assert (
        _literal("timestamp", "2024-01-05 10:00:00.5") == "TIMESTAMP '2024-01-05 10:00:00.500000'"
    )


def test_overlap_window_starts_before_the_watermark():
    assert _window_start(Watermark("timestamp", "2024-01-01 00:05:00"), 10, 0) == datetime(
        2023, 12, 31, 23, 55
    )
    assert _window_start(Watermark("date", "2024-01-02"), 10, 0) == date(
        2024, 1, 1
    )  # a day, rounded up
    # Integer cursors re-read the last overlap_ids values (a sequence value allocated
    # before the plan and committed after it); minutes do not apply to them.
    assert _window_start(Watermark("int", "100"), 10, 25) == 75
    assert _window_start(Watermark("int", "100"), 10, 0) == 100


def test_identifiers_are_quoted_per_engine():
    assert DIALECTS["postgresql"].quote("public.orders") == '"public"."orders"'
    assert DIALECTS["mysql"].quote("shop.orders") == "`shop`.`orders`"
