#!/usr/bin/env bash
# Runs every cargo-fuzz target for a while, starting from the committed corpus.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 60 seconds, all targets
#
#   SEASHELL_FUZZ_DEV=1    build without optimization: a much quicker build
#                          for short regression runs (the test suite's)
#
# Installs cargo-fuzz if it is missing. libFuzzer needs nightly compiler
# flags: a nightly toolchain is used when rustup has one, otherwise the stable
# compiler is asked to accept them (RUSTC_BOOTSTRAP), without sanitizers.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    run=(cargo +nightly fuzz run)
else
    export RUSTC_BOOTSTRAP=1
    run=(cargo fuzz run --sanitizer none)
fi

if [ "${SEASHELL_FUZZ_DEV:-0}" = 1 ]; then
    run+=(--dev)
fi

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "fuzzing $target for ${seconds}s"
    # New inputs go to a scratch directory; the committed corpus stays as it is
    # unless someone chooses to merge findings into it.
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    "${run[@]}" "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=8192 -print_final_stats=1
    rm -rf "$scratch"
done
