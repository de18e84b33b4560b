#!/usr/bin/env bash
# Builds Seashell and runs `seashell serve` on its embedded defaults
# (127.0.0.1:8080, SQLite in the data directory, environments on the local
# runtime). As root on Debian it first installs the host packages
# environments need; the default environment image is built by the server
# when the first environment starts (a few minutes, once). Extra arguments
# go to `seashell serve`; see `seashell serve --help`.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup (https://rustup.rs)"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    scripts/install-runtime-deps.sh
else
    echo "run.sh: not root on Debian: the server runs, but environments need root and" \
        "the packages of scripts/install-runtime-deps.sh" >&2
fi
# The agent every environment runs as init: a static build.
SEASHELL_AGENT_BIN="$(scripts/build-agent.sh)"
export SEASHELL_AGENT_BIN
cargo build --release --locked -p seashell
exec target/release/seashell serve "$@"
