#!/usr/bin/env bash
# Seashell's data channel against wetty, in one run, on loopback:
#   (a) output throughput: `cat` of a 100 MiB file of 64-byte text lines, to a
#       client that acknowledges as each system's flow control requires;
#   (b) keystroke echo latency p50/p99: one byte into `stty raw -echo; exec
#       cat`, 2,000 samples after 200 of warm-up;
#   (c) Seashell only: Ctrl-C while `yes` floods, until a command typed right
#       after it has printed (5 rounds, median and max).
# Prints both systems' figures and the ratios Seashell/wetty. As root (wetty
# runs a local command only as root; Seashell's half runs a real container).
#
#   bench/data-channel/run.sh
#
# SEASHELL_BENCH_SAMPLES (default 2000) and SEASHELL_BENCH_FILE_MIB (default
# 100) change the sizes of the wetty half; the Seashell half's are in
# crates/server/benches/data_channel.rs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are missing (Debian: apt-get install nodejs npm)"
command -v curl >/dev/null || die "curl is missing"
samples="${SEASHELL_BENCH_SAMPLES:-2000}"
file_mib="${SEASHELL_BENCH_FILE_MIB:-100}"
file_bytes=$((file_mib * 1024 * 1024))

# wetty and the socket.io client, at the versions package-lock.json pins,
# into bench/data-channel/node_modules (git-ignored).
if [ ! -x "$here/node_modules/.bin/wetty" ] || [ ! -f "$here/node_modules/node-pty/build/Release/pty.node" ]; then
    (cd "$here" && npm ci --no-audit --no-fund >&2)
fi

work="$(mktemp -d /tmp/seashell-dchan.XXXXXX)"
wetty_pid=""
cleanup() {
    if [ -n "$wetty_pid" ]; then kill "$wetty_pid" 2>/dev/null || true; wait "$wetty_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# The same bytes both systems print.
{ yes 'seashell-data-channel-benchmark-0123456789abcdefghijklmnopqrstu' || true; } | head -c "$file_bytes" > "$work/bench.txt"

# wetty as root on loopback runs its --command on a local PTY (no ssh, no
# login): the same kind of shell session Seashell's agent gives.
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
(cd "$work" && exec "$here/node_modules/.bin/wetty" --host 127.0.0.1 --port "$port" --base /wetty \
    --command 'bash --norc --noprofile' >"$work/wetty.log" 2>&1) &
wetty_pid=$!
for _ in $(seq 100); do
    curl -fso /dev/null "http://127.0.0.1:$port/wetty" && break
    sleep 0.1
done
curl -fso /dev/null "http://127.0.0.1:$port/wetty" || die "wetty did not start: $(cat "$work/wetty.log")"

echo "== wetty $(node -p 'require(process.argv[1]).version' "$here/node_modules/wetty/package.json") (node $(node --version))" >&2
wetty_json="$(node "$here/wetty-client.mjs" "http://127.0.0.1:$port/wetty" "$work/bench.txt" "$file_bytes" "$samples" "$wetty_pid")"
kill "$wetty_pid"; wait "$wetty_pid" 2>/dev/null || true; wetty_pid=""
echo "$wetty_json"

echo "== seashell" >&2
seashell_out="$(cd "$repo" && cargo bench -p seashell-server --bench data_channel 2>&1 | tee /dev/stderr)"
# The product path (createSession, StreamUrl, the gateway) is compared; the
# agent-socket line shows what the server and the WebSocket add.
seashell_json="$(printf '%s\n' "$seashell_out" | sed -n 's/^BENCH_JSON //p' | grep '"path":"gateway"' | tail -n1)"
agent_json="$(printf '%s\n' "$seashell_out" | sed -n 's/^BENCH_JSON //p' | grep '"path":"agent"' | tail -n1)"
[ -n "$seashell_json" ] || die "the Seashell benchmark printed no BENCH_JSON line for the gateway path"
echo "$seashell_json"

node -e '
const w = JSON.parse(process.argv[1]), s = JSON.parse(process.argv[2]);
const a = process.argv[3] ? JSON.parse(process.argv[3]) : null;
const f = (x) => x.toFixed(1);
console.log("");
console.log("| measure | seashell | wetty | seashell/wetty |");
console.log("|---|---|---|---|");
console.log(`| cat throughput (MB/s) | ${f(s.throughput_mb_s)} | ${f(w.throughput_mb_s)} | ${(s.throughput_mb_s / w.throughput_mb_s).toFixed(2)} |`);
console.log(`| echo p50 (µs) | ${f(s.echo_p50_us)} | ${f(w.echo_p50_us)} | ${(s.echo_p50_us / w.echo_p50_us).toFixed(2)} |`);
console.log(`| echo p99 (µs) | ${f(s.echo_p99_us)} | ${f(w.echo_p99_us)} | ${(s.echo_p99_us / w.echo_p99_us).toFixed(2)} |`);
const cpu = (x) => `server ${x.cpu_s.server.toFixed(2)} s, cat ${x.cpu_s.cat.toFixed(2)} s, client ${x.cpu_s.client.toFixed(2)} s`;
console.log(`| CPU during the cat | ${cpu(s)} | ${cpu(w)} | ${((s.cpu_s.server) / (w.cpu_s.server)).toFixed(2)} (server) |`);
console.log(`| Ctrl-C in a flood → output of the next command (ms) | median ${f(s.interrupt_p50_ms)}, max ${f(s.interrupt_max_ms)} | not measured | |`);
if (a) console.log(`| (agent socket alone) | ${f(a.throughput_mb_s)} MB/s, echo p50 ${f(a.echo_p50_us)} µs, p99 ${f(a.echo_p99_us)} µs, ${cpu(a)} | | |`);
console.log(`(load average during seashell ${s.loadavg.split(" ").slice(0, 3).join(" ")}, during wetty ${w.loadavg.split(" ").slice(0, 3).join(" ")})`);
' "$wetty_json" "$seashell_json" "$agent_json"
