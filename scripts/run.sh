#!/usr/bin/env bash
# Builds Seashell and runs `seashell serve` on its embedded defaults
# (127.0.0.1:8080, SQLite in the data directory). Extra arguments go to
# `seashell serve`; see `seashell serve --help`.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || {
    echo "run.sh: cargo is missing: install Rust with rustup (https://rustup.rs)" >&2
    exit 1
}
cargo build --release --locked -p seashell
exec target/release/seashell serve "$@"
