#!/usr/bin/env bash
# The load benchmark: a real release `seashell serve` process with real runc
# environments (the busybox image of images/minimal, no network), driven
# through the CloudShell API and the data channel by crates/client's
# examples/load.rs. As root.
#
#   bench/load/run.sh            # load run, then the maximum of environments, then the plots
#   bench/load/run.sh load       # only the load run (and its plots)
#   bench/load/run.sh max-envs   # only the maximum of idle environments
#
# The load run: SEASHELL_LOAD_USERS (50) IAM users, each one environment with
# SEASHELL_LOAD_SESSIONS (10) idle shells, opened in a ramp that measures
# keystroke echo and memory every 50 sessions; then SEASHELL_LOAD_ACTIVE (20)
# sessions printing numbered lines (10 lines every 0.1 s each) and a probe
# typing 4 keys a second, for SEASHELL_LOAD_DURATION_S (600) seconds, with a
# host sample every 10 s. It fails unless every session is still open at the
# end, every idle shell answers and no streamed line is missing.
#
# The maximum: one IAM user per environment, one idle shell each, until the
# server or the runtime refuses, SEASHELL_LOAD_MAX_ENVS (1000) environments,
# SEASHELL_LOAD_MAX_BUDGET_S (600) seconds or MemAvailable under 3 GiB.
#
# Results (CSV, JSON, the server's log) go to bench/load/results/
# (SEASHELL_LOAD_OUT), the plots to docs/images/. Each part runs its own server
# on a fresh data directory under /var/tmp and deletes its environments at the
# end; the exit trap removes whatever is left (containers, mounts, loop
# devices, cgroups) and checks that nothing is.
#
# The operator's configuration written for the server raises the per-account
# shell quota (cloudshell.max_shells_per_region, default 10) to 2000 and the
# monthly hours to 100000: every user is in the first account.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

what="${1:-all}"
case "$what" in load|max-envs|all|plot) ;; *) die "usage: run.sh [load|max-envs|all|plot]" ;; esac
out="${SEASHELL_LOAD_OUT:-$here/results}"
images="$repo/docs/images"
font="${SEASHELL_LOAD_FONT:-/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf}"
[ -f "$font" ] || die "$font is missing (Debian: apt-get install fonts-dejavu-core)"

cd "$repo"
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
nice -n 10 cargo build --release -p seashell --bin seashell >&2
nice -n 10 cargo build --release -p seashell-client --example load >&2
seashell="$repo/target/release/seashell"
load="$repo/target/release/examples/load"
mkdir -p "$out"

if [ "$what" = plot ]; then
    exec "$load" plot --out "$out" --images "$images" --font "$font"
fi

[ "$(id -u)" -eq 0 ] || die "run as root (environments are runc containers)"
for tool in runc mkfs.ext4 losetup curl; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-runtime-deps.sh)"
done
agent="${SEASHELL_AGENT_BIN:-$("$repo/scripts/build-agent.sh")}"
[ -x "$agent" ] || die "no agent binary at $agent"

work=""
server_pid=""
state_dir=""
cgroup=""

# Stops the server and removes what its environments left: containers,
# mounts under the runtime directory, their loop devices, the cgroups.
cleanup() {
    [ -n "$work" ] || return 0
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
    local left=0
    if [ -d "$state_dir" ]; then
        for c in $(runc --root "$state_dir" list -q 2>/dev/null); do
            left=$((left + 1))
            runc --root "$state_dir" kill "$c" KILL 2>/dev/null || true
            runc --root "$state_dir" delete -f "$c" 2>/dev/null || true
        done
        rm -rf "$state_dir"
    fi
    local mounts
    mounts="$(awk -v p="$work/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r)"
    for m in $mounts; do left=$((left + 1)); umount -l "$m" 2>/dev/null || true; done
    for l in $(losetup -n -O NAME,BACK-FILE 2>/dev/null | awk -v p="$work/" 'index($2, p) == 1 {print $1}'); do
        left=$((left + 1)); losetup -d "$l" 2>/dev/null || true
    done
    for ctl in /sys/fs/cgroup /sys/fs/cgroup/*; do
        [ -d "$ctl/$cgroup" ] && find "$ctl/$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    [ "$left" -eq 0 ] || printf 'run.sh: cleanup removed %s leftovers (containers, mounts, loop devices)\n' "$left" >&2
    if [ -z "$(awk -v p="$work/" 'index($5, p) == 1' /proc/self/mountinfo)" ]; then
        rm -rf "$work"
    else
        printf 'run.sh: mounts remain under %s\n' "$work" >&2
    fi
    work=""
}
trap cleanup EXIT

# Starts a server on a fresh data directory; sets server_pid and the
# admin's key pair.
start_server() {
    local name="$1"
    work="$(mktemp -d /var/tmp/seashell-load.XXXXXX)"
    # The runtime directory beside the data directory must be traversable
    # by the environments' mapped ids; mktemp makes 0700.
    chmod 0711 "$work"
    state_dir="/run/seashell/load-$$-$name"
    cgroup="seashell-load-$$-$name"
    local port="${SEASHELL_LOAD_PORT:-18480}"
    endpoint="http://127.0.0.1:$port"
    cat > "$work/seashell.toml" <<EOF
listen = "127.0.0.1:$port"
data_dir = "$work/data"
public_url = "$endpoint"
regions = ["us-east-1"]

[cloudshell]
image = "minimal"
agent_binary = "$agent"
network = false
cgroup_parent = "$cgroup"
state_dir = "$state_dir"
# Every user of the run is in one account: the per-account shell quota
# (default 10) and the monthly hours (default 1000) are raised.
max_shells_per_region = 2000
monthly_hours = 100000
# The longest idle timeout; runs longer than about 25 minutes need
# idle_timeout_seconds.
idle_timeout_minutes = 30
EOF
    cp "$work/seashell.toml" "$out/seashell-$name.toml"
    RUST_LOG="${RUST_LOG:-warn}" "$seashell" serve --config "$work/seashell.toml" > "$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 150); do
        curl -fso /dev/null "$endpoint/healthz" && break
        kill -0 "$server_pid" 2>/dev/null || die "the server exited: $(tail -20 "$work/server.log")"
        sleep 0.2
    done
    curl -fso /dev/null "$endpoint/healthz" || die "the server did not start: $(tail -20 "$work/server.log")"
    local keys
    keys="$("$seashell" admin bootstrap --data-dir "$work/data" --output json)"
    admin_key="$(printf '%s' "$keys" | sed -n 's/.*"AccessKeyId":"\([^"]*\)".*/\1/p')"
    admin_secret="$(printf '%s' "$keys" | sed -n 's/.*"SecretAccessKey":"\([^"]*\)".*/\1/p')"
    [ -n "$admin_key" ] && [ -n "$admin_secret" ] || die "admin bootstrap printed no key: $keys"
}

# deleteEnvironment returns before the container is gone: wait (at most 5
# minutes) until the runtime's state directory lists no container.
wait_deleted() {
    for _ in $(seq 300); do
        [ -z "$(runc --root "$state_dir" list -q 2>/dev/null)" ] && return 0
        sleep 1
    done
    printf 'run.sh: containers still listed after 5 minutes\n' >&2
}

machine() {
    printf 'kernel %s, %s vCPUs (%s), %s MiB, runc %s, %s\n' "$(uname -r)" "$(nproc)" \
        "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)" \
        "$(($(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo) / 1024))" \
        "$(runc --version | sed -n 's/^runc version //p')" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}

status=0
if [ "$what" = load ] || [ "$what" = all ]; then
    start_server load
    machine > "$out/machine.txt"
    echo "== load run ($(cat "$out/machine.txt"))" >&2
    "$load" load --endpoint "$endpoint" --admin-key "$admin_key" --admin-secret "$admin_secret" \
        --server-pid "$server_pid" --cgroup-parent "$cgroup" --out "$out" \
        --users "${SEASHELL_LOAD_USERS:-50}" --sessions-per-user "${SEASHELL_LOAD_SESSIONS:-10}" \
        --active "${SEASHELL_LOAD_ACTIVE:-20}" --duration-s "${SEASHELL_LOAD_DURATION_S:-600}" \
        --sample-s "${SEASHELL_LOAD_SAMPLE_S:-10}" --ramp-step "${SEASHELL_LOAD_RAMP_STEP:-50}" --run-id load || status=$?
    wait_deleted
    cp "$work/server.log" "$out/server-load.log"
    cleanup
    [ "$status" -eq 0 ] && "$load" plot --out "$out" --images "$images" --font "$font"
fi
if [ "$what" = max-envs ] || [ "$what" = all ]; then
    start_server max
    machine > "$out/machine-max.txt"
    echo "== maximum of idle environments ($(cat "$out/machine-max.txt"))" >&2
    "$load" max-envs --endpoint "$endpoint" --admin-key "$admin_key" --admin-secret "$admin_secret" \
        --server-pid "$server_pid" --cgroup-parent "$cgroup" --out "$out" \
        --max-envs "${SEASHELL_LOAD_MAX_ENVS:-1000}" --budget-s "${SEASHELL_LOAD_MAX_BUDGET_S:-600}" \
        --run-id max || status=$?
    wait_deleted
    cp "$work/server.log" "$out/server-max.log"
    cleanup
fi
# Nothing of the run may be left on the host.
leftover="$(losetup -n -O BACK-FILE 2>/dev/null | grep -c '/var/tmp/seashell-load\.' || true)"
[ "$leftover" -eq 0 ] || die "$leftover loop devices of the run are left"
exit "$status"
