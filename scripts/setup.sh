#!/usr/bin/env bash
# Set-up for both of the README's commands: Debian packages the book needs, then a venv with the
# pinned requirements and the experiments package (editable). Does nothing when all is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=_build/venv
# command:package pairs; a missing command means its Debian package is missing.
NEEDED="redis-server:redis-server redis-sentinel:redis-sentinel redis-cli:redis-tools
memcached:memcached memcaslap:libmemcached-tools chromium:chromium openssl:openssl"

missing=()
for pair in $NEEDED; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
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
    echo "setup: missing ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
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
