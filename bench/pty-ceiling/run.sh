#!/usr/bin/env bash
# The PTY throughput ceiling under an environment's CPU limit: builds
# pty_ceiling.c, makes a 100 MiB file of the data-channel bench's lines,
# and runs the reader with cat in a cgroup limited to one CPU (what
# [cloudshell] gives an environment: a CFS quota of one period per
# period), then without a limit. As root; cgroup v2, or v1's cpu
# controller.
set -eu
cd "$(dirname "$0")"
[ "$(id -u)" -eq 0 ] || { echo "run.sh: run as root (it makes a cgroup)" >&2; exit 1; }
work="$(mktemp -d)"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    cg=/sys/fs/cgroup/seashell-pty-ceiling
    mkdir -p "$cg"
    echo "+cpu" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
    echo "100000 100000" > "$cg/cpu.max"
else
    cg=/sys/fs/cgroup/cpu/seashell-pty-ceiling
    mkdir -p "$cg"
    echo 100000 > "$cg/cpu.cfs_period_us"
    echo 100000 > "$cg/cpu.cfs_quota_us"
fi
trap 'rmdir "$cg" 2>/dev/null || true; rm -rf "$work"' EXIT
cc -O2 -o "$work/pty_ceiling" pty_ceiling.c -lutil
yes 'seashell-data-channel-benchmark-0123456789abcdefghijklmnopqrstu' |
    head -c $((100 << 20)) > "$work/file.txt" || true
cat "$work/file.txt" > /dev/null
for i in 1 2 3; do
    printf 'one CPU (as an environment): '
    sh -c "echo \$\$ > $cg/cgroup.procs; exec $work/pty_ceiling $work/file.txt"
done
for i in 1 2 3; do
    printf 'no limit: '
    "$work/pty_ceiling" "$work/file.txt"
done
