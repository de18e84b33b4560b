// End-to-end tests of the web console in headless Chromium, driven by
// playwright-core. Run by crates/cli/tests/console_browser.rs, which starts
// the server and passes, in the environment:
//   SEASHELL_URL, SEASHELL_ACCOUNT, SEASHELL_ADMIN_PASSWORD (one-time),
//   SEASHELL_READER_PASSWORD (user "reader", no uploads), SEASHELL_CHROMIUM,
//   SEASHELL_ARTIFACTS (screenshots, measurements), SEASHELL_WEB_DIST.
// It prints "RESTART-SERVER" when it wants the server killed and started
// again, and waits for "RESTARTED" on its standard input.

import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { createHmac } from "node:crypto";
import { join } from "node:path";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const URL_BASE = env("SEASHELL_URL");
const ACCOUNT = env("SEASHELL_ACCOUNT");
const ONE_TIME = env("SEASHELL_ADMIN_PASSWORD");
const READER_PASSWORD = env("SEASHELL_READER_PASSWORD");
const READER_MFA_SEED = env("SEASHELL_READER_MFA_SEED");
const ARTIFACTS = env("SEASHELL_ARTIFACTS");
const DIST = env("SEASHELL_WEB_DIST");
const ADMIN_PASSWORD = "Console-Admin-2026!";
mkdirSync(ARTIFACTS, { recursive: true });

const stdinLines = createInterface({ input: process.stdin });
const waitingLines = [];
stdinLines.on("line", (l) => {
  const w = waitingLines.shift();
  if (w) w(l);
});
const nextStdinLine = () => new Promise((resolve) => waitingLines.push(resolve));

/** RFC 6238 (SHA-1, 6 digits, 30 s) for the seed, `stepsAhead` steps from now. */
function totp(seedBase32, stepsAhead = 0) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of seedBase32.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.alloc(Math.floor(bits.length / 8));
  for (let i = 0; i < key.length; i++) key[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) + stepsAhead));
  const mac = createHmac("sha1", key).update(counter).digest();
  const off = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, "0");
}

const measurements = {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, f, timeout = 30_000, every = 100) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await sleep(every);
  }
}

/** The visible text of a pane's terminal. */
async function paneText(pane) {
  return pane.locator(".xterm-rows").innerText();
}

async function waitText(pane, needle, timeout = 30_000) {
  return until(`${JSON.stringify(needle)} in the terminal`, async () => {
    const t = await paneText(pane);
    return (typeof needle === "string" ? t.includes(needle) : needle.test(t)) ? t : false;
  }, timeout);
}

async function typeLine(page, pane, line) {
  await pane.locator(".xterm-helper-textarea").focus();
  await page.keyboard.type(line, { delay: 5 });
  await page.keyboard.press("Enter");
}

const activePane = (page) => page.locator(".pane.active");

async function menu(page, menuId, item) {
  await page.click(`#${menuId}`);
  await page.locator(`#${menuId} + .menu`).getByRole("menuitem", { name: item, exact: true }).click();
}

async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

async function waitPrompt(page, pane = activePane(page), timeout = 60_000) {
  await until("a connected pane", async () => (await pane.getAttribute("data-state")) === "connected", timeout);
  return waitText(pane, "]$", timeout);
}

async function signIn(page, user, password) {
  await page.goto(URL_BASE + "/");
  await page.fill("#f-account", ACCOUNT);
  await page.fill("#f-username", user);
  await page.fill("#f-password", password);
  await page.click("button[type=submit]");
}

const results = [];
async function test(name, f) {
  const t0 = Date.now();
  try {
    await f();
    results.push(name);
    console.log(`ok - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    console.log(`not ok - ${name}: ${e?.stack ?? e}`);
    throw e;
  }
}

const browser = await chromium.launch({
  executablePath: process.env.SEASHELL_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
  headless: true,
});
const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
const page = await context.newPage();
const consoleErrors = [];
page.on("console", (m) => {
  if (m.type() === "error") consoleErrors.push(m.text());
});
// Slow requests are named in the output, to tell where time goes.
page.on("requestfinished", (r) => {
  const t = r.timing();
  const total = t.responseEnd;
  if (total > 2000) console.log(`  slow request: ${r.method()} ${new URL(r.url()).pathname} ${Math.round(total)} ms`);
});
let failed = false;

try {
  await test("sign-in refuses wrong credentials without saying which part", async () => {
    await signIn(page, "admin", "not-the-password");
    const message = await until("the error", async () => (await page.textContent("#signin-message")) || false);
    if (!message.includes("Your authentication information is incorrect")) throw new Error(message);
    await signIn(page, "nobody", "not-the-password");
    const other = await until("the error", async () => (await page.textContent("#signin-message")) || false);
    if (other !== message) throw new Error(`different messages: ${message} / ${other}`);
    for (const hidden of ["#f-mfa_code", "#f-new_password"]) {
      if (await page.isVisible(hidden)) throw new Error(`${hidden} is shown before the server asks for it`);
    }
    await shot(page, "signin-light");
  });

  await test("the first administrator must change the one-time password", async () => {
    await signIn(page, "admin", ONE_TIME);
    await page.waitForSelector("#f-new_password:visible");
    await page.fill("#f-new_password", ADMIN_PASSWORD);
    await page.fill("#f-confirm_password", ADMIN_PASSWORD);
    await page.click("button[type=submit]");
    await page.waitForSelector("#region");
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "seashell_session");
    if (!session?.httpOnly) throw new Error("the session cookie is not HttpOnly");
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    if (stored !== "{}{}") throw new Error(`web storage holds ${stored}`);
  });

  await test("CloudShell opens: environment status, then a prompt", async () => {
    await until("the status while the environment starts", async () => {
      const state = await page.getAttribute("#env-status", "data-state");
      return state === "creating" || state === "starting" || state === "running";
    });
    await waitPrompt(page, activePane(page), 120_000);
    const tab = await page.locator(".tab").first().innerText();
    if (tab !== "us-east-1") throw new Error(`tab label ${tab}`);
    await shot(page, "cloudshell-light");
  });

  await test("the page has a strict Content-Security-Policy and no inline script", async () => {
    const r = await page.request.get(URL_BASE + "/");
    const csp = r.headers()["content-security-policy"] ?? "";
    for (const part of ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"]) {
      if (!csp.includes(part)) throw new Error(`CSP lacks ${part}: ${csp}`);
    }
    if (csp.includes("script-src 'self' 'unsafe-inline'")) throw new Error("inline scripts allowed");
    const noCsrf = await page.evaluate(async () => {
      const r = await fetch("/cloudshell/describeEnvironments", { method: "POST", body: "{}", headers: { "x-seashell-region": "us-east-1" } });
      return r.status;
    });
    if (noCsrf !== 403) throw new Error(`a call without the CSRF token answered ${noCsrf}`);
    const prefsNoCsrf = await page.evaluate(async () => (await fetch("/console/preferences", { method: "PUT", body: "{}" })).status);
    if (prefsNoCsrf !== 403) throw new Error(`preferences without the CSRF token answered ${prefsNoCsrf}`);
  });

  await test("pointer activity sends heartbeats", async () => {
    const beat = page.waitForRequest((r) => r.url().endsWith("/cloudshell/sendHeartBeat"), { timeout: 10_000 });
    await page.mouse.move(300, 300);
    await page.mouse.move(400, 420);
    const r = await beat;
    const resp = await r.response();
    if (resp?.status() !== 200) throw new Error(`heartbeat answered ${resp?.status()}`);
  });

  const program = 'import sys\nx=int(sys.argv[1])\ny=int(sys.argv[2])\nsum=x+y\nprint("The sum is",sum)\n';
  await test("getting started: upload add_prog.py with a progress bar", async () => {
    await menu(page, "actions-menu", "Upload file");
    await page.setInputFiles("#upload-input", { name: "add_prog.py", mimeType: "text/x-python", buffer: Buffer.from(program) });
    await page.waitForSelector("progress", { state: "attached" });
    await page.getByText("File upload successful: /home/cloudshell-user/add_prog.py").waitFor();
  });

  await test("getting started: mkdir, mv, ls", async () => {
    const pane = activePane(page);
    await typeLine(page, pane, "clear; mkdir mysub_dir && mv add_prog.py mysub_dir && ls mysub_dir && echo LS-$((40+2))");
    const t = await waitText(pane, "LS-42");
    if (!/add_prog\.py\s*\n.*LS-42/s.test(t)) throw new Error(t);
  });

  await test("getting started: download the file back, byte for byte", async () => {
    const t0 = Date.now();
    await menu(page, "actions-menu", "Download file");
    await page.fill("#download-path", "mysub_dir/add_prog.py");
    const download = page.waitForEvent("download");
    await page.getByRole("button", { name: "Download", exact: true }).click();
    const d = await download;
    const path = join(ARTIFACTS, "downloaded-add_prog.py");
    await d.saveAs(path);
    const got = readFileSync(path, "utf8");
    if (got !== program) throw new Error(`downloaded ${JSON.stringify(got)}`);
    if (d.suggestedFilename() !== "add_prog.py") throw new Error(d.suggestedFilename());
    // The absolute form of the same path, as the guide describes.
    await menu(page, "actions-menu", "Download file");
    await page.fill("#download-path", "/home/cloudshell-user/mysub_dir/add_prog.py");
    const again = page.waitForEvent("download");
    await page.getByRole("button", { name: "Download", exact: true }).click();
    await (await again).saveAs(path);
    if (readFileSync(path, "utf8") !== program) throw new Error("absolute path download differs");
    console.log(`  downloads done after ${Date.now() - t0} ms`);
    // A missing file says so.
    await menu(page, "actions-menu", "Download file");
    await page.fill("#download-path", "mysub_dir/missing.txt");
    await page.getByRole("button", { name: "Download", exact: true }).click();
    await page.getByText("The file mysub_dir/missing.txt could not be downloaded").waitFor();
  });

  await test("getting started: edit with vim through the terminal and run it", async () => {
    const pane = activePane(page);
    await typeLine(page, pane, "cd mysub_dir && vim add_prog.py");
    await waitText(pane, '"add_prog.py"');
    await page.keyboard.type("3Go", { delay: 20 });
    await page.keyboard.type("z=int(sys.argv[3])", { delay: 5 });
    await page.keyboard.press("Escape");
    await page.keyboard.type(":%s/sum=x+y/sum=x+y+z/", { delay: 5 });
    await page.keyboard.press("Enter");
    await page.keyboard.type(":wq", { delay: 5 });
    await page.keyboard.press("Enter");
    await typeLine(page, pane, "clear; python3 add_prog.py 4 5 6");
    await waitText(pane, "The sum is 15");
    await shot(page, "getting-started-light");
  });

  await test("upload by dragging a file onto the terminals", async () => {
    await page.locator("#workspace").evaluate((el) => {
      const dt = new DataTransfer();
      dt.items.add(new File(["dropped-bytes-" + (6 * 7) + "\n"], "dropped.txt", { type: "text/plain" }));
      el.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
      el.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.getByText("File upload successful: /home/cloudshell-user/dropped.txt").waitFor();
    const pane = activePane(page);
    await typeLine(page, pane, "clear; cat ~/dropped.txt");
    await waitText(pane, "dropped-bytes-42");
  });

  await test("a flood never freezes the page and Ctrl-C stops it", async () => {
    const pane = activePane(page);
    await typeLine(page, pane, "yes flood-line");
    await waitText(pane, /\nflood-line\s*\n/);
    await sleep(2000);
    // The page still answers while the flood runs.
    const t0 = Date.now();
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(null))));
    const frame = Date.now() - t0;
    if (frame > 3000) throw new Error(`a frame took ${frame} ms during the flood`);
    await pane.locator(".xterm-helper-textarea").focus();
    await page.keyboard.press("Control+c");
    await typeLine(page, pane, "clear; echo after-$((20+1))");
    await waitText(pane, "after-21", 20_000);
  });

  await test("a session that ended says so, and a key starts a new shell", async () => {
    const pane = activePane(page);
    await typeLine(page, pane, "export OLD=1; exit");
    await until("the ended state", async () => (await pane.getAttribute("data-state")) === "ended");
    await waitText(pane, "Press any key to reconnect.");
    await shot(page, "session-ended-light");
    await pane.locator(".xterm-helper-textarea").focus();
    await page.keyboard.press("Enter");
    await waitPrompt(page, pane);
    await typeLine(page, pane, "clear; echo old=[$OLD]");
    await waitText(pane, "old=[]");
  });

  await test("terminal: true colour and 256 colours, Unicode 11 widths, IME text, clickable links, OSC 52", async () => {
    const pane = activePane(page);
    await typeLine(page, pane, "clear; printf '\\e[38;2;255;0;0mTRUE-RED\\e[0m \\e[38;5;21mPAL-BLUE\\e[0m\\n'");
    await waitText(pane, /(^|\n)TRUE-RED PAL-BLUE/);
    const colours = await pane.locator(".xterm-rows").evaluate((rows) => {
      // The element drawing the first letter of `word` on the output line
      // (the row that starts with TRUE-RED, not the command line).
      const find = (word) => {
        const row = [...rows.children].find((r) => /TRUE-RED.*PAL-BLUE/.test(r.textContent ?? "") && !(r.textContent ?? "").includes("38;"));
        if (!row) return null;
        const walker = document.createTreeWalker(row, NodeFilter.SHOW_TEXT);
        let seen = "";
        const at = (row.textContent ?? "").indexOf(word);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
          if (seen.length + n.textContent.length > at) return n.parentElement;
          seen += n.textContent;
        }
        return null;
      };
      return [find("TRUE-RED"), find("PAL-BLUE")].map((s) => (s ? getComputedStyle(s).color : "none: " + JSON.stringify([...rows.children].map((r) => r.textContent).filter((t) => t.trim()))));
    });
    if (colours[0] !== "rgb(255, 0, 0)") throw new Error(`true colour rendered as ${colours[0]}`);
    if (colours[1] !== "rgb(0, 0, 255)") throw new Error(`colour 21 rendered as ${colours[1]}`);
    // Text committed by an input method arrives as text, not keys; wide
    // characters take two cells (Unicode 11): the bars line up.
    await typeLine(page, pane, "clear");
    await pane.locator(".xterm-helper-textarea").focus();
    await page.keyboard.insertText("printf '日本語|\\nabcdef|\\n'");
    await page.keyboard.press("Enter");
    await waitText(pane, /(^|\n)abcdef\|/);
    const bars = await pane.locator(".xterm-rows").evaluate((rows) => {
      const barX = (prefix) => {
        for (const row of rows.children) {
          const text = row.textContent ?? "";
          if (!text.startsWith(prefix)) continue;
          const walker = document.createTreeWalker(row, NodeFilter.SHOW_TEXT);
          for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            const i = n.textContent.indexOf("|");
            if (i >= 0) {
              const r = document.createRange();
              r.setStart(n, i);
              r.setEnd(n, i + 1);
              return r.getBoundingClientRect().x;
            }
          }
        }
        return -1;
      };
      return [barX("日本語"), barX("abcdef")];
    });
    if (bars[0] < 0 || Math.abs(bars[0] - bars[1]) > 1) throw new Error(`wide characters misaligned: ${bars}`);
    // A printed URL is a link that opens in a new browser tab.
    await typeLine(page, pane, "clear; echo see http://127.0.0.1:9/linked-page for more");
    await waitText(pane, /(^|\n)see http:\/\/127\.0\.0\.1:9\/linked-page for more/);
    const box = await pane.locator(".xterm-rows").evaluate((rows) => {
      for (const row of rows.children) {
        const text = row.textContent ?? "";
        const at = text.indexOf("http://127.0.0.1:9/linked-page");
        if (at < 0 || text.includes("echo")) continue;
        const walker = document.createTreeWalker(row, NodeFilter.SHOW_TEXT);
        let offset = 0;
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
          const len = n.textContent.length;
          if (at + 5 < offset + len) {
            const r = document.createRange();
            r.setStart(n, at + 5 - offset);
            r.setEnd(n, at + 6 - offset);
            const b = r.getBoundingClientRect();
            return { x: b.x + b.width / 2, y: b.y + b.height / 2 };
          }
          offset += len;
        }
      }
      return null;
    });
    if (!box) throw new Error("the URL is not on the screen");
    // The link is found when the pointer hovers it; moving onto it again
    // covers a first hover that came before the row was drawn.
    const requested = context.waitForEvent("request", { predicate: (r) => r.url().includes("linked-page"), timeout: 20_000 });
    requested.catch(() => {});
    let linked = null;
    for (let attempt = 0; attempt < 4 && !linked; attempt++) {
      const opened = context.waitForEvent("page", { timeout: 3_000 }).catch(() => null);
      await page.mouse.move(box.x + 40, box.y + 40);
      await page.mouse.move(box.x, box.y, { steps: 4 });
      await sleep(300);
      await page.mouse.click(box.x, box.y);
      linked = await opened;
    }
    if (!linked) throw new Error("clicking the URL opened no browser tab");
    await requested;
    await linked.close();
    // OSC 52 from a program does not touch the clipboard by default, and a
    // program asking for the clipboard's content gets nothing.
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: URL_BASE });
    await page.evaluate(() => navigator.clipboard.writeText("copied-by-the-user"));
    await typeLine(page, pane, "clear; printf '\\e]52;c;%s\\a' $(printf osc52-refused | base64); echo osc52-sent");
    await waitText(pane, /osc52-sent/);
    await typeLine(page, pane, "clear; stty -echo; printf '\\e]52;c;?\\a'; sleep 1; stty echo; echo; echo osc52-asked");
    await waitText(pane, /osc52-asked/);
    await sleep(1000); // an answer would arrive as input and show after the command
    const asked = await waitText(pane, /osc52-asked/);
    if (asked.includes(btoa("copied-by-the-user"))) throw new Error(`the shell read the clipboard: ${asked}`);
    await sleep(500);
    const kept = await page.evaluate(() => navigator.clipboard.readText());
    if (kept !== "copied-by-the-user") throw new Error(`OSC 52 set the clipboard without the preference: ${kept}`);
    // With the preference on, it does.
    await page.click("#preferences");
    await page.check("#clipboard-writes");
    await page.getByRole("button", { name: "Confirm" }).click();
    await typeLine(page, pane, "clear; printf '\\e]52;c;%s\\a' $(printf osc52-copied | base64)");
    await until("the clipboard set by OSC 52", async () => (await page.evaluate(() => navigator.clipboard.readText())) === "osc52-copied", 10_000);
    const saved = await page.evaluate(async () => (await fetch("/console/preferences")).json());
    if (saved.clipboardWrites !== true) throw new Error(JSON.stringify(saved));
  });

  await test("the terminal follows the window's size", async () => {
    const pane = activePane(page);
    const size = async () => {
      await typeLine(page, pane, "clear; echo size=$(stty size | tr ' ' x)");
      const t = await waitText(pane, /size=\d+x\d+/);
      return t.match(/size=(\d+)x(\d+)/).slice(1).map(Number);
    };
    const [rows, cols] = await size();
    await page.setViewportSize({ width: 900, height: 600 });
    const [rows2, cols2] = await until("a smaller terminal", async () => {
      const s = await size();
      return s[0] < rows && s[1] < cols ? s : false;
    }, 10_000, 300);
    await page.setViewportSize({ width: 1280, height: 860 });
    await until("the size back", async () => {
      const s = await size();
      return s[0] > rows2 && s[1] > cols2;
    }, 10_000, 300);
  });

  await test("Ctrl+M switches Tab between the terminal and page navigation", async () => {
    const pane = activePane(page);
    await pane.locator(".xterm-helper-textarea").focus();
    await page.keyboard.press("Control+m");
    await page.waitForSelector("#nav-indicator:visible");
    if (!(await page.textContent("#nav-indicator")).includes("Tab: navigation")) throw new Error("indicator text");
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => document.activeElement?.className ?? "");
    if (focused.includes("xterm-helper-textarea")) throw new Error("Tab stayed in the terminal");
    // Every control is reachable: walk the page with Tab.
    const reached = new Set();
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press("Tab");
      reached.add(await page.evaluate(() => document.activeElement?.id || document.activeElement?.getAttribute("aria-label") || document.activeElement?.textContent?.trim() || ""));
    }
    for (const id of ["region", "signout", "plus-menu", "actions-menu", "preferences", "open-new-tab"]) {
      if (!reached.has(id)) throw new Error(`Tab never reached #${id}: ${[...reached].join(", ")}`);
    }
    await page.click("#nav-indicator .nav-close");
    await page.waitForSelector("#nav-indicator", { state: "hidden" });
    await pane.locator(".xterm-helper-textarea").focus();
    await page.keyboard.press("Control+m");
    await page.waitForSelector("#nav-indicator:visible");
    await page.keyboard.press("Control+m");
    await page.waitForSelector("#nav-indicator", { state: "hidden" });
  });

  await test("Safe Paste shows multiline text before pasting it", async () => {
    const pane = activePane(page);
    await typeLine(page, pane, "clear");
    const paste = (text) =>
      pane.locator(".xterm-helper-textarea").evaluate((el, text) => {
        const dt = new DataTransfer();
        dt.setData("text/plain", text);
        el.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
      }, text);
    await paste("echo first-$((1+1))\necho second-$((2+2))\n");
    const dlg = page.locator("dialog[open]");
    await dlg.getByText("echo second-$((2+2))").waitFor();
    await dlg.getByText("Always ask before pasting multiline code").waitFor();
    await shot(page, "safe-paste-light");
    await dlg.getByRole("button", { name: "Cancel" }).click();
    await sleep(500);
    if ((await paneText(pane)).includes("first-$((1+1))")) throw new Error("cancelled paste reached the shell");
    await paste("echo first-$((1+1))\necho second-$((2+2))\n");
    await page.locator("dialog[open]").getByRole("button", { name: "Paste" }).click();
    // Bash takes a paste as one edit (bracketed paste); Enter runs it.
    await waitText(pane, "echo second-$((2+2))");
    await page.keyboard.press("Enter");
    await waitText(pane, "second-4");
    // A single line goes straight in.
    await paste("echo single-$((3+3))");
    await page.keyboard.press("Enter");
    await waitText(pane, "single-6");
    if (await page.locator("dialog[open]").count()) throw new Error("a single line asked");
    // Unticking "Always ask" turns Safe Paste off for this user.
    await paste("echo third-$((3+0))\necho fourth-$((4+0))\n");
    await page.locator("dialog[open] #always-ask").uncheck();
    await page.locator("dialog[open]").getByRole("button", { name: "Paste" }).click();
    await waitText(pane, "echo fourth-$((4+0))");
    await page.keyboard.press("Enter");
    await waitText(pane, "fourth-4");
    await until("Safe Paste saved off", async () => {
      const prefs = await page.evaluate(async () => (await fetch("/console/preferences")).json());
      return prefs.safePaste === false;
    });
    await paste("echo fifth-$((5+0))\necho sixth-$((6+0))\n");
    await waitText(pane, "echo sixth-$((6+0))");
    if (await page.locator("dialog[open]").count()) throw new Error("asked although Safe Paste is off");
    await page.keyboard.press("Enter");
    await waitText(pane, "sixth-6");
    if (await page.locator("dialog[open]").count()) throw new Error("asked although Safe Paste is off");
  });

  await test("preferences: font size, dark theme and Safe Paste persist for the user", async () => {
    const rowHeight = () => page.locator(".pane.active .xterm-rows > div").first().evaluate((el) => el.getBoundingClientRect().height);
    const before = await rowHeight();
    await page.click("#preferences");
    await page.check("#size-largest");
    await page.check("#theme-dark");
    await page.check("#safe-paste");
    await page.getByRole("button", { name: "Confirm" }).click();
    await until("the dark theme", async () => (await page.getAttribute("html", "data-theme")) === "dark");
    const after = await until("a larger font", async () => {
      const h = await rowHeight();
      return h > before ? h : false;
    });
    const saved = await page.evaluate(async () => (await fetch("/console/preferences")).json());
    if (saved.fontSize !== "largest" || saved.theme !== "dark" || saved.safePaste !== true) throw new Error(JSON.stringify(saved));
    await page.reload();
    await waitPrompt(page);
    if ((await page.getAttribute("html", "data-theme")) !== "dark") throw new Error("theme not restored");
    const restored = await rowHeight();
    if (Math.abs(restored - after) > 1) throw new Error(`font size not restored: ${restored} vs ${after}`);
    await shot(page, "cloudshell-dark");
    await page.click("#preferences");
    await shot(page, "preferences-dark");
    await page.check("#size-medium");
    await page.getByRole("button", { name: "Confirm" }).click();
  });

  let paneIds = [];
  await test("tabs and panes: split into columns and rows, drag the bar, close a pane", async () => {
    let asked = 0;
    const cols = async (pane) => {
      const n = ++asked;
      await typeLine(page, pane, `clear; echo cols${n}=$(tput cols)`);
      const t = await waitText(pane, new RegExp(`cols${n}=\\d+`));
      return Number(t.match(new RegExp(`cols${n}=(\\d+)`))[1]);
    };
    const whole = await cols(activePane(page));
    await menu(page, "actions-menu", "Tabs layout: Split into columns");
    await until("two panes", async () => (await page.locator(".workspace .pane").count()) === 2);
    await until("the first pane narrower", async () => (await cols(page.locator(".workspace .pane").first())) < whole * 0.6, 10_000, 300);
    const second = page.locator(".workspace .pane").nth(1);
    await waitPrompt(page, second);
    await typeLine(page, second, "echo pane-$((2*1000))");
    await waitText(second, "pane-2000");
    const first = page.locator(".workspace .pane").first();
    if ((await paneText(first)).includes("pane-2000")) throw new Error("output went to the other pane");
    await menu(page, "actions-menu", "Tabs layout: Split into rows");
    await until("three panes", async () => (await page.locator(".workspace .pane").count()) === 3);
    await waitPrompt(page, activePane(page));
    // Drag the vertical bar between the columns to the left.
    const bar = page.locator(".workspace > .split > .split-bar");
    const box = await bar.boundingBox();
    const widthBefore = (await first.boundingBox()).width;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x - 250, box.y + box.height / 2, { steps: 8 });
    await page.mouse.up();
    const widthAfter = (await first.boundingBox()).width;
    if (!(widthAfter < widthBefore - 150)) throw new Error(`bar drag: ${widthBefore} -> ${widthAfter}`);
    await shot(page, "splits-dark");
    // Close the last pane with its close button.
    await activePane(page).locator(".pane-close").click();
    await until("two panes again", async () => (await page.locator(".workspace .pane").count()) === 2);
    paneIds = await page.locator(".workspace .pane").evaluateAll((els) => els.map((e) => [e.dataset.tabId, e.dataset.sessionId]));
  });

  await test("the layout is restored after a reload, each pane on its running shell", async () => {
    const first = page.locator(".workspace .pane").first();
    await typeLine(page, first, "export MARK=kept-$((6*7)); clear");
    await sleep(500);
    // Let the layout save (debounced) land.
    await sleep(500);
    const t0 = Date.now();
    await page.reload();
    await until("two panes restored", async () => (await page.locator(".workspace .pane").count()) === 2, 60_000);
    const firstAgain = page.locator(".workspace .pane").first();
    await waitPrompt(page, firstAgain);
    measurements.time_to_prompt_after_reload_ms = Date.now() - t0;
    const ids = await page.locator(".workspace .pane").evaluateAll((els) => els.map((e) => [e.dataset.tabId, e.dataset.sessionId]));
    if (JSON.stringify(ids) !== JSON.stringify(paneIds)) throw new Error(`panes ${JSON.stringify(ids)} != ${JSON.stringify(paneIds)}`);
    await typeLine(page, firstAgain, "echo mark=[$MARK]");
    await waitText(firstAgain, "mark=[kept-42]");
    // A new tab (+ menu), then close it.
    await menu(page, "plus-menu", "New tab");
    await until("a second tab", async () => (await page.locator(".tab").count()) === 2);
    await waitPrompt(page);
    await page.locator(".tab-close").nth(1).click();
    await until("one tab", async () => (await page.locator(".tab").count()) === 1);
  });

  await test("open in new browser tab: the same shells, the old tab told", async () => {
    const popupPromise = context.waitForEvent("page");
    await page.click("#open-new-tab");
    const popup = await popupPromise;
    await popup.waitForLoadState();
    await until("two panes in the new tab", async () => (await popup.locator(".workspace .pane").count()) === 2, 60_000);
    const p1 = popup.locator(".workspace .pane").first();
    await waitPrompt(popup, p1);
    await typeLine(popup, p1, "echo again=[$MARK]");
    await waitText(p1, "again=[kept-42]");
    await until("the old tab told", async () => (await page.locator(".pane[data-state=replaced]").count()) > 0);
    await popup.close();
    // A key in the old tab attaches it again.
    const tabId = await page.locator(".workspace .pane[data-state=replaced]").first().getAttribute("data-tab-id");
    const old = page.locator(`.workspace .pane[data-tab-id="${tabId}"]`);
    await old.locator(".xterm-helper-textarea").focus();
    await page.keyboard.press("x");
    await until("reattached", async () => (await old.getAttribute("data-state")) === "connected");
  });

  await test("reconnects after the server restarts, without lost or repeated output", async () => {
    // Back to one pane, so every line stays on the screen.
    while ((await page.locator(".workspace .pane").count()) > 1) {
      await page.locator(".workspace .pane").last().locator(".pane-close").click();
      await sleep(300);
    }
    const pane = activePane(page);
    await waitPrompt(page, pane);
    await typeLine(page, pane, "clear; for i in $(seq 1 16); do echo tick-$i; sleep 0.3; done; echo END-$((2+3))");
    await waitText(pane, "tick-2");
    console.log("RESTART-SERVER");
    const sawReconnecting = until("the reconnecting state", async () => (await pane.getAttribute("data-state")) === "reconnecting", 20_000, 50);
    if ((await nextStdinLine()) !== "RESTARTED") throw new Error("no restart");
    await sawReconnecting;
    await shot(page, "reconnecting-dark");
    const text = await waitText(pane, "END-5", 60_000);
    for (let i = 1; i <= 16; i++) {
      const count = text.split("\n").filter((l) => l.trim() === `tick-${i}`).length;
      if (count !== 1) throw new Error(`tick-${i} appears ${count} times:\n${text}`);
    }
    await until("connected again", async () => (await pane.getAttribute("data-state")) === "connected");
  });

  await test("restart: confirmation, sessions stop, the home stays", async () => {
    const pane = activePane(page);
    await typeLine(page, pane, "export BEFORE=yes; clear");
    await menu(page, "actions-menu", "Restart");
    await page.locator("dialog[open]").getByText("stops every session").waitFor();
    await page.locator("dialog[open]").getByRole("button", { name: "Restart" }).click();
    await until("the restart status", async () => ["stopping", "starting"].includes(await page.getAttribute("#env-status", "data-state")), 20_000, 50);
    const fresh = activePane(page);
    await waitPrompt(page, fresh, 120_000);
    await typeLine(page, fresh, "clear; echo before=[$BEFORE]; ls ~/mysub_dir");
    await waitText(fresh, "before=[]");
    await waitText(fresh, "add_prog.py");
  });

  await test("region selector: another region's environment, the tab shows it", async () => {
    await page.selectOption("#region", "eu-west-1");
    await until("the tab named eu-west-1", async () => (await page.locator(".tab").first().innerText()) === "eu-west-1", 60_000);
    const pane = activePane(page);
    await waitPrompt(page, pane, 120_000);
    await typeLine(page, pane, "clear; echo region=$AWS_REGION; ls ~/mysub_dir 2>&1 | head -1");
    await waitText(pane, "region=eu-west-1");
    await waitText(pane, "No such file");
    await page.selectOption("#region", "us-east-1");
    await until("the tab named us-east-1", async () => (await page.locator(".tab").first().innerText()) === "us-east-1", 60_000);
    await waitPrompt(page);
    await menu(page, "plus-menu", "Create VPC environment");
    await page.locator("dialog[open]").getByText("not available yet").waitFor();
    await page.locator("dialog[open]").getByRole("button", { name: "Close" }).click();
  });

  await test("delete: a warning, typing delete, the home is gone", async () => {
    await menu(page, "actions-menu", "Delete");
    const dlg = page.locator("dialog[open]");
    await dlg.getByText("cannot be undone").waitFor();
    const del = dlg.getByRole("button", { name: "Delete" });
    if (!(await del.isDisabled())) throw new Error("Delete enabled before typing delete");
    await page.fill("#delete-confirm", "delet");
    if (!(await del.isDisabled())) throw new Error("Delete enabled by a wrong word");
    await page.fill("#delete-confirm", "delete");
    await shot(page, "delete-dark");
    await del.click();
    await page.getByText("and its home directory were deleted").waitFor({ timeout: 120_000 });
    const pane = activePane(page);
    await waitPrompt(page, pane, 120_000);
    await typeLine(page, pane, "clear; ls ~/mysub_dir 2>&1 | head -1");
    await waitText(pane, "No such file");
  });

  await test("a user with an MFA device is asked for a code; without permission, clear errors (upload, environment)", async () => {
    const other = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const p = await other.newPage();
    await signIn(p, "reader", READER_PASSWORD);
    await p.waitForSelector("#f-mfa_code:visible");
    const asked = await p.textContent("#signin-message");
    if (!asked.includes("MFA")) throw new Error(asked);
    await p.fill("#f-mfa_code", "000000" === totp(READER_MFA_SEED, 1) ? "111111" : "000000");
    await p.click("button[type=submit]");
    const wrong = await until("the refusal", async () => {
      const t = await p.textContent("#signin-message");
      return t.includes("incorrect") ? t : false;
    });
    if (!wrong.includes("Your authentication information is incorrect")) throw new Error(wrong);
    // One step ahead: never the step the device was enabled with.
    await p.fill("#f-mfa_code", totp(READER_MFA_SEED, 1));
    await p.click("button[type=submit]");
    await waitPrompt(p, p.locator(".pane.active"), 120_000);
    await p.click("#actions-menu");
    await p.locator("#actions-menu + .menu").getByRole("menuitem", { name: "Upload file" }).click();
    await p.setInputFiles("#upload-input", { name: "nope.txt", mimeType: "text/plain", buffer: Buffer.from("x") });
    const alert = p.locator("dialog[open] [role=alert]");
    await alert.waitFor();
    const text = await alert.innerText();
    if (!/could not be uploaded/.test(text) || !/not authorized|AccessDenied/i.test(text)) throw new Error(text);
    await p.screenshot({ path: join(ARTIFACTS, "upload-denied-light.png") });
    await p.locator("dialog[open]").getByRole("button", { name: "Close" }).click();
    // Where the environment cannot be created, the page says why.
    await p.selectOption("#region", "eu-west-1");
    await until("the unavailable state", async () => (await p.getAttribute("#env-status", "data-state")) === "unavailable", 30_000);
    const why = await p.textContent("#env-status");
    if (!/unavailable/.test(why) || !/not authorized|AccessDenied/i.test(why)) throw new Error(why);
    await p.getByRole("button", { name: "Try again" }).waitFor();
    await p.screenshot({ path: join(ARTIFACTS, "unavailable-light.png") });
    await other.close();
  });

  await test("time to prompt and bundle size", async () => {
    const t0 = Date.now();
    await page.reload();
    await waitPrompt(page);
    measurements.time_to_prompt_ms = Date.now() - t0;
    measurements.first_output_after_navigation_ms = await page.evaluate(() => {
      const p = document.querySelector(".pane");
      return p ? Number(p.dataset.firstOutputMs ?? -1) : -1;
    });
    let js = 0;
    let jsGzip = 0;
    let css = 0;
    for (const f of readdirSync(join(DIST, "assets"))) {
      const path = join(DIST, "assets", f);
      if (f.endsWith(".js")) {
        js += statSync(path).size;
        jsGzip += gzipSync(readFileSync(path)).length;
      } else if (f.endsWith(".css")) css += statSync(path).size;
    }
    Object.assign(measurements, { bundle_js_bytes: js, bundle_js_gzip_bytes: jsGzip, bundle_css_bytes: css });
    console.log(`MEASURE ${JSON.stringify(measurements)}`);
    writeFileSync(join(ARTIFACTS, "measurements.json"), JSON.stringify(measurements, null, 2));
  });

  await test("sign-out ends the session", async () => {
    await page.click("#signout");
    await page.waitForSelector("#f-account");
    const status = await page.evaluate(async () => (await fetch("/whoami")).status);
    if (status !== 401) throw new Error(`whoami after sign-out: ${status}`);
  });

  const csp = consoleErrors.filter((e) => /Content Security Policy/i.test(e));
  if (csp.length) throw new Error(`CSP violations: ${csp.join("\n")}`);
} catch (e) {
  failed = true;
  try {
    await shot(page, "failure");
  } catch {
    /* the page may be gone */
  }
} finally {
  await browser.close();
  stdinLines.close();
}
console.log(`${results.length} browser tests passed${failed ? ", one failed" : ""}`);
process.exit(failed ? 1 : 0);
