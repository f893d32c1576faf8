#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs Java 17 if missing, a venv per PySpark
# line with the pinned jars, starts PostgreSQL and MariaDB, lints, then runs pytest on
# PySpark 3.5 and 4.1. Extra arguments go to pytest; SLUICEWAY_SPARK_LINES="3.5" runs one line.
set -uo pipefail
cd "$(dirname "$0")/.."
read -r -a lines <<< "${SLUICEWAY_SPARK_LINES:-3.5 4.1}"

python3 scripts/services.py start || { echo "could not start the test databases" >&2; exit 1; }
for line in "${lines[@]}"; do
  SLUICEWAY_BROWSER=1 SLUICEWAY_SPARK="$line" scripts/setup.sh || { echo "set-up failed for PySpark $line" >&2; exit 1; }
done

failed=()
echo "==> lint and types"
(
  export SLUICEWAY_SPARK="${lines[0]}"
  source scripts/env.sh
  # Only the directories this checkout has (ruff fails on a missing one).
  paths=()
  for dir in lib jobs tests scripts benchmarks; do [ -d "$dir" ] && paths+=("$dir"); done
  ruff check "${paths[@]}" &&
    ruff format --check "${paths[@]}" &&
    mypy
) || failed+=("lint")

# Every JVM a test starts (the session's, each spark-submit and CLI run in a subprocess) lives
# for seconds on a little data: the C2 compiler's work never pays back there. C1 only cut
# the entrypoint and parquet-kill tests from 107 s to 72 s on PySpark 3.5 (measured on this
# 2-core machine), and changes nothing Spark computes. Tests only: the demo and benchmarks
# keep the JVM's defaults. C1-only mode also shrinks the code cache to 48 MiB by default, which
# Spark 4.1 with Iceberg filled in CI ("Out of space in CodeCache for adapters"): keep the
# tiered default of 240 MiB.
export SPARK_SUBMIT_OPTS="${SPARK_SUBMIT_OPTS:+$SPARK_SUBMIT_OPTS }-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m"

# Tests marked spark_free cannot depend on the Spark line: they run with the first line only.
only_spark=()
for line in "${lines[@]}"; do
  echo "==> tests on PySpark $line${only_spark:+ (spark_free tests ran on ${lines[0]})}"
  (
    export SLUICEWAY_SPARK="$line"
    source scripts/env.sh
    source .run/services.env
    pytest -p no:cacheprovider --durations=25 "${only_spark[@]}" tests "$@"
  ) || failed+=("PySpark $line")
  only_spark=(-m "not spark_free")
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "==> all checks passed (PySpark ${lines[*]})"
