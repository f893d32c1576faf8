#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs Java 17 if missing, a venv per PySpark
# line with the pinned jars, starts PostgreSQL and MariaDB, then runs pytest on PySpark 3.5
# and 4.1. Extra arguments go to pytest. SLUICEWAY_SPARK_LINES="3.5" runs one line only.
set -uo pipefail
cd "$(dirname "$0")/.."

python3 scripts/services.py start || { echo "could not start the test databases" >&2; exit 1; }

failed=()
for line in ${SLUICEWAY_SPARK_LINES:-3.5 4.1}; do
  echo "==> PySpark $line"
  if ! SLUICEWAY_SPARK="$line" scripts/setup.sh; then
    failed+=("$line (setup)")
    continue
  fi
  (
    export SLUICEWAY_SPARK="$line"
    source scripts/env.sh
    source .run/services.env
    pytest -p no:cacheprovider tests "$@"
  ) || failed+=("$line")
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED on PySpark: ${failed[*]}" >&2
  exit 1
fi
echo "==> all tests passed on PySpark ${SLUICEWAY_SPARK_LINES:-3.5 4.1}"
