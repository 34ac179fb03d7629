#!/usr/bin/env bash
# Pull + unpack of a multi-layer Docker image (>= 100 MB uncompressed) from a
# loopback docker-registry, in one run, interleaved:
#   rkt fetch docker://…            (download, verify, gunzip, unpack into the store)
#   skopeo copy … oci: + umoci unpack
#   podman pull (own graphroot), when podman is installed
#   gzip -dc LAYER | tar -x, layer by layer, to the same disk
# Every side writes into a fresh ext4 file system made in a file on that disk
# (see below why), each run into a new directory; each round starts with
# another side. Needs root (loop mount); podman is optional.
# The image is built offline from host files (/usr/lib/python3*, /usr/share/perl,
# /usr/share/doc: 3 layers, ~240 MB, ~11k entries). Results on stdout (markdown).
# Knobs: BENCH_PULL_RUNS (5 rounds after a warm-up), BENCH_SCRATCH (/var/tmp/rkt-bench-pull).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
RUNS=${BENCH_PULL_RUNS:-5}
S=${BENCH_SCRATCH:-/var/tmp/rkt-bench-pull}
unset NODE_EXTRA_CA_CERTS RKT_EXTRA_CA_CERTS NODE_OPTIONS
for t in docker-registry skopeo umoci mkfs.ext4; do command -v $t >/dev/null || { echo "bench: needs $t" >&2; exit 1; }; done

rm -rf "$S"; mkdir -p "$S"/{oci/blobs/sha256,layers,reg}
REGPID=
# skopeo and podman keep a blob-info cache in /var/lib/containers/cache when
# run as root: removed at the end if this run made it.
BIC=/var/lib/containers/cache; BIC_NEW=; [ -e "$BIC" ] || BIC_NEW=1
cleanup() {
  [ -n "$REGPID" ] && kill "$REGPID" 2>/dev/null
  if [ -n "$BIC_NEW" ]; then rm -rf "$BIC"; rmdir /var/lib/containers 2>/dev/null || true; fi
  # podman's overlay driver may leave its graphroot mounted.
  awk -v s="$S/" 'index($5, s) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
  if mountpoint -q "$S/out" 2>/dev/null; then umount "$S/out" || umount -l "$S/out"; fi
  rm -rf "$S"
}
trap cleanup EXIT

# --- image: three gzip layers from host files, OCI layout written by hand -----
diffs=(); layers=()
i=0
for dirs in "usr/lib/python3.11 usr/lib/python3" "usr/share/perl" "usr/share/doc"; do
  tar --sort=name --numeric-owner -C / -cf "$S/layers/$i.tar" $dirs
  d=$(sha256sum "$S/layers/$i.tar" | cut -d' ' -f1); diffs+=("\"sha256:$d\"")
  gzip -1 -c "$S/layers/$i.tar" >"$S/layers/$i.tar.gz"
  g=$(sha256sum "$S/layers/$i.tar.gz" | cut -d' ' -f1); cp "$S/layers/$i.tar.gz" "$S/oci/blobs/sha256/$g"
  layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$g\",\"size\":$(stat -c %s "$S/layers/$i.tar.gz")}")
  i=$((i + 1))
done
uncompressed=$(cat "$S"/layers/*.tar | wc -c); compressed=$(cat "$S"/layers/*.tar.gz | wc -c)
entries=$(for f in "$S"/layers/*.tar; do tar -tf "$f"; done | wc -l)
rm -f "$S"/layers/*.tar
cfg="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/bin/sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$(IFS=,; echo "${diffs[*]}")]}}"
printf '%s' "$cfg" >"$S/cfg"; c=$(sha256sum "$S/cfg" | cut -d' ' -f1); mv "$S/cfg" "$S/oci/blobs/sha256/$c"
man="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$c\",\"size\":${#cfg}},\"layers\":[$(IFS=,; echo "${layers[*]}")]}"
printf '%s' "$man" >"$S/man"; m=$(sha256sum "$S/man" | cut -d' ' -f1); msize=$(stat -c %s "$S/man"); mv "$S/man" "$S/oci/blobs/sha256/$m"
echo '{"imageLayoutVersion":"1.0.0"}' >"$S/oci/oci-layout"
echo "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$m\",\"size\":$msize,\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}" >"$S/oci/index.json"

# --- registry ---------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$S/reg/config.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $S/reg/data}}
http: {addr: 127.0.0.1:$PORT}
EOF
docker-registry serve "$S/reg/config.yml" >"$S/reg/log" 2>&1 & REGPID=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
IMG=127.0.0.1:$PORT/big:latest
skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$S/oci:latest" "docker://$IMG"

# --- podman config (as in the peers' scripts): own storage, no systemd ----------
PODMAN=
if command -v podman >/dev/null; then
  mkdir -p "$S/conf"
  nproc=$(ulimit -Hu); pidmax=$(cat /proc/sys/kernel/pid_max); { [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pidmax" ]; } && nproc=$pidmax
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n' "$(ulimit -Hn)" "$(ulimit -Hn)" "$nproc" "$nproc" >"$S/conf/containers.conf"
  printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$PORT" >"$S/conf/registries.conf"
  export CONTAINERS_CONF=$S/conf/containers.conf CONTAINERS_REGISTRIES_CONF=$S/conf/registries.conf
  PODMAN=1
fi

# --- measurements: interleaved rounds (A B C D, A B C D, …) so that load drift
# on this shared machine hits every side alike. Every run writes to a fresh
# target and nothing is deleted until the end: on ext4 without a journal (this
# VM's disk), creating inodes within ~30 s of deleting many scans past every
# recently deleted one for minutes (recently_deleted() in ext4's inode
# allocator), which made whichever side ran after a big `rm -rf` up to 3x slower.
cmd_for() { # name round
  case $1 in
    rkt) echo "$REPO/bin/rkt --dir=$S/out/rkt.$2 --insecure-options=image,http fetch docker://$IMG" ;;
    gzip-tar) echo "mkdir -p $S/out/untar.$2 && for f in $S/layers/*.tar.gz; do gzip -dc \$f | tar -x -C $S/out/untar.$2; done" ;;
    skopeo-umoci) echo "skopeo --insecure-policy copy --quiet --src-tls-verify=false docker://$IMG oci:$S/out/sk.$2:latest && umoci unpack --image $S/out/sk.$2:latest $S/out/bundle.$2" ;;
    podman)
      printf '[storage]\ndriver = "overlay"\nrunroot = "%s/out/podman.%s/run"\ngraphroot = "%s/out/podman.%s/root"\n' "$S" "$2" "$S" "$2" >"$S/conf/storage.$2.conf"
      echo "CONTAINERS_STORAGE_CONF=$S/conf/storage.$2.conf podman pull -q $IMG" ;;
  esac
}
names=(rkt gzip-tar skopeo-umoci); [ -n "$PODMAN" ] && names+=(podman)
# Targets: a fresh ext4 (with a journal, inode tables initialised up front so
# no lazy-init thread runs meanwhile) in a file on the same disk, so that no
# earlier deletes on the host's file system weigh on any side.
truncate -s 16G "$S/out.img"
mkfs.ext4 -q -F -N 600000 -E lazy_itable_init=0,lazy_journal_init=0 "$S/out.img"
mkdir -p "$S/out"; mount -o loop,noatime "$S/out.img" "$S/out"
: >"$S/times"
for r in $(seq 0 "$RUNS"); do   # round 0 is a warm-up, not recorded
  # Each round starts with another side, so that none always runs right
  # after the same one (whose writeback or page cache it would inherit).
  order=("${names[@]:r % ${#names[@]}}" "${names[@]:0:r % ${#names[@]}}")
  for n in "${order[@]}"; do
    c=$(cmd_for "$n" "$r"); sync
    t0=$(date +%s%N)
    sh -c "$c" >/dev/null 2>"$S/err" || { echo "bench: $n failed: $(tail -1 "$S/err")" >&2; exit 1; }
    t1=$(date +%s%N)
    [ "$r" -gt 0 ] && echo "$r $n $(((t1 - t0) / 1000000))" >>"$S/times"
  done
  echo "bench: round $r done" >&2
done

echo "| image: 3 layers, $((compressed / 1000000)) MB gzip, $((uncompressed / 1000000)) MB tar, $entries entries; $RUNS interleaved rounds; load $(cut -d' ' -f1-3 /proc/loadavg) |"
echo "|---|---|"
python3 - "$S/times" <<'EOF2'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
t = {}
for r, n, ms in rows: t.setdefault(n, {})[int(r)] = int(ms)
base = t['gzip-tar']
for n, v in t.items():
    ratio = st.median(v[r] / base[r] for r in v)
    print(f"| {n} | median {st.median(v.values()):.0f} ms (min {min(v.values())}, max {max(v.values())}); median per-round ratio to gzip-tar {ratio:.2f} |")
if 'podman' in t:
    p = t['podman']
    print(f"| rkt / podman | median per-round ratio {st.median(t['rkt'][r] / p[r] for r in p):.2f} |")
EOF2
