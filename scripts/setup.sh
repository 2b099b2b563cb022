#!/usr/bin/env bash
# Set-up for both of the README's commands: Debian packages the book needs, then a venv with the
# pinned requirements and the experiments package (editable). Does nothing when all is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=_build/venv
# command:package pairs; a missing command means its Debian package is missing.
NEEDED="redis-server:redis-server redis-sentinel:redis-sentinel redis-cli:redis-tools
memcached:memcached memcaslap:libmemcached-tools chromium:chromium openssl:openssl
ip:iproute2 tc:iproute2 nft:nftables"

# Valkey 8 is only in Debian's bookworm-backports suite: those three packages come from there (the
# `package/suite` form takes nothing else from it); redis-server stays Debian's own.
BACKPORTED="valkey-server:valkey-server valkey-sentinel:valkey-sentinel valkey-cli:valkey-tools"
BACKPORTS_LIST=/etc/apt/sources.list.d/bookworm-backports.sources

missing=()
for pair in $NEEDED; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
for pair in $BACKPORTED; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}/bookworm-backports")
done
stamp=$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
need_venv=no
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$stamp" ]; then
  need_venv=yes
  # Debian's python3 imports `venv` and `ensurepip` fine but cannot create a venv without the
  # python3-venv package, so only a real attempt tells.
  probe=$(mktemp -d)
  python3 -m venv "$probe/venv" >/dev/null 2>&1 || missing+=(python3-venv)
  rm -rf "$probe"
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt_get=(apt-get)
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null && command -v apt-get >/dev/null; then
    apt_get=(sudo -n apt-get)
  else
    echo "setup: missing ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]} (a /bookworm-backports package needs that suite in apt's sources)" >&2
    exit 1
  fi
  if [[ " ${missing[*]}" == *"/bookworm-backports"* ]] && ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    if [ "$(. /etc/os-release && echo "${VERSION_CODENAME:-}")" != bookworm ]; then
      echo "setup: Valkey 8 comes from Debian bookworm-backports and this is not bookworm; install valkey-server, valkey-sentinel and valkey-tools 8.x yourself" >&2
      exit 1
    fi
    echo "setup: adding Debian's bookworm-backports suite to apt (for Valkey only) in $BACKPORTS_LIST"
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      | if [ "$(id -u)" = 0 ]; then cat > "$BACKPORTS_LIST"; else sudo -n tee "$BACKPORTS_LIST" >/dev/null; fi
  fi
  echo "setup: installing ${missing[*]} with apt-get"
  "${apt_get[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq "${missing[@]}" >/dev/null
fi

if [ "$need_venv" = yes ]; then
  echo "setup: creating $VENV with the pinned requirements"
  python3 -m venv "$VENV"
  # (pip's notes about this machine's unused local indexes are filtered out; real errors are not)
  "$VENV/bin/pip" install -q -r requirements.txt 2> >(grep -v '^WARNING: Location' >&2)
  "$VENV/bin/pip" install -q --no-deps -e . 2> >(grep -v '^WARNING: Location' >&2)
  rm -rf experiments.egg-info build
  echo "$stamp" > "$VENV/.stamp"
fi
