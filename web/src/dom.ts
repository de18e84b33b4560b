// Small DOM helpers and the modal dialogs (native <dialog>: focus stays
// inside, Escape cancels).

type Attrs = Record<string, string | boolean | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === "class") el.className = String(v);
    else if (k === "text") el.textContent = String(v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

export interface DialogButton {
  label: string;
  value: string;
  primary?: boolean;
}

/** A modal dialog; resolves to the value of the button pressed ("" when
 *  cancelled with Escape). `ready`, when given, may disable buttons. */
export function dialog(
  title: string,
  content: (Node | string)[],
  buttons: DialogButton[],
  setup?: (d: HTMLDialogElement, buttons: Map<string, HTMLButtonElement>) => void,
): Promise<string> {
  return new Promise((resolve) => {
    const heading = h("h2", { id: `dlg-${Math.random().toString(36).slice(2)}`, text: title });
    const byValue = new Map<string, HTMLButtonElement>();
    const row = h("div", { class: "dialog-buttons" });
    for (const b of buttons) {
      const btn = h("button", { type: "button", class: b.primary ? "primary" : "", text: b.label });
      btn.addEventListener("click", () => {
        d.close(b.value);
      });
      byValue.set(b.value, btn);
      row.append(btn);
    }
    const d = h("dialog", { "aria-labelledby": heading.id }, heading, h("div", { class: "dialog-body" }, ...content), row);
    d.addEventListener("close", () => {
      resolve(d.returnValue);
      d.remove();
    });
    document.body.append(d);
    setup?.(d, byValue);
    d.returnValue = "";
    d.showModal();
  });
}

/** A transient message at the top of the page. */
export function flash(text: string, kind: "info" | "success" | "error" = "info"): void {
  const area = document.getElementById("flash") ?? document.body;
  const msg = h("div", { class: `flash ${kind}`, role: kind === "error" ? "alert" : "status" }, h("span", { text }));
  const close = h("button", { type: "button", class: "flash-close", "aria-label": "Dismiss message", text: "×" });
  close.addEventListener("click", () => msg.remove());
  msg.append(close);
  area.append(msg);
  window.setTimeout(() => msg.remove(), 15000);
}
