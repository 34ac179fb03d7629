#!/usr/bin/env bash
# The image workflow, narrated: build a busybox ACI, make a throwaway signing
# key, sign the image, trust the key, fetch, list, cat-manifest, and clean up.
# Everything lives in a temp dir (its own --dir and config dirs); nothing on
# the host is changed. Run it with `make demo` (which builds first).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

[ -f dist/rkt.js ] || { echo "demo: dist/rkt.js missing; run 'make demo' (it builds first)" >&2; exit 1; }
for tool in gpg tar /bin/busybox; do
  command -v "$tool" >/dev/null || { echo "demo: $tool missing; run 'make deps'" >&2; exit 1; }
done

DEMO=$(mktemp -d "${TMPDIR:-/tmp}/rkt-demo.XXXXXX")
export GNUPGHOME=$DEMO/gnupg
cleanup() {
  gpgconf --kill all >/dev/null 2>&1 || true
  rm -rf "$DEMO"
}
trap cleanup EXIT

if [ -t 1 ]; then B=$'\e[1m'; D=$'\e[2m'; R=$'\e[0m'; else B= D= R=; fi
step() { printf '\n%s== %s ==%s\n' "$B" "$*" "$R"; }
# Echo a command as the user would type it, then run it (output indented).
# Paths under the scratch dir are shown as $DEMO/...
show() {
  local cmd
  cmd=$(printf '%q ' "$@")
  printf '%s$ %s%s\n' "$B" "${cmd% }" "$R" | sed "s|$DEMO|\$DEMO|g"
  "$@" 2>&1 | sed -e "s|$DEMO|\$DEMO|g" -e 's/^/    /'
  return "${PIPESTATUS[0]}"
}
# `rkt` in this demo = bin/rkt with the demo's own data and config dirs.
rkt() {
  "$REPO/bin/rkt" --dir="$DEMO/data" --local-config="$DEMO/etc-rkt" --system-config="$DEMO/usr-lib-rkt" "$@"
}

NAME=example.com/demo/busybox
VERSION=1.0.0
ACI=$DEMO/busybox-$VERSION-linux-amd64.aci

printf '%sThis demo uses a scratch directory; "rkt" below means:%s\n' "$D" "$R"
printf '%s  bin/rkt --dir=$DEMO/data --local-config=$DEMO/etc-rkt --system-config=$DEMO/usr-lib-rkt%s\n' "$D" "$R"

step "1. Build a busybox ACI (Debian's static busybox + an appc image manifest)"
mkdir -p "$DEMO/aci/rootfs/bin" "$DEMO/aci/rootfs/etc"
cp /bin/busybox "$DEMO/aci/rootfs/bin/busybox"
/bin/busybox --list-full | while read -r applet; do
  case $applet in linuxrc|bin/busybox|'') continue ;; esac
  mkdir -p "$DEMO/aci/rootfs/$(dirname "$applet")"
  ln -s /bin/busybox "$DEMO/aci/rootfs/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$DEMO/aci/rootfs/etc/passwd"
printf 'root:x:0:\n' >"$DEMO/aci/rootfs/etc/group"
cat >"$DEMO/aci/manifest" <<EOF
{
  "acKind": "ImageManifest",
  "acVersion": "0.8.11",
  "name": "$NAME",
  "labels": [
    { "name": "version", "value": "$VERSION" },
    { "name": "os", "value": "linux" },
    { "name": "arch", "value": "amd64" }
  ],
  "app": { "exec": ["/bin/sh", "-c", "echo hello from busybox"], "user": "0", "group": "0" }
}
EOF
show tar --create --file="$ACI" --numeric-owner --owner=0 --group=0 --sort=name -C "$DEMO/aci" manifest rootfs
echo "    $(tar -tf "$ACI" | wc -l) entries, $(du -h "$ACI" | cut -f1): manifest + rootfs/ ($(tar -tf "$ACI" | sed -n '1,3p' | tr '\n' ' ')...)"

step "2. Make a throwaway OpenPGP key and sign the image (detached, armored: .aci.asc)"
mkdir -m 700 "$GNUPGHOME"
show gpg --batch --quiet --passphrase '' --quick-gen-key 'rkt demo <demo@example.com>' rsa2048 sign never
gpg --batch --quiet --armor --export demo@example.com >"$DEMO/pubkey.asc"
show gpg --batch --quiet --armor --detach-sign --output "$ACI.asc" "$ACI"
ls -l "$ACI" "$ACI.asc" | sed -e "s|$DEMO|\$DEMO|g" -e 's/^/    /'

step "3. An unsigned or untrusted image is refused"
echo "    (nothing is trusted yet, so the fetch fails with rkt's exit code 254)"
show rkt fetch "$ACI" || echo "    -> exit code $?"

step "4. Trust the key for the image's name prefix"
show rkt trust --prefix="$NAME" --skip-fingerprint-review "$DEMO/pubkey.asc"
find "$DEMO/etc-rkt/trustedkeys" -type f | sed "s|^$DEMO/|    \$DEMO/|"

step "5. Fetch: verify the signature, import into the content-addressed store, print the image ID"
show rkt fetch "$ACI"
ID=$(rkt fetch "$ACI" 2>/dev/null)

step "6. List the store"
show rkt image list
show rkt image list --format=json-pretty

step "7. Print the image manifest (by name or by ID)"
show rkt image cat-manifest "$NAME"
show rkt image cat-manifest --pretty-print=false "$ID"

step "8. Render the image's rootfs and look inside"
show rkt image render --rootfs-only "$ID" "$DEMO/rendered"
show ls "$DEMO/rendered" "$DEMO/rendered/bin/busybox"

step "9. Run the image in a pod (one OCI container via crun or runc, catatonit as PID 1, overlayfs rootfs)"
show rkt run --net=none "$NAME:$VERSION"
show rkt run --net=none "$NAME:$VERSION" --exec=/bin/sh -- -c 'echo "I am $(hostname), PID $$, uid $(id -u)"; exit 3' || echo "    -> exit code $? (the app's)"

step "10. Two apps in one pod share its PID namespace and localhost"
show rkt run --net=none "$NAME:$VERSION" --name=server --exec=/bin/sh -- -c 'httpd -p 127.0.0.1:8080 -h /etc && sleep 2' --- \
  "$NAME:$VERSION" --name=client --exec=/bin/sh -- -c 'sleep 0.3; wget -q -O - http://127.0.0.1:8080/passwd; ps -o pid,comm; exit 0'

step "11. The pods, their states and their logs"
show rkt list
UUID=$(rkt list --no-legend --full | awk 'NF && $1 ~ /-/ {u=$1} END {print u}')
show rkt status "$UUID"
show rkt logs "$UUID"

step "12. Garbage-collect the exited pods (containers, mounts, directories)"
show rkt gc --grace-period=0s

step "Done"
echo "    Removing the scratch dir (store, keys, images)."
