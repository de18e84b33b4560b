// The wetty half of the data-channel benchmark: a socket.io client that
// behaves like wetty's browser client (acknowledges every 256 KiB with
// `commit`, as wetty's flow control requires) and measures
//   (a) output throughput: `cat` of a file, timed from the command to an end
//       marker printed after it;
//   (b) keystroke echo latency: one byte sent to `stty raw -echo; cat`, timed
//       until it comes back.
// Prints one JSON object. Usage:
//   node wetty-client.mjs <url> <file> <file-bytes> <echo-samples> [<wetty-pid>]
// With wetty's pid it also reports the CPU seconds the cat cost wetty's
// server, the shell's children (cat) and this client.
import { readFileSync, readdirSync } from "node:fs";
import { io } from "socket.io-client";

const [url, file, fileBytes, samples, wettyPid] = process.argv.slice(2);
if (!url || !file || !fileBytes || !samples) {
  console.error("usage: node wetty-client.mjs <url> <file> <file-bytes> <echo-samples>");
  process.exit(2);
}
const parsed = new URL(url);
const ACK_BYTES = 262144; // wetty's client value
const WARMUP = 200;

const socket = io(parsed.origin, {
  path: `${parsed.pathname.replace(/\/$/, "")}/socket.io`,
  transports: ["websocket"],
});

// Every output chunk goes to the current waiter; the flow-control counter is
// kept as wetty's client keeps it.
let counter = 0;
let onData = () => {};
socket.on("data", (data) => {
  counter += data.length;
  while (counter >= ACK_BYTES) {
    counter -= ACK_BYTES;
    socket.emit("commit", ACK_BYTES);
  }
  onData(data);
});
socket.on("connect_error", (e) => {
  console.error(`wetty-client: cannot connect to ${url}: ${e.message}`);
  process.exit(1);
});

function waitFor(needle, timeoutMs = 120000) {
  return new Promise((resolve, reject) => {
    let tail = "";
    let bytes = 0;
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${needle}`)), timeoutMs);
    onData = (data) => {
      bytes += data.length;
      tail = (tail + data).slice(-(needle.length + 4096));
      if (tail.includes(needle)) {
        clearTimeout(timer);
        onData = () => {};
        resolve(bytes);
      }
    };
  });
}

function nextData() {
  return new Promise((resolve) => {
    onData = (data) => {
      onData = () => {};
      resolve(data);
    };
  });
}

// (utime + stime, cutime + cstime) of a process, in seconds.
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
    return [(f[11] + f[12]) / 100, (f[13] + f[14]) / 100];
  } catch {
    return [0, 0];
  }
}
function childrenOf(pid) {
  const out = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const list = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      if (list) out.push(...list.split(" ").map(Number));
    }
  } catch {}
  return out;
}
function cpuNow() {
  if (!wettyPid) return { server: 0, cat: 0, client: 0 };
  const usage = process.cpuUsage();
  return {
    server: cpuSeconds(wettyPid)[0],
    cat: childrenOf(wettyPid).reduce((sum, p) => sum + cpuSeconds(p)[1], 0),
    client: (usage.user + usage.system) / 1e6,
  };
}

// Markers are typed with a quote inside so that the command line itself
// never contains them.
const send = (text) => socket.emit("input", text);

await new Promise((resolve) => socket.once("login", resolve));
socket.emit("resize", { cols: 80, rows: 24 });
let ready = waitFor("BENCH_READY");
send("stty -echo; PS1='$ '; echo BENCH_RE''ADY\r");
await ready;

// (a) throughput
const done = waitFor("BENCH_CAT_DONE", 600000);
const before = cpuNow();
const started = process.hrtime.bigint();
send(`cat ${file}; echo BENCH_CAT_DO''NE\r`);
const received = await done;
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const after = cpuNow();
const cpu = Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]));

// (b) echo latency
ready = waitFor("BENCH_RAW");
send("stty raw -echo; echo BENCH_R''AW; exec cat\r");
await ready;
const latencies = [];
for (let i = 0; i < WARMUP + Number(samples); i++) {
  const echoed = nextData();
  const t0 = process.hrtime.bigint();
  send("x");
  let got = await echoed;
  while (!got.includes("x")) got = await nextData();
  const us = Number(process.hrtime.bigint() - t0) / 1000;
  if (i >= WARMUP) latencies.push(us);
}
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.max(0, Math.ceil((p / 100) * latencies.length) - 1)];

console.log(
  JSON.stringify({
    system: "wetty",
    file_bytes: Number(fileBytes),
    received_chars: received,
    seconds,
    throughput_mb_s: Number(fileBytes) / seconds / 1e6,
    echo_samples: latencies.length,
    echo_p50_us: pct(50),
    echo_p99_us: pct(99),
    echo_max_us: latencies[latencies.length - 1],
    cpu_s: cpu,
    loadavg: readFileSync("/proc/loadavg", "utf8").trim(),
  }),
);
socket.disconnect();
process.exit(0);
