#!/usr/bin/env bash
# The demo, on a fresh machine: set-up, a local PostgreSQL with TPC-H (scale factor
# $SCALE, default 0.01), the demo pipeline under spark-submit, a batch of new and updated
# orders, and a second, incremental run that picks up only the change.
#   SCALE=0.1 scripts/demo.sh          OUTPUT=/tmp/demo scripts/demo.sh
#   scripts/demo.sh --s3  (or S3=1)    output, state and Glue tables on the local S3 endpoint
#   OUTPUT=s3://bucket/prefix AWS_PROFILE=p AWS_REGION=r scripts/demo.sh    real S3
# Silver and gold are Iceberg tables: in a hadoop catalog under the output on disk, in the
# Glue Data Catalog (--iceberg-catalog glue) when the output is on S3.
set -euo pipefail
cd "$(dirname "$0")/.."
local_s3="${S3:-}"
for arg in "$@"; do
  case "$arg" in
    --s3) local_s3=1 ;;
    *) echo "usage: scripts/demo.sh [--s3]" >&2; exit 2 ;;
  esac
done
scripts/setup.sh
source scripts/env.sh
if [ -n "$local_s3" ]; then
  python3 scripts/services.py start postgres moto
  # The local endpoint and its throwaway credentials, never a real account's.
  eval "$(python3 scripts/services.py env postgres moto)"
else
  python3 scripts/services.py start postgres
  # Only the database: AWS settings stay whatever this shell has (profile, region).
  eval "$(python3 scripts/services.py env postgres)"
fi

export SLUICEWAY_TPCH_PASSWORD="$SLUICEWAY_PG_PASSWORD"
# Demo only: a real deployment takes the salt from a secret, never a default.
export SLUICEWAY_HASH_SALT="${SLUICEWAY_HASH_SALT:-sluiceway-demo-salt}"
if [ -n "$local_s3" ]; then
  output="${OUTPUT:-s3://sluiceway-demo/tpch_demo}"
else
  output="${OUTPUT:-$PWD/out/tpch_demo}"
fi
first_run=()
catalog=()
case "$output" in
  s3://*|s3a://*)
    if [ -n "$local_s3" ]; then
      # The local endpoint is throwaway: create the bucket, clear what an earlier demo left.
      python - "$output" <<'PY'
import sys
from urllib.parse import urlsplit

import boto3

uri = urlsplit(sys.argv[1])
bucket = boto3.resource("s3").Bucket(uri.netloc)
if bucket.creation_date is None:
    bucket.create()
bucket.objects.filter(Prefix=uri.path.strip("/") + "/").delete()
PY
    fi
    # Nothing is deleted in a real bucket: the first run ignores earlier watermarks and
    # replaces the demo's datasets instead.
    first_run=(--full-refresh)
    catalog=(--iceberg-catalog glue)
    ;;
  *) rm -rf "$output" ;;
esac

sluiceway demo load --scale "${SCALE:-0.01}" --port "$SLUICEWAY_PG_PORT"
spec=pipelines/tpch_demo.toml
if [ "$SLUICEWAY_PG_PORT" != 25432 ]; then
  # SLUICEWAY_PORT_OFFSET moved this checkout's PostgreSQL: point the spec at it.
  spec="$(mktemp -d)/tpch_demo.toml"
  sed "s/^port = 25432\$/port = $SLUICEWAY_PG_PORT/" pipelines/tpch_demo.toml > "$spec"
fi

submit() {
  spark-submit --master "local[*]" --jars "$(sluiceway jars path)" \
    --driver-class-path "$(sluiceway jars classpath)" \
    --driver-memory "${SLUICEWAY_DRIVER_MEMORY:-2g}" \
    --driver-java-options "-Duser.timezone=UTC -Dlog4j2.configurationFile=file://$PWD/lib/sluiceway/runtimes/log4j2.properties" \
    --conf spark.ui.showConsoleProgress=false \
    jobs/local_batch.py "$spec" --output "$output" "${catalog[@]}" "$@"
}

echo "==> run 1: full extract"
submit "${first_run[@]}"
sluiceway demo mutate --port "$SLUICEWAY_PG_PORT" --new-orders 100 --updated-orders 50
echo "==> run 2: incremental, only the change"
submit
echo "==> output under $output; state: sluiceway state show $spec --output $output ${catalog[*]}"
