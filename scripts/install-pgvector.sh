#!/usr/bin/env bash
# Builds and installs pgvector for the local PostgreSQL from Debian 13's source
# package. Debian 12 ships no pgvector for PostgreSQL 15; the trixie source builds
# cleanly against it. Does nothing when the extension is already installed.
set -euo pipefail

PG_CONFIG="${PG_CONFIG:-$(ls -d /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -n 1)}"
if [ -z "$PG_CONFIG" ] || [ ! -x "$PG_CONFIG" ]; then
  echo "install-pgvector: no pg_config found; install PostgreSQL first" >&2
  exit 1
fi
sharedir="$("$PG_CONFIG" --sharedir)"
if [ -f "$sharedir/extension/vector.control" ]; then
  echo "install-pgvector: pgvector already installed in $sharedir"
  exit 0
fi

pgmajor="$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # apt's download user must be able to write here

# A private apt configuration, so the machine's own sources stay untouched.
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/apt/sources.list.d"
cat > "$work/apt/sources.list.d/trixie-src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
: > "$work/apt/sources.list"
apt_private=(
  -o "Dir::Etc::SourceList=$work/apt/sources.list"
  -o "Dir::Etc::SourceParts=$work/apt/sources.list.d"
  -o "Dir::State::Lists=$work/apt/lists"
  -o "Dir::Cache=$work/apt/cache"
)

export DEBIAN_FRONTEND=noninteractive
needed=()
dpkg -s "postgresql-server-dev-$pgmajor" >/dev/null 2>&1 || needed+=("postgresql-server-dev-$pgmajor")
command -v dpkg-source >/dev/null 2>&1 || needed+=(dpkg-dev)
command -v make >/dev/null 2>&1 || needed+=(make)
command -v gcc >/dev/null 2>&1 || needed+=(gcc)
if [ "${#needed[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${needed[@]}" >/dev/null
fi
apt-get "${apt_private[@]}" update -qq
(cd "$work" && apt-get "${apt_private[@]}" source --download-only pgvector >/dev/null)
dsc="$(ls "$work"/pgvector_*.dsc | head -n 1)"
(cd "$work" && dpkg-source --no-check -x "$dsc" src >/dev/null)
make -s -C "$work/src" PG_CONFIG="$PG_CONFIG" >/dev/null
make -s -C "$work/src" PG_CONFIG="$PG_CONFIG" install >/dev/null
echo "install-pgvector: installed $(basename "$dsc" .dsc) for PostgreSQL $pgmajor"
