#!/usr/bin/env bash
# The demo, on a fresh machine: set-up, a local PostgreSQL with TPC-H (scale factor
# $SCALE, default 0.01), the demo pipeline under spark-submit, a batch of new and updated
# orders, and a second, incremental run that picks up only the change.
#   SCALE=0.1 scripts/demo.sh          OUTPUT=/tmp/demo scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
python3 scripts/services.py start postgres
source scripts/env.sh
source .run/services.env

export SLUICEWAY_TPCH_PASSWORD="$SLUICEWAY_PG_PASSWORD"
# Demo only: a real deployment takes the salt from a secret, never a default.
export SLUICEWAY_HASH_SALT="${SLUICEWAY_HASH_SALT:-sluiceway-demo-salt}"
output="${OUTPUT:-$PWD/out/tpch_demo}"
rm -rf "$output"

sluiceway demo load --scale "${SCALE:-0.01}" --port "$SLUICEWAY_PG_PORT"

submit() {
  spark-submit --master "local[*]" --jars "$(sluiceway jars path)" \
    --driver-memory "${SLUICEWAY_DRIVER_MEMORY:-2g}" \
    --driver-java-options "-Duser.timezone=UTC -Dlog4j2.configurationFile=file://$PWD/lib/sluiceway/runtimes/log4j2.properties" \
    --conf spark.ui.showConsoleProgress=false \
    jobs/local_batch.py pipelines/tpch_demo.toml --output "$output" "$@"
}

echo "==> run 1: full extract"
submit
sluiceway demo mutate --port "$SLUICEWAY_PG_PORT" --new-orders 100 --updated-orders 50
echo "==> run 2: incremental, only the change"
submit
echo "==> output under $output; state: sluiceway state show pipelines/tpch_demo.toml --output $output"
