// One terminal pane: xterm.js attached to one shell through the data
// channel. The pane's TabId names the shell: the same TabId attaches the
// same running shell (after a reload, or from another browser tab).

import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { WebLinksAddon } from "@xterm/addon-web-links";
import { Unicode11Addon } from "@xterm/addon-unicode11";
import { ClipboardAddon, type ClipboardSelectionType, type IClipboardProvider } from "@xterm/addon-clipboard";
import { ApiError, cloudshell } from "./api";
import { DataChannel, SessionGone, type ChannelState, type Endpoint } from "./channel";
import { FONT_SIZES, TERMINAL_THEMES, type Preferences } from "./prefs";

export interface PaneHost {
  region: string;
  environmentId(): string;
  preferences(): Preferences;
  /** Whether Ctrl+M has given the Tab key to page navigation. */
  navigationMode(): boolean;
  /** Asks before a multiline paste (Safe Paste); resolves to paste or not. */
  confirmPaste(text: string): Promise<boolean>;
  focused(pane: Pane): void;
  closePane(pane: Pane): void;
}

interface StreamAnswer {
  SessionId: string;
  TokenValue: string;
  StreamUrl: string;
}

export class Pane {
  readonly el: HTMLDivElement;
  readonly term: Terminal;
  private readonly fit = new FitAddon();
  private readonly status: HTMLDivElement;
  private readonly body: HTMLDivElement;
  private channel: DataChannel | null = null;
  private sessionId = "";
  /** After the session ended or moved away: the next key reconnects. */
  private waitingForKey = false;
  private resizeObserver: ResizeObserver;
  /** When the page loaded, for the time-to-prompt measurement. */
  firstOutputAt = 0;

  constructor(
    readonly tabId: string,
    private readonly host: PaneHost,
  ) {
    this.el = document.createElement("div");
    this.el.className = "pane";
    this.el.dataset.tabId = tabId;
    const bar = document.createElement("div");
    bar.className = "pane-bar";
    this.status = document.createElement("div");
    this.status.className = "pane-status";
    this.status.setAttribute("role", "status");
    const close = document.createElement("button");
    close.className = "pane-close";
    close.textContent = "×";
    close.title = "Close this pane";
    close.setAttribute("aria-label", "Close this terminal pane");
    close.addEventListener("click", () => this.host.closePane(this));
    bar.append(this.status, close);
    this.body = document.createElement("div");
    this.body.className = "pane-terminal";
    this.body.setAttribute("aria-label", `Terminal, ${host.region}`);
    this.el.append(bar, this.body);

    const prefs = host.preferences();
    this.term = new Terminal({
      allowProposedApi: true,
      cursorBlink: true,
      fontFamily: "'DejaVu Sans Mono', 'Liberation Mono', Menlo, Consolas, monospace",
      fontSize: FONT_SIZES[prefs.fontSize].px,
      theme: TERMINAL_THEMES[prefs.theme],
      lineHeight: 1.15,
      scrollback: 5000,
      screenReaderMode: false,
    });
    this.term.loadAddon(this.fit);
    this.term.loadAddon(new Unicode11Addon());
    this.term.unicode.activeVersion = "11";
    this.term.loadAddon(
      new WebLinksAddon((_ev, uri) => {
        window.open(uri, "_blank", "noopener,noreferrer");
      }),
    );
    // OSC 52: programs in the shell set the clipboard only if the user
    // allowed it, and never read it.
    this.term.loadAddon(new ClipboardAddon(undefined, new ShellClipboard(() => host.preferences().clipboardWrites)));
    this.term.open(this.body);
    this.term.textarea?.setAttribute("aria-label", `Terminal input, ${host.region}`);
    this.term.attachCustomKeyEventHandler((ev) => this.key(ev));
    this.term.onData((data) => {
      if (this.waitingForKey) {
        this.waitingForKey = false;
        void this.connect();
        return;
      }
      this.channel?.sendText(data);
    });
    this.term.onBinary((data) => {
      const bytes = Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff);
      this.channel?.send(bytes);
    });
    this.term.onResize(({ cols, rows }) => this.channel?.resize(cols, rows));
    this.term.textarea?.addEventListener("focus", () => this.host.focused(this));
    // Pastes go through Safe Paste before they reach the shell.
    this.body.addEventListener(
      "paste",
      (ev) => {
        const text = ev.clipboardData?.getData("text/plain") ?? "";
        ev.preventDefault();
        ev.stopImmediatePropagation();
        void this.paste(text);
      },
      true,
    );
    this.resizeObserver = new ResizeObserver(() => this.refit());
    this.resizeObserver.observe(this.body);
  }

  /** Keys the page takes before the terminal: Tab in navigation mode
   *  (Ctrl+M itself is caught by the page before it reaches here), and
   *  Ctrl+Shift+C / Ctrl+Shift+V for copy and paste. */
  private key(ev: KeyboardEvent): boolean {
    if (ev.key === "Tab" && this.host.navigationMode()) return false;
    if (ev.type !== "keydown") return true;
    if (ev.ctrlKey && ev.shiftKey && (ev.key === "C" || ev.key === "c")) {
      const selection = this.term.getSelection();
      if (selection) void navigator.clipboard?.writeText(selection);
      ev.preventDefault();
      return false;
    }
    if (ev.ctrlKey && ev.shiftKey && (ev.key === "V" || ev.key === "v")) {
      ev.preventDefault();
      void navigator.clipboard?.readText().then((t) => this.paste(t));
      return false;
    }
    return true;
  }

  async paste(text: string): Promise<void> {
    if (!text) return;
    const multiline = /\r|\n/.test(text.replace(/[\r\n]+$/, ""));
    if (multiline && this.host.preferences().safePaste) {
      if (!(await this.host.confirmPaste(text))) {
        this.term.focus();
        return;
      }
    }
    this.term.paste(text);
    this.term.focus();
  }

  refit(): void {
    if (!this.body.isConnected || this.body.clientWidth === 0 || this.body.clientHeight === 0) return;
    try {
      this.fit.fit();
    } catch {
      /* not laid out yet */
    }
  }

  applyPreferences(p: Preferences): void {
    this.term.options.fontSize = FONT_SIZES[p.fontSize].px;
    this.term.options.theme = TERMINAL_THEMES[p.theme];
    this.refit();
  }

  focus(): void {
    this.term.focus();
  }

  private setStatus(text: string, state: string): void {
    this.status.textContent = text;
    this.el.dataset.state = state;
  }

  /** Attaches to the tab's shell (starting one if it is not running). */
  async connect(): Promise<void> {
    this.channel?.close();
    this.channel = null;
    this.setStatus("Connecting…", "connecting");
    let created: StreamAnswer;
    try {
      created = await cloudshell<StreamAnswer>(this.host.region, "createSession", {
        EnvironmentId: this.host.environmentId(),
        TabId: this.tabId,
      });
    } catch (e) {
      const message = e instanceof ApiError ? e.message : String(e);
      this.setStatus(`Cannot open a shell: ${message}`, "failed");
      this.term.write(`\r\n\x1b[31mCannot open a shell: ${message}\x1b[0m\r\nPress any key to try again.\r\n`);
      this.waitingForKey = true;
      return;
    }
    this.sessionId = created.SessionId;
    this.el.dataset.sessionId = created.SessionId;
    const channel = new DataChannel(
      {
        output: (data, rendered) => {
          if (this.firstOutputAt === 0) {
            this.firstOutputAt = performance.now();
            this.el.dataset.firstOutputMs = String(Math.round(this.firstOutputAt));
          }
          this.term.write(data, rendered);
        },
        state: (s) => this.channelState(s),
      },
      () => this.resume(),
    );
    this.channel = channel;
    this.refit();
    channel.resize(this.term.cols, this.term.rows);
    channel.open({ url: created.StreamUrl, token: created.TokenValue });
  }

  private async resume(): Promise<Endpoint> {
    try {
      const r = await cloudshell<StreamAnswer>(this.host.region, "resumeSession", {
        EnvironmentId: this.host.environmentId(),
        SessionId: this.sessionId,
      });
      return { url: r.StreamUrl, token: r.TokenValue };
    } catch (e) {
      if (e instanceof ApiError && e.code === "ResourceNotFoundException") {
        throw new SessionGone("The session is no longer running.");
      }
      throw e;
    }
  }

  private channelState(s: ChannelState): void {
    switch (s.kind) {
      case "connecting":
        this.setStatus("Connecting…", "connecting");
        break;
      case "connected":
        this.setStatus("", "connected");
        break;
      case "reconnecting":
        this.setStatus(`Connection lost; reconnecting (attempt ${s.attempt})…`, "reconnecting");
        break;
      case "ended":
        this.setStatus("Session ended", "ended");
        this.term.write(`\r\n\x1b[33m${s.reason}\x1b[0m\r\nPress any key to reconnect.\r\n`);
        this.waitingForKey = true;
        break;
      case "replaced":
        this.setStatus("Opened in another browser tab", "replaced");
        this.term.write(
          "\r\n\x1b[33mThis terminal was opened in another browser tab.\x1b[0m\r\nPress any key to reconnect here.\r\n",
        );
        this.waitingForKey = true;
        break;
    }
  }

  /** Closes the socket (the shell keeps running). */
  detach(): void {
    this.channel?.close();
    this.channel = null;
  }

  /** Ends the shell and disposes of the pane. */
  async destroy(endShell: boolean): Promise<void> {
    this.detach();
    this.resizeObserver.disconnect();
    if (endShell && this.sessionId) {
      try {
        await cloudshell(this.host.region, "deleteSession", {
          EnvironmentId: this.host.environmentId(),
          SessionId: this.sessionId,
        });
      } catch {
        /* already gone */
      }
    }
    this.term.dispose();
    this.el.remove();
  }
}

/** The clipboard as OSC 52 sees it: writes when allowed, reads never (a
 * program asking for the clipboard gets nothing, so the shell cannot read
 * what the user copied elsewhere). */
class ShellClipboard implements IClipboardProvider {
  constructor(private readonly allowed: () => boolean) {}

  readText(_selection: ClipboardSelectionType): string {
    return "";
  }

  async writeText(_selection: ClipboardSelectionType, text: string): Promise<void> {
    if (this.allowed()) await navigator.clipboard.writeText(text);
  }
}
