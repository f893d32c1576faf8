#!/usr/bin/env bash
# One-time (idempotent) set-up for a PySpark line: Java 17, Chromium, a venv with Sluiceway and
# its test tools, and the pinned JDBC jars. Usage: SLUICEWAY_SPARK=3.5|4.1 scripts/setup.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"

if [ -z "$JAVA_HOME" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing OpenJDK 17"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >/dev/null
    source "$(dirname "$0")/env.sh"
  fi
  [ -n "$JAVA_HOME" ] || { echo "Java 17 not found: install a JDK 17 and set JAVA_HOME" >&2; exit 1; }
fi

# Debian's Chromium opens `sluiceway view`'s page in the tests (headless, no network).
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing Chromium (for the page tests)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: chromium not found; the tests of \`sluiceway view\` will fail (apt-get install chromium)" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  python3 -m venv "$VENV"
fi
stamp="$VENV/.sluiceway-installed"
want="$(cat "$ROOT/pyproject.toml" "$CONSTRAINTS" | sha256sum | cut -c1-16)-$PYSPARK_PIN"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing $PYSPARK_PIN and Sluiceway into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -c "$CONSTRAINTS" "$PYSPARK_PIN" -e "$ROOT[test,demo]"
  echo "$want" > "$stamp"
fi
echo "==> fetching pinned jars"
"$VENV/bin/sluiceway" jars fetch
