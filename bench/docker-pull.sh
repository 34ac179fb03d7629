#!/usr/bin/env bash
# Pull + unpack of a multi-layer Docker image (>= 100 MB uncompressed) from a
# loopback docker-registry, in one run, interleaved:
#   rkt fetch docker://…            (download, verify, gunzip, unpack into the store)
#   skopeo copy … oci: + umoci unpack
#   podman pull (own graphroot), when podman is installed
#   gzip -dc LAYER | tar -x, layer by layer, to the same disk
# The image is built offline from host files (/usr/lib/python3*, /usr/share/perl,
# /usr/share/doc: 3 layers, ~240 MB, ~11k entries). Results on stdout (markdown).
# Knobs: BENCH_PULL_RUNS (5), BENCH_SCRATCH (/var/tmp/rkt-bench-pull).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
RUNS=${BENCH_PULL_RUNS:-5}
S=${BENCH_SCRATCH:-/var/tmp/rkt-bench-pull}
unset NODE_EXTRA_CA_CERTS RKT_EXTRA_CA_CERTS NODE_OPTIONS
command -v hyperfine >/dev/null || { echo "bench: needs hyperfine" >&2; exit 1; }
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

# --- measurements (hyperfine; prepare empties the target before every run) ---
RKT="$REPO/bin/rkt --dir=$S/rkt --insecure-options=image,http fetch docker://$IMG"
UNTAR="for f in $S/layers/*.tar.gz; do gzip -dc \$f | tar -x -C $S/untar; done"
SKOPEO="skopeo --insecure-policy copy --quiet --src-tls-verify=false docker://$IMG oci:$S/sk:latest && umoci unpack --image $S/sk:latest $S/bundle >/dev/null"
args=(--runs "$RUNS" --warmup 1 --export-json "$S/r.json"
  --prepare "sync; rm -rf $S/rkt" -n rkt "$RKT"
  --prepare "sync; rm -rf $S/untar; mkdir -p $S/untar" -n gzip-tar "$UNTAR"
  --prepare "sync; rm -rf $S/sk $S/bundle" -n skopeo-umoci "$SKOPEO")
if [ -n "$PODMAN" ]; then args+=(--prepare "sync; podman rmi -af >/dev/null 2>&1; rm -rf $S/podman/root; true" -n podman "$PODMAN"); fi
hyperfine "${args[@]}" >&2

echo "| image | layers 3, $((compressed / 1000000)) MB gzip, $((uncompressed / 1000000)) MB tar, $entries entries |"
echo "|---|---|"
python3 - "$S/r.json" <<'EOF'
import json, sys
r = {x['command']: x for x in json.load(open(sys.argv[1]))['results']}
base = r['gzip-tar']['median']
for k, x in r.items():
    print(f"| {k} | median {x['median']*1000:.0f} ms (min {x['min']*1000:.0f}, max {x['max']*1000:.0f}, n={len(x['times'])}); {x['median']/base:.2f}x gzip-tar |")
EOF
