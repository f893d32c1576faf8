# Sourced by the other scripts: picks Java 17, the venv for a PySpark line, and Spark's env.
#   SLUICEWAY_SPARK=3.5 (default) or 4.1 selects the PySpark line.
# shellcheck shell=bash
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SLUICEWAY_SPARK="${SLUICEWAY_SPARK:-3.5}"
case "$SLUICEWAY_SPARK" in
  3.5) PYSPARK_PIN="pyspark==3.5.8"; CONSTRAINTS="$ROOT/scripts/constraints-spark3.5.txt" ;;
  4.1) PYSPARK_PIN="pyspark==4.1.4"; CONSTRAINTS="$ROOT/scripts/constraints-spark4.txt" ;;
  *) echo "SLUICEWAY_SPARK must be 3.5 or 4.1, got '$SLUICEWAY_SPARK'" >&2; return 2 ;;
esac
export VENV="$ROOT/.venvs/spark-$SLUICEWAY_SPARK"

# Spark 3.5 and 4.x both run on Java 17; a newer JDK on PATH breaks Spark 3.5, so choose it.
if [ -z "${JAVA_HOME:-}" ] || ! "$JAVA_HOME/bin/java" -version 2>&1 | grep -q '"17\.'; then
  JAVA_HOME=""
  for candidate in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk* /usr/lib/jvm/temurin-17* /usr/lib/jvm/*17*; do
    if [ -x "$candidate/bin/java" ]; then JAVA_HOME="$candidate"; break; fi
  done
fi
export JAVA_HOME
export PATH="$VENV/bin:${JAVA_HOME:+$JAVA_HOME/bin:}$PATH"
export PYSPARK_PYTHON="$VENV/bin/python"
export PYSPARK_DRIVER_PYTHON="$VENV/bin/python"
export SPARK_LOCAL_IP=127.0.0.1
