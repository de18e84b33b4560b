#!/usr/bin/env bash
# Builds the default environment image with `seashell image build` and checks
# that the promised tools work in it, by running them in a chroot.
#
#   sudo scripts/build-default-image.sh [OUTPUT_DIR] [BUILD_ARGS…]
#
# OUTPUT_DIR defaults to the CLI's own default, $SEASHELL_DATA_DIR (else
# /var/lib/seashell)/images/default. BUILD_ARGS go to `seashell image build`
# (for example --force or --mirror URL). SEASHELL_BIN selects the binary;
# without it the script builds target/debug/seashell. Takes a few minutes
# and downloads about 170 MB of packages; an existing image is reused.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "build-default-image.sh: must run as root (debootstrap and chroot need it)" >&2
    exit 1
fi

output=${1:-${SEASHELL_DATA_DIR:-/var/lib/seashell}/images/default}
shift || true

bin=${SEASHELL_BIN:-}
if [ -z "$bin" ]; then
    cargo build --quiet -p seashell
    bin=target/debug/seashell
fi

start=$(date +%s)
"$bin" image build --output "$output" "$@"
elapsed=$(($(date +%s) - start))

# Runs a command inside the image with a clean environment, as root or as
# cloudshell-user.
in_image() {
    chroot "$output" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 "$@"
}
as_user() {
    chroot --userspec=1000:1000 "$output" /usr/bin/env -i \
        PATH=/usr/local/bin:/usr/bin:/bin HOME=/home/cloudshell-user LANG=C.UTF-8 "$@"
}

failed=0
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
check() {
    local what=$1
    shift
    local out
    if out=$("$@" 2>"$errors"); then
        printf 'ok    %-28s %s\n' "$what" "$(printf '%s' "$out" | head -n 1)"
    else
        printf 'FAIL  %-28s %s\n' "$what" "$(cat "$errors" | tail -n 3 | tr '\n' ' ')"
        failed=1
    fi
}

echo "Checking $output"
check "bash --version" in_image bash --version
check "python3 -c 'import boto3'" in_image python3 -c 'import boto3; print("boto3", boto3.__version__)'
check "aws --version" in_image aws --version
check "node --version" in_image node --version
check "npm --version" in_image npm --version
check "sudo -l -U cloudshell-user" in_image sh -c 'sudo -l -U cloudshell-user | grep -F "(ALL : ALL) NOPASSWD: ALL"'
check "sudo as cloudshell-user" as_user sudo -n id -un
check "id cloudshell-user" in_image sh -c 'id cloudshell-user && test "$(id -u cloudshell-user)" = 1000'
check "home directory" in_image sh -c 'test "$(getent passwd cloudshell-user | cut -d: -f6,7)" = /home/cloudshell-user:/bin/bash && echo /home/cloudshell-user'
check "sudoers mode 0440" in_image stat -c %a /etc/sudoers.d/cloudshell-user
for tool in zsh git make pip3 vim nano tmux jq curl wget zip unzip tar ps ping ssh psql man less; do
    check "$tool" in_image sh -c "command -v $tool"
done
check "python3 -m venv" in_image sh -c 'python3 -m venv /tmp/venv-check && rm -rf /tmp/venv-check && echo venv ok'
check "man page of git" in_image sh -c 'man -w git'
check "/etc/seashell-image" in_image sh -c 'tr "\n" " " < /etc/seashell-image'

echo "Size: $(du -sh "$output" | cut -f1)  Build time: ${elapsed} s"
if [ "$failed" -ne 0 ]; then
    echo "build-default-image.sh: some checks failed" >&2
    exit 1
fi
