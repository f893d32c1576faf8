#!/usr/bin/env bash
# One-time (idempotent) set-up for a PySpark line: Java 17, a venv with Sluiceway and its test
# tools, the pinned JDBC jars, and for the tests Chromium.
# Usage: [SLUICEWAY_BROWSER=1] SLUICEWAY_SPARK=3.5|4.1 scripts/setup.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"

# Debian packages, without a prompt: as root, or through sudo when it needs no password
# (a CI runner's user). The package lists are updated once, before the first install.
apt_updated=""
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  command -v apt-get >/dev/null || return 1
  [ -z "$sudo" ] || sudo -n true 2>/dev/null || return 1
  if [ -z "$apt_updated" ]; then $sudo apt-get update -qq || return 1; apt_updated=1; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ -z "$JAVA_HOME" ]; then
  echo "==> installing OpenJDK 17"
  apt_install openjdk-17-jdk-headless && source "$(dirname "$0")/env.sh"
  [ -n "$JAVA_HOME" ] || { echo "Java 17 not found: install a JDK 17 and set JAVA_HOME" >&2; exit 1; }
fi

# Debian's Chromium opens `sluiceway view`'s page in the tests (headless, no network); only
# the tests ask for it (scripts/test.sh sets SLUICEWAY_BROWSER=1). The page tests fail
# (never skip) without it, so a test set-up that cannot install it fails too.
if [ "${SLUICEWAY_BROWSER:-}" = 1 ] && ! command -v chromium >/dev/null; then
  echo "==> installing Chromium (for the tests of \`sluiceway view\`)"
  apt_install chromium || {
    echo "Chromium not found and not installable here: install Debian's chromium package" >&2
    exit 1
  }
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
