from __future__ import annotations

from sluiceway.iceberg_conf import ICEBERG_EXTENSIONS
from sluiceway.runtimes.local import with_iceberg_extensions


def test_iceberg_extensions_are_added_after_the_ones_spark_submit_was_given():
    assert with_iceberg_extensions("") == ICEBERG_EXTENSIONS
    assert with_iceberg_extensions(" a.B , c.D ") == f"a.B,c.D,{ICEBERG_EXTENSIONS}"


def test_iceberg_extensions_already_given_are_not_added_twice():
    given = f"{ICEBERG_EXTENSIONS},a.B"
    assert with_iceberg_extensions(given) == given
