#!/usr/bin/env bash
# A cold `./run`: a fresh clone with no .venv and empty installer caches, timed from the command to the
# "workflow-engine is running" banner, with uv (the default) and with pip (WORKFLOW_INSTALLER=pip), alternating.
# Usage: bench/cold_start.sh [ROUNDS]   (default 2; each round is one uv and one pip start, about a minute)
# Ports 18680/18695/15532/16479 must be free. Results: a table on stdout, the logs in $TMPDIR.
set -euo pipefail
rounds="${1:-2}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'pkill -TERM -f "bash ./run" 2>/dev/null || true; rm -rf "$work"' EXIT

one() {  # one cold start with installer $1; prints the seconds to the banner and to a ready .venv
  local installer="$1" dir="$work/$1-$2" log="$work/$1-$2.log"
  git clone -q "$repo" "$dir"
  local started pid
  started=$(date +%s.%N)
  (cd "$dir" && exec env UV_CACHE_DIR="$work/uv-cache-$1-$2" PIP_NO_CACHE_DIR=1 WORKFLOW_INSTALLER="$installer" \
    WORKFLOW_DATA_DIR="$dir/.data" HTTP_PORT=18680 METRICS_PORT=18695 \
    WORKFLOW_DEV_PG_PORT=15532 WORKFLOW_DEV_REDIS_PORT=16479 bash ./run >"$log" 2>&1) &
  pid=$!
  until grep -q "workflow-engine is running" "$log"; do
    kill -0 "$pid" 2>/dev/null || { echo "./run failed; its log's end:" >&2; tail -20 "$log" >&2; exit 1; }
    sleep 0.2
  done
  local total venv
  total=$(echo "$(date +%s.%N) - $started" | bc)
  venv=$(sed -n 's/^==> .venv ready in \([0-9]*\) s$/\1/p' "$log")
  printf '%-4s round %s   to banner %6.1f s   .venv %3s s\n' "$installer" "$2" "$total" "$venv"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true  # ./run stops its node and its servers
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
  one uv "$round"
  one pip "$round"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
