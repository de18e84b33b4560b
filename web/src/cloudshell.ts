// The CloudShell page (DESIGN §9; the guide's "Navigating the interface",
// "Getting started" and "Customizing"): region selector, tabs and split
// panes, the + and Actions menus, file upload and download, restart and
// delete, preferences, Safe Paste, keyboard navigation and heartbeats.

import { ApiError, cloudshell, signout, type Identity } from "./api";
import { dialog, flash, h } from "./dom";
import { defaultLayout, newTab, panesOf, parseLayout, remove, split, type Direction, type Layout, type LayoutNode } from "./layout";
import { Pane, type PaneHost } from "./pane";
import { FONT_SIZES, load as loadPrefs, save as savePrefs, type FontSize, type Preferences } from "./prefs";

const HOME = "/home/cloudshell-user";
/** At most one heartbeat per this long, while the pointer moves. */
const HEARTBEAT_MS = 60_000;

interface StatusAnswer {
  EnvironmentId: string;
  Status: string;
  StatusReason?: string;
}

class Unavailable extends Error {}

const sleep = (ms: number) => new Promise((r) => window.setTimeout(r, ms));

export class CloudShellPage implements PaneHost {
  region: string;
  private envId = "";
  private layout: Layout = defaultLayout();
  private readonly panes = new Map<string, Pane>();
  private activePane = "";
  private prefs!: Preferences;
  private navMode = false;
  private lastBeat = 0;
  private saveTimer: number | undefined;
  /** Bumped on every region switch, restart or delete, so stale work stops. */
  private generation = 0;

  private readonly regionSelect: HTMLSelectElement;
  private readonly tabStrip: HTMLDivElement;
  private readonly workspace: HTMLDivElement;
  private readonly envStatus: HTMLDivElement;
  private readonly navIndicator: HTMLDivElement;
  private readonly uploadProgress: HTMLDivElement;

  constructor(
    root: HTMLElement,
    identity: Identity,
  ) {
    const params = new URLSearchParams(location.search);
    const asked = params.get("region") ?? "";
    this.region = identity.Regions.includes(asked) ? asked : identity.Regions[0];

    this.regionSelect = h("select", { id: "region", "aria-label": "Region" });
    for (const r of identity.Regions) this.regionSelect.append(h("option", { value: r, text: r }));
    this.regionSelect.value = this.region;
    this.regionSelect.addEventListener("change", () => void this.switchRegion(this.regionSelect.value));

    const signOut = h("button", { type: "button", id: "signout", text: "Sign out" });
    signOut.addEventListener("click", () => void this.signOut());
    const header = h(
      "header",
      { class: "topbar" },
      h("span", { class: "brand", text: "Seashell" }),
      h("span", { class: "service", text: "CloudShell" }),
      h("span", { class: "spacer" }),
      h("label", { for: "region", class: "region-label", text: "Region" }),
      this.regionSelect,
      h("span", { class: "user", text: `${identity.UserName} @ ${identity.Account}` }),
      signOut,
    );

    this.tabStrip = h("div", { class: "tabs", role: "tablist", "aria-label": "Terminal tabs" });
    const plus = this.menu("+", "New tab and environment actions", "plus-menu", [
      ["New tab", () => this.addTab()],
      ["Create VPC environment", () => this.createVpc()],
      ["Restart", () => void this.restart()],
      ["Delete", () => void this.deleteEnvironment()],
    ]);
    const actions = this.menu("Actions", "Actions", "actions-menu", [
      ["Tabs layout: New tab", () => this.addTab()],
      ["Tabs layout: Split into rows", () => this.splitActive("rows")],
      ["Tabs layout: Split into columns", () => this.splitActive("cols")],
      ["Download file", () => void this.download()],
      ["Upload file", () => void this.upload()],
      ["Restart", () => void this.restart()],
      ["Delete", () => void this.deleteEnvironment()],
    ]);
    const prefsButton = h("button", { type: "button", id: "preferences", text: "Preferences", "aria-haspopup": "dialog" });
    prefsButton.addEventListener("click", () => void this.preferencesDialog());
    const newWindow = h("button", { type: "button", id: "open-new-tab", text: "Open in new browser tab" });
    newWindow.addEventListener("click", () => {
      window.open(`/?region=${encodeURIComponent(this.region)}`, "_blank", "noopener");
    });
    const toolbar = h("div", { class: "toolbar" }, this.tabStrip, plus, h("span", { class: "spacer" }), actions, prefsButton, newWindow);

    const navClose = h("button", { type: "button", class: "nav-close", "aria-label": "Leave navigation mode", text: "×" });
    navClose.addEventListener("click", () => this.setNavigationMode(false));
    this.navIndicator = h("div", { class: "nav-indicator", id: "nav-indicator", role: "status", hidden: true }, h("span", { text: "Tab: navigation" }), navClose);
    this.envStatus = h("div", { class: "env-status", id: "env-status", role: "status" });
    this.uploadProgress = h("div", { class: "upload-progress", id: "upload-progress", hidden: true });
    this.workspace = h("div", { class: "workspace", id: "workspace" });
    this.workspace.addEventListener("dragover", (ev) => {
      ev.preventDefault();
      this.workspace.classList.add("dropping");
    });
    this.workspace.addEventListener("dragleave", () => this.workspace.classList.remove("dropping"));
    this.workspace.addEventListener("drop", (ev) => {
      ev.preventDefault();
      this.workspace.classList.remove("dropping");
      const file = ev.dataTransfer?.files[0];
      if (file) void this.uploadFile(file, this.uploadProgress);
    });

    root.replaceChildren(
      header,
      toolbar,
      h("div", { id: "flash", class: "flash-area" }),
      this.navIndicator,
      this.envStatus,
      this.uploadProgress,
      h("main", { class: "main", "aria-label": "CloudShell terminals" }, this.workspace),
    );

    // Ctrl+M before anything else on the page, the terminal included.
    window.addEventListener(
      "keydown",
      (ev) => {
        if (ev.ctrlKey && !ev.shiftKey && !ev.altKey && !ev.metaKey && (ev.key === "m" || ev.key === "M")) {
          ev.preventDefault();
          ev.stopPropagation();
          this.setNavigationMode(!this.navMode);
        }
      },
      true,
    );
    for (const type of ["pointermove", "pointerdown", "wheel"]) {
      document.addEventListener(type, () => this.heartbeat(), { passive: true });
    }
    window.addEventListener("resize", () => this.forEachVisible((p) => p.refit()));
  }

  async start(): Promise<void> {
    this.prefs = await loadPrefs();
    this.applyTheme();
    await this.openRegion();
  }

  // PaneHost.
  environmentId(): string {
    return this.envId;
  }
  preferences(): Preferences {
    return this.prefs;
  }
  navigationMode(): boolean {
    return this.navMode;
  }
  focused(pane: Pane): void {
    this.activePane = pane.tabId;
    for (const p of this.panes.values()) p.el.classList.toggle("active", p === pane);
  }
  closePane(pane: Pane): void {
    const tab = this.layout.tabs.find((t) => panesOf(t.root).includes(pane.tabId));
    if (!tab) return;
    const rest = remove(tab.root, pane.tabId);
    this.panes.delete(pane.tabId);
    void pane.destroy(true);
    if (rest === null) {
      this.closeTab(tab.id, false);
      return;
    }
    tab.root = rest;
    this.activePane = panesOf(rest)[0];
    this.render();
    this.saveLayout();
  }

  confirmPaste(text: string): Promise<boolean> {
    const always = h("input", { type: "checkbox", id: "always-ask", checked: true });
    return dialog(
      "Safe Paste for multiline text",
      [
        h("p", { text: "You are about to paste multiline text. Multiline text can run several commands at once: check it before you paste." }),
        h("pre", { class: "paste-preview", tabindex: "0", "aria-label": "Text to paste", text }),
        h("label", { class: "check" }, always, " Always ask before pasting multiline code"),
      ],
      [
        { label: "Cancel", value: "cancel" },
        { label: "Paste", value: "paste", primary: true },
      ],
    ).then((answer) => {
      if (answer === "paste" && !always.checked && this.prefs.safePaste) {
        this.prefs = { ...this.prefs, safePaste: false };
        void savePrefs(this.prefs).catch((e) => flash(`The preferences could not be saved: ${String(e)}`, "error"));
      }
      return answer === "paste";
    });
  }

  private menu(label: string, aria: string, id: string, items: [string, () => void][]): HTMLElement {
    const button = h("button", { type: "button", id, class: "menu-button", "aria-haspopup": "menu", "aria-expanded": "false", "aria-label": aria, text: label });
    const list = h("div", { class: "menu", role: "menu", hidden: true, "aria-label": aria });
    const closeMenu = () => {
      list.hidden = true;
      button.setAttribute("aria-expanded", "false");
    };
    for (const [text, act] of items) {
      const item = h("button", { type: "button", role: "menuitem", text });
      item.addEventListener("click", () => {
        closeMenu();
        act();
      });
      list.append(item);
    }
    button.addEventListener("click", () => {
      const open = list.hidden;
      list.hidden = !open;
      button.setAttribute("aria-expanded", String(open));
      if (open) (list.firstElementChild as HTMLElement | null)?.focus();
    });
    list.addEventListener("keydown", (ev) => {
      const buttons = [...list.querySelectorAll<HTMLButtonElement>("button")];
      const at = buttons.indexOf(document.activeElement as HTMLButtonElement);
      if (ev.key === "Escape") {
        closeMenu();
        button.focus();
      } else if (ev.key === "ArrowDown") {
        ev.preventDefault();
        buttons[(at + 1) % buttons.length].focus();
      } else if (ev.key === "ArrowUp") {
        ev.preventDefault();
        buttons[(at - 1 + buttons.length) % buttons.length].focus();
      }
    });
    document.addEventListener("click", (ev) => {
      if (!wrap.contains(ev.target as Node)) closeMenu();
    });
    const wrap = h("div", { class: "menu-wrap" }, button, list);
    return wrap;
  }

  private setNavigationMode(on: boolean): void {
    this.navMode = on;
    this.navIndicator.hidden = !on;
    document.body.classList.toggle("navigation-mode", on);
  }

  private heartbeat(): void {
    const now = Date.now();
    if (!this.envId || now - this.lastBeat < HEARTBEAT_MS) return;
    this.lastBeat = now;
    void cloudshell(this.region, "sendHeartBeat", { EnvironmentId: this.envId }).catch(() => {
      this.lastBeat = 0;
    });
  }

  private setEnvStatus(text: string, state: string, retry = false): void {
    this.envStatus.replaceChildren(h("span", { text }));
    this.envStatus.dataset.state = state;
    this.envStatus.hidden = text === "";
    if (retry) {
      const b = h("button", { type: "button", text: "Try again" });
      b.addEventListener("click", () => void this.openRegion());
      this.envStatus.append(b);
    }
  }

  /** Creates (or finds) the region's environment and waits until it runs. */
  private async ensureRunning(gen: number): Promise<void> {
    this.setEnvStatus(`Creating the environment in ${this.region}…`, "creating");
    const created = await cloudshell<{ EnvironmentId: string; Status: string }>(this.region, "createEnvironment", {});
    this.envId = created.EnvironmentId;
    let started = false;
    for (;;) {
      if (gen !== this.generation) throw new Unavailable("superseded");
      let st: StatusAnswer;
      try {
        st = await cloudshell<StatusAnswer>(this.region, "getEnvironmentStatus", { EnvironmentId: this.envId });
      } catch (e) {
        if (e instanceof ApiError && e.code === "ResourceNotFoundException") {
          const again = await cloudshell<{ EnvironmentId: string }>(this.region, "createEnvironment", {});
          this.envId = again.EnvironmentId;
          continue;
        }
        throw e;
      }
      switch (st.Status) {
        case "RUNNING":
          this.setEnvStatus("", "running");
          return;
        case "CREATING":
          this.setEnvStatus(`Creating the environment in ${this.region}…`, "creating");
          break;
        case "RESUMING":
          this.setEnvStatus(`Starting the environment in ${this.region}…`, "starting");
          break;
        case "SUSPENDING":
          this.setEnvStatus(`Waiting for the environment to stop…`, "stopping");
          break;
        case "DELETING":
          this.setEnvStatus(`Waiting for the environment to be deleted…`, "deleting");
          break;
        case "SUSPENDED":
          if (started && st.StatusReason) throw new Unavailable(st.StatusReason);
          this.setEnvStatus(`Starting the environment in ${this.region}…`, "starting");
          await cloudshell(this.region, "startEnvironment", { EnvironmentId: this.envId });
          started = true;
          break;
      }
      await sleep(400);
    }
  }

  private async openRegion(): Promise<void> {
    const gen = ++this.generation;
    document.title = `CloudShell · ${this.region} · Seashell`;
    try {
      await this.ensureRunning(gen);
    } catch (e) {
      if (gen !== this.generation) return;
      const why = e instanceof Error ? e.message : String(e);
      this.setEnvStatus(`The environment in ${this.region} is unavailable: ${why}`, "unavailable", true);
      return;
    }
    let saved: string | undefined;
    try {
      saved = (await cloudshell<{ Layout?: string }>(this.region, "getLayout", { EnvironmentId: this.envId })).Layout;
    } catch {
      saved = undefined;
    }
    if (gen !== this.generation) return;
    this.layout = parseLayout(saved);
    this.activePane = panesOf(this.layout.tabs[this.layout.active].root)[0];
    this.render();
    if (!saved) this.saveLayout();
  }

  private teardown(): void {
    for (const p of this.panes.values()) void p.destroy(false);
    this.panes.clear();
    this.workspace.replaceChildren();
    this.tabStrip.replaceChildren();
  }

  private async switchRegion(region: string): Promise<void> {
    this.teardown();
    this.region = region;
    const url = new URL(location.href);
    url.searchParams.set("region", region);
    history.replaceState(null, "", url);
    await this.openRegion();
  }

  private pane(tabId: string): Pane {
    let p = this.panes.get(tabId);
    if (!p) {
      p = new Pane(tabId, this);
      this.panes.set(tabId, p);
      void p.connect();
    }
    return p;
  }

  private forEachVisible(f: (p: Pane) => void): void {
    const tab = this.layout.tabs[this.layout.active];
    if (!tab) return;
    for (const id of panesOf(tab.root)) {
      const p = this.panes.get(id);
      if (p) f(p);
    }
  }

  /** Draws the tab strip and the active tab's panes. Panes of other tabs
   *  stay attached, out of the page. */
  private render(): void {
    this.tabStrip.replaceChildren();
    this.layout.tabs.forEach((tab, i) => {
      const selected = i === this.layout.active;
      const label = this.layout.tabs.length > 1 ? `${this.region} (${i + 1})` : this.region;
      const button = h("button", { type: "button", role: "tab", class: "tab", "aria-selected": String(selected), text: label });
      button.addEventListener("click", () => {
        this.layout.active = i;
        this.activePane = panesOf(tab.root)[0];
        this.render();
        this.saveLayout();
      });
      const close = h("button", { type: "button", class: "tab-close", "aria-label": `Close tab ${label}`, text: "×" });
      close.addEventListener("click", () => this.closeTab(tab.id, true));
      this.tabStrip.append(h("div", { class: selected ? "tab-wrap selected" : "tab-wrap" }, button, close));
    });
    const tab = this.layout.tabs[this.layout.active];
    this.workspace.replaceChildren(this.renderNode(tab.root));
    // Create the other tabs' panes too, so their shells stay attached.
    for (const other of this.layout.tabs) for (const id of panesOf(other.root)) this.pane(id);
    const active = this.panes.get(this.activePane) ?? this.panes.get(panesOf(tab.root)[0]);
    if (active) {
      this.focused(active);
      requestAnimationFrame(() => {
        this.forEachVisible((p) => p.refit());
        active.focus();
      });
    }
  }

  private renderNode(n: LayoutNode): HTMLElement {
    if ("pane" in n) return this.pane(n.pane).el;
    const container = h("div", { class: `split split-${n.split}` });
    const a = h("div", { class: "split-child" }, this.renderNode(n.children[0]));
    const b = h("div", { class: "split-child" }, this.renderNode(n.children[1]));
    const apply = () => {
      a.style.flexBasis = `${n.sizes[0]}%`;
      b.style.flexBasis = `${n.sizes[1]}%`;
    };
    apply();
    const bar = h("div", {
      class: "split-bar",
      role: "separator",
      tabindex: "0",
      "aria-orientation": n.split === "rows" ? "horizontal" : "vertical",
      "aria-label": "Resize panes",
      "aria-valuenow": String(Math.round(n.sizes[0])),
      "aria-valuemin": "10",
      "aria-valuemax": "90",
    });
    const setFirst = (pct: number) => {
      const first = Math.min(90, Math.max(10, pct));
      n.sizes = [first, 100 - first];
      bar.setAttribute("aria-valuenow", String(Math.round(first)));
      apply();
      this.forEachVisible((p) => p.refit());
    };
    bar.addEventListener("pointerdown", (ev) => {
      ev.preventDefault();
      bar.setPointerCapture(ev.pointerId);
      const rect = container.getBoundingClientRect();
      const move = (e: PointerEvent) => {
        const pct = n.split === "rows" ? ((e.clientY - rect.top) / rect.height) * 100 : ((e.clientX - rect.left) / rect.width) * 100;
        setFirst(pct);
      };
      const up = () => {
        bar.removeEventListener("pointermove", move);
        bar.removeEventListener("pointerup", up);
        this.saveLayout();
      };
      bar.addEventListener("pointermove", move);
      bar.addEventListener("pointerup", up);
    });
    bar.addEventListener("keydown", (ev) => {
      const step = ev.key === "ArrowUp" || ev.key === "ArrowLeft" ? -5 : ev.key === "ArrowDown" || ev.key === "ArrowRight" ? 5 : 0;
      if (step) {
        ev.preventDefault();
        setFirst(n.sizes[0] + step);
        this.saveLayout();
      }
    });
    container.append(a, bar, b);
    return container;
  }

  private saveLayout(): void {
    window.clearTimeout(this.saveTimer);
    const envId = this.envId;
    const region = this.region;
    const text = JSON.stringify(this.layout);
    this.saveTimer = window.setTimeout(() => {
      void cloudshell(region, "updateLayout", { EnvironmentId: envId, Layout: text }).catch((e) =>
        flash(`The layout could not be saved: ${e instanceof Error ? e.message : String(e)}`, "error"),
      );
    }, 200);
  }

  private addTab(): void {
    if (!this.envId) return;
    const tab = newTab();
    this.layout.tabs.push(tab);
    this.layout.active = this.layout.tabs.length - 1;
    this.activePane = panesOf(tab.root)[0];
    this.render();
    this.saveLayout();
  }

  private closeTab(id: string, endShells: boolean): void {
    const i = this.layout.tabs.findIndex((t) => t.id === id);
    if (i < 0) return;
    const [tab] = this.layout.tabs.splice(i, 1);
    if (endShells) {
      for (const pane of panesOf(tab.root)) {
        const p = this.panes.get(pane);
        this.panes.delete(pane);
        void p?.destroy(true);
      }
    }
    if (this.layout.tabs.length === 0) this.layout.tabs.push(newTab());
    this.layout.active = Math.min(this.layout.active, this.layout.tabs.length - 1);
    this.activePane = panesOf(this.layout.tabs[this.layout.active].root)[0];
    this.render();
    this.saveLayout();
  }

  private splitActive(dir: Direction): void {
    const tab = this.layout.tabs[this.layout.active];
    if (!tab || !this.envId) return;
    const target = panesOf(tab.root).includes(this.activePane) ? this.activePane : panesOf(tab.root)[0];
    const { root, added } = split(tab.root, target, dir);
    tab.root = root;
    this.activePane = added;
    this.render();
    this.saveLayout();
  }

  private createVpc(): void {
    void dialog(
      "Create a VPC environment",
      [h("p", { text: "VPC environments are not available yet in Seashell." })],
      [{ label: "Close", value: "close", primary: true }],
    );
  }

  private async restart(): Promise<void> {
    if (!this.envId) return;
    const answer = await dialog(
      "Restart AWS CloudShell?",
      [
        h("p", {
          text: `Restarting stops every session in ${this.region}: running programs end. Files in your home directory are kept; everything else is reset.`,
        }),
      ],
      [
        { label: "Cancel", value: "cancel" },
        { label: "Restart", value: "restart", primary: true },
      ],
    );
    if (answer !== "restart") return;
    const gen = ++this.generation;
    this.teardown();
    this.setEnvStatus(`Restarting the environment in ${this.region}…`, "stopping");
    try {
      await cloudshell(this.region, "stopEnvironment", { EnvironmentId: this.envId });
      for (;;) {
        const st = await cloudshell<StatusAnswer>(this.region, "getEnvironmentStatus", { EnvironmentId: this.envId });
        if (st.Status === "SUSPENDED") break;
        await sleep(400);
      }
    } catch (e) {
      this.setEnvStatus(`The environment could not be restarted: ${e instanceof Error ? e.message : String(e)}`, "unavailable", true);
      return;
    }
    if (gen === this.generation) await this.openRegion();
  }

  private async deleteEnvironment(): Promise<void> {
    if (!this.envId) return;
    const confirmInput = h("input", { type: "text", id: "delete-confirm", "aria-label": "Type delete to confirm", autocomplete: "off" });
    const answer = await dialog(
      "Delete AWS CloudShell home directory?",
      [
        h("p", {
          class: "warning",
          text: `This deletes the environment in ${this.region} and every file in your home directory (${HOME}). It cannot be undone. A new environment is created the next time you open CloudShell.`,
        }),
        h("label", { for: "delete-confirm", text: "To confirm, type delete" }),
        confirmInput,
      ],
      [
        { label: "Cancel", value: "cancel" },
        { label: "Delete", value: "delete", primary: true },
      ],
      (_d, buttons) => {
        const del = buttons.get("delete");
        if (!del) return;
        del.disabled = true;
        confirmInput.addEventListener("input", () => {
          del.disabled = confirmInput.value.trim() !== "delete";
        });
      },
    );
    if (answer !== "delete") return;
    const gen = ++this.generation;
    this.teardown();
    this.setEnvStatus(`Deleting the environment in ${this.region}…`, "deleting");
    try {
      await cloudshell(this.region, "deleteEnvironment", { EnvironmentId: this.envId });
      for (;;) {
        try {
          await cloudshell<StatusAnswer>(this.region, "getEnvironmentStatus", { EnvironmentId: this.envId });
        } catch (e) {
          if (e instanceof ApiError && e.code === "ResourceNotFoundException") break;
          throw e;
        }
        await sleep(400);
      }
    } catch (e) {
      this.setEnvStatus(`The environment could not be deleted: ${e instanceof Error ? e.message : String(e)}`, "unavailable", true);
      return;
    }
    this.envId = "";
    flash(`The environment in ${this.region} and its home directory were deleted.`, "success");
    if (gen === this.generation) await this.openRegion();
  }

  private async download(): Promise<void> {
    if (!this.envId) return;
    const path = h("input", { type: "text", id: "download-path", "aria-describedby": "download-help", autocomplete: "off" });
    const answer = await dialog(
      "Download file",
      [
        h("label", { for: "download-path", text: "Individual file path" }),
        path,
        h("p", {
          id: "download-help",
          class: "help",
          text: `A path relative to ${HOME} (subfolder/file.txt) or an absolute one (${HOME}/subfolder/file.txt).`,
        }),
      ],
      [
        { label: "Cancel", value: "cancel" },
        { label: "Download", value: "download", primary: true },
      ],
      (d) => {
        path.addEventListener("keydown", (ev) => {
          if (ev.key === "Enter") d.close("download");
        });
      },
    );
    const wanted = path.value.trim();
    if (answer !== "download" || !wanted) return;
    try {
      const { FileDownloadPresignedUrl } = await cloudshell<{ FileDownloadPresignedUrl: string }>(this.region, "getFileDownloadUrls", {
        EnvironmentId: this.envId,
        FileDownloadPath: wanted,
      });
      const r = await fetch(FileDownloadPresignedUrl, { credentials: "omit" });
      if (!r.ok) {
        let message = `the server answered ${r.status}`;
        try {
          const body = (await r.json()) as { message?: string };
          if (body.message) message = body.message;
        } catch {
          /* not JSON */
        }
        throw new Error(message);
      }
      const blob = await r.blob();
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: wanted.split("/").pop() || "download" });
      document.body.append(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
      flash(`Download of ${wanted} complete.`, "success");
    } catch (e) {
      flash(`The file ${wanted} could not be downloaded: ${e instanceof Error ? e.message : String(e)}`, "error");
    }
  }

  private async upload(): Promise<void> {
    if (!this.envId) return;
    const input = h("input", { type: "file", id: "upload-input", "aria-label": "File to upload" });
    const drop = h("div", { class: "drop-zone", tabindex: "0", text: "Drop a file here, or choose one above." });
    const progress = h("div", { class: "upload-progress" });
    void dialog(
      "Upload file",
      [h("p", { text: `The file is uploaded to ${HOME}.` }), input, drop, progress],
      [{ label: "Close", value: "close" }],
      (d) => {
        const go = async (file: File) => {
          const ok = await this.uploadFile(file, progress);
          if (ok) d.close("done");
        };
        input.addEventListener("change", () => {
          const f = input.files?.[0];
          if (f) void go(f);
        });
        drop.addEventListener("dragover", (ev) => ev.preventDefault());
        drop.addEventListener("drop", (ev) => {
          ev.preventDefault();
          const f = ev.dataTransfer?.files[0];
          if (f) void go(f);
        });
      },
    );
  }

  /** Uploads one file into the home directory, showing progress in `area`. */
  private async uploadFile(file: File, area: HTMLElement): Promise<boolean> {
    const bar = h("progress", { max: "100", value: "0", "aria-label": `Uploading ${file.name}` });
    const label = h("span", { text: `Uploading ${file.name}…` });
    area.hidden = false;
    area.replaceChildren(label, bar);
    const fail = (why: string) => {
      area.replaceChildren(h("span", { class: "error", role: "alert", text: `The file ${file.name} could not be uploaded: ${why}` }));
      flash(`The file ${file.name} could not be uploaded: ${why}`, "error");
      return false;
    };
    let url: string;
    try {
      url = (
        await cloudshell<{ FileUploadPresignedUrl: string }>(this.region, "getFileUploadUrls", {
          EnvironmentId: this.envId,
          FileUploadPath: file.name,
        })
      ).FileUploadPresignedUrl;
    } catch (e) {
      return fail(e instanceof Error ? e.message : String(e));
    }
    const result = await new Promise<string | null>((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      xhr.upload.onprogress = (ev) => {
        if (ev.lengthComputable) bar.value = Math.round((ev.loaded / ev.total) * 100);
      };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve(null);
        else {
          let message = `the server answered ${xhr.status}`;
          try {
            message = (JSON.parse(xhr.responseText) as { message?: string }).message ?? message;
          } catch {
            /* not JSON */
          }
          resolve(message);
        }
      };
      xhr.onerror = () => resolve("the connection failed");
      xhr.send(file);
    });
    if (result !== null) return fail(result);
    bar.value = 100;
    area.replaceChildren(h("span", { class: "success", text: `Uploaded ${file.name} to ${HOME}/${file.name}.` }));
    flash(`File upload successful: ${HOME}/${file.name}`, "success");
    window.setTimeout(() => {
      if (area === this.uploadProgress) area.hidden = true;
    }, 8000);
    return true;
  }

  private applyTheme(): void {
    document.documentElement.dataset.theme = this.prefs.theme;
    for (const p of this.panes.values()) p.applyPreferences(this.prefs);
  }

  private async preferencesDialog(): Promise<void> {
    const sizes = Object.entries(FONT_SIZES).map(([value, { label }]) => {
      const input = h("input", { type: "radio", name: "font-size", value, id: `size-${value}`, checked: this.prefs.fontSize === value });
      return h("label", { class: "check" }, input, ` ${label}`);
    });
    const themes = (["light", "dark"] as const).map((t) => {
      const input = h("input", { type: "radio", name: "theme", value: t, id: `theme-${t}`, checked: this.prefs.theme === t });
      return h("label", { class: "check" }, input, t === "light" ? " Light" : " Dark");
    });
    const safe = h("input", { type: "checkbox", id: "safe-paste", checked: this.prefs.safePaste });
    const clipboard = h("input", { type: "checkbox", id: "clipboard-writes", checked: this.prefs.clipboardWrites });
    const form = h(
      "form",
      { class: "prefs" },
      h("fieldset", {}, h("legend", { text: "Text size" }), ...sizes),
      h("fieldset", {}, h("legend", { text: "Theme" }), ...themes),
      h("fieldset", {}, h("legend", { text: "Safe Paste" }), h("label", { class: "check" }, safe, " Show multiline text before it is pasted")),
      h(
        "fieldset",
        {},
        h("legend", { text: "Clipboard" }),
        h("label", { class: "check" }, clipboard, " Let programs in the shell copy to the clipboard (OSC 52)"),
      ),
    );
    const answer = await dialog("Preferences", [form], [
      { label: "Cancel", value: "cancel" },
      { label: "Confirm", value: "confirm", primary: true },
    ]);
    if (answer !== "confirm") return;
    const data = new FormData(form);
    this.prefs = {
      fontSize: (data.get("font-size") as FontSize) ?? this.prefs.fontSize,
      theme: data.get("theme") === "dark" ? "dark" : "light",
      safePaste: safe.checked,
      clipboardWrites: clipboard.checked,
    };
    this.applyTheme();
    try {
      await savePrefs(this.prefs);
    } catch (e) {
      flash(`The preferences could not be saved: ${e instanceof Error ? e.message : String(e)}`, "error");
    }
  }

  private async signOut(): Promise<void> {
    this.generation++;
    this.teardown();
    try {
      await signout();
    } finally {
      location.assign("/");
    }
  }
}
