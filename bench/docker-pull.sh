#!/usr/bin/env bash
# Pull + unpack of a multi-layer Docker image (>= 100 MB uncompressed) from a
# loopback docker-registry, in one run, interleaved:
#   rkt fetch docker://…            (download, verify, gunzip, unpack into the store)
#   skopeo copy … oci: + umoci unpack
#   podman pull (own graphroot), when podman is installed
#   gzip -dc LAYER | tar -x, layer by layer, to the same disk
# The image is built offline from host files (/usr/lib/python3*, /usr/share/perl,
# /usr/share/doc: 3 layers, ~240 MB, ~11k entries). Results on stdout (markdown).
# Knobs: BENCH_PULL_RUNS (5 rounds after a warm-up), BENCH_SCRATCH (/var/tmp/rkt-bench-pull).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
RUNS=${BENCH_PULL_RUNS:-5}
S=${BENCH_SCRATCH:-/var/tmp/rkt-bench-pull}
unset NODE_EXTRA_CA_CERTS RKT_EXTRA_CA_CERTS NODE_OPTIONS
for t in docker-registry skopeo umoci; do command -v $t >/dev/null || { echo "bench: needs $t" >&2; exit 1; }; done

rm -rf "$S"; mkdir -p "$S"/{oci/blobs/sha256,layers,reg}
REGPID=
cleanup() { [ -n "$REGPID" ] && kill "$REGPID" 2>/dev/null; rm -rf "$S"; }
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
  mkdir -p "$S/conf" "$S/podman"
  nproc=$(ulimit -Hu); pidmax=$(cat /proc/sys/kernel/pid_max); { [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pidmax" ]; } && nproc=$pidmax
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n' "$(ulimit -Hn)" "$(ulimit -Hn)" "$nproc" "$nproc" >"$S/conf/containers.conf"
  printf '[storage]\ndriver = "overlay"\nrunroot = "%s/podman/run"\ngraphroot = "%s/podman/root"\n' "$S" "$S" >"$S/conf/storage.conf"
  printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$PORT" >"$S/conf/registries.conf"
  export CONTAINERS_CONF=$S/conf/containers.conf CONTAINERS_STORAGE_CONF=$S/conf/storage.conf CONTAINERS_REGISTRIES_CONF=$S/conf/registries.conf
  PODMAN="podman pull -q $IMG"
fi

# --- measurements: interleaved rounds (A B C D, A B C D, …) so that load drift
# on this shared machine hits every side alike; each run starts from an empty
# target, after `sync` (the prepare step is not timed).
RKT="$REPO/bin/rkt --dir=$S/rkt --insecure-options=image,http fetch docker://$IMG"
UNTAR="for f in $S/layers/*.tar.gz; do gzip -dc \$f | tar -x -C $S/untar; done"
SKOPEO="skopeo --insecure-policy copy --quiet --src-tls-verify=false docker://$IMG oci:$S/sk:latest && umoci unpack --image $S/sk:latest $S/bundle"
names=(rkt gzip-tar skopeo-umoci); cmds=("$RKT" "$UNTAR" "$SKOPEO")
preps=("rm -rf $S/rkt" "rm -rf $S/untar; mkdir -p $S/untar" "rm -rf $S/sk $S/bundle")
if [ -n "$PODMAN" ]; then names+=(podman); cmds+=("$PODMAN"); preps+=("podman rmi -af >/dev/null 2>&1; rm -rf $S/podman/root; true"); fi
: >"$S/times"
for r in $(seq 0 "$RUNS"); do   # round 0 is a warm-up, not recorded
  for k in "${!names[@]}"; do
    sh -c "${preps[$k]}"; sync
    t0=$(date +%s%N)
    sh -c "${cmds[$k]}" >/dev/null 2>"$S/err" || { echo "bench: ${names[$k]} failed: $(tail -1 "$S/err")" >&2; exit 1; }
    t1=$(date +%s%N)
    [ "$r" -gt 0 ] && echo "$r ${names[$k]} $(((t1 - t0) / 1000000))" >>"$S/times"
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
EOF2
