#!/usr/bin/env bash
# Builds seashell-agent as a static binary, ready to be bind-mounted into
# environments whatever their image's C library, and prints its path.
#
#   scripts/build-agent.sh            release build for x86_64-unknown-linux-gnu
#   SEASHELL_AGENT_TARGET=...         another installed glibc target
#   SEASHELL_AGENT_PROFILE=dev        a debug build (faster to compile)
#
# The binary is linked statically against glibc (`+crt-static`). That is
# safe for the agent because it never resolves user or host names through
# NSS: it runs shells by numeric uid/gid and binds numeric addresses. The
# musl target would do as well, where it is installed.
#
# The target is always passed explicitly, so RUSTFLAGS apply to the agent
# only and not to build scripts and procedural macros, which must stay
# dynamic to be loaded by the compiler.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'build-agent.sh: %s\n' "$*" >&2; exit 1; }

target="${SEASHELL_AGENT_TARGET:-x86_64-unknown-linux-gnu}"
profile="${SEASHELL_AGENT_PROFILE:-release}"
case "$profile" in
    release) dir=release ;;
    dev) dir=debug ;;
    *) dir="$profile" ;;
esac

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
    die "the Rust target $target is not installed (rustup target add $target)"
fi

RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build -p seashell-agent --profile "$profile" --target "$target" >&2

# Where cargo put it: CARGO_TARGET_DIR (relative to here, as for cargo) or
# the workspace's target directory.
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in
    /*) ;;
    *) target_dir="$PWD/$target_dir" ;;
esac
bin="$target_dir/$target/$dir/seashell-agent"
[ -x "$bin" ] || die "the build produced no $bin"

# Check that nothing is loaded at run time.
if command -v file >/dev/null; then
    description="$(file -b "$bin")"
    printf 'file: %s\n' "$description" >&2
    case "$description" in
        *"dynamically linked"*) die "$bin is dynamically linked" ;;
    esac
fi
if command -v ldd >/dev/null; then
    if ldd_out="$(ldd "$bin" 2>&1)"; then
        case "$ldd_out" in
            *"statically linked"*) ;;
            *) die "ldd lists shared libraries for $bin: $ldd_out" ;;
        esac
    fi
    printf 'ldd: %s\n' "$(ldd "$bin" 2>&1 | head -n1 | sed 's/^[[:space:]]*//')" >&2
fi

printf '%s\n' "$bin"
