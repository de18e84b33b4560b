#!/usr/bin/env bash
# The whole Seashell test suite, as CI runs it: formatting, lints, every
# crate's tests (unit, integration, property, doc, benchmarks in test mode)
# and a short fuzzing run. Installs what it needs on Debian, or stops with a
# message naming what is missing.
#
#   scripts/test.sh            everything
#   SEASHELL_FUZZ_SECONDS=0    skip the fuzzing run (e.g. while iterating)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup (https://rustup.rs)"
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$component" || die "cargo ${component} is missing and could not be installed"
    fi
done

# The shared conformance data sits beside the repository.
if [ -z "${SEASHELL_CONFORMANCE_DIR:-}" ]; then
    [ -f ../shared/conformance/seed-policies.json ] ||
        die "../shared/conformance/seed-policies.json is missing (or set SEASHELL_CONFORMANCE_DIR)"
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "host packages"
    scripts/install-runtime-deps.sh
else
    die "run as root on Debian: the suite runs real containers and a PostgreSQL server"
fi

# A clean run's builds take about 9 GiB (target/ 5.8, fuzz/target/ 3.1,
# measured), its images and homes a little more; a linker that runs out of
# space dies with SIGBUS, which says nothing about the cause, so check first.
need_gib=12
free_gib=$(( $(df --output=avail -k . | tail -n 1) / 1024 / 1024 ))
[ "$free_gib" -ge "$need_gib" ] ||
    die "only ${free_gib} GiB free on $(df --output=target . | tail -n 1); the suite needs about ${need_gib} GiB for its builds"
# Incremental caches only help a rebuild of the same tree; a clean run pays
# their disk and time for nothing.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

say "PostgreSQL, the AWS clients, schemathesis and the static agent"
SEASHELL_TEST_POSTGRES_URL="$(scripts/postgres.sh)"
SEASHELL_TEST_AWS_BIN="$(scripts/aws-clients.sh)"
SEASHELL_TEST_SCHEMATHESIS="$(scripts/schemathesis.sh)"
# Every test that runs environments uses this one static build.
SEASHELL_AGENT_BIN="$(scripts/build-agent.sh)"
export SEASHELL_TEST_POSTGRES_URL SEASHELL_TEST_AWS_BIN SEASHELL_TEST_SCHEMATHESIS SEASHELL_AGENT_BIN

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "cargo test"
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
cargo test --workspace --all-targets --locked 2>&1 | tee -a "$results"
cargo test --workspace --doc --locked 2>&1 | tee -a "$results"

fuzz_seconds="${SEASHELL_FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" != 0 ]; then
    say "fuzzing (${fuzz_seconds}s per target)"
    # An unoptimized build: the suite's runs are short regression runs over
    # the committed corpora, and the optimized build of the server's
    # dependencies with sanitizers would cost more than the runs.
    SEASHELL_FUZZ_DEV=1 scripts/fuzz.sh "$fuzz_seconds"
fi

say "all tests passed"
# One closing line for the whole suite, summing every test binary's result.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$results"
