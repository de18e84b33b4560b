// Tabs and panes: each tab holds a tree of splits whose leaves are panes,
// named by the TabId of their shell. The tree is what updateLayout saves
// and getLayout gives back.

import { randomUuid } from "./protocol";

export type Direction = "rows" | "cols";

export type LayoutNode =
  | { pane: string }
  | { split: Direction; sizes: [number, number]; children: [LayoutNode, LayoutNode] };

export interface TabLayout {
  id: string;
  root: LayoutNode;
}

export interface Layout {
  version: 1;
  tabs: TabLayout[];
  active: number;
}

export function newTab(): TabLayout {
  return { id: randomUuid(), root: { pane: randomUuid() } };
}

export function defaultLayout(): Layout {
  return { version: 1, tabs: [newTab()], active: 0 };
}

function validNode(n: unknown, depth = 0): n is LayoutNode {
  if (depth > 16 || typeof n !== "object" || n === null) return false;
  const o = n as Record<string, unknown>;
  if (typeof o.pane === "string") return /^[A-Za-z0-9-]{1,64}$/.test(o.pane);
  return (
    (o.split === "rows" || o.split === "cols") &&
    Array.isArray(o.sizes) &&
    o.sizes.length === 2 &&
    o.sizes.every((x) => typeof x === "number" && x > 0 && x < 100) &&
    Array.isArray(o.children) &&
    o.children.length === 2 &&
    o.children.every((c) => validNode(c, depth + 1))
  );
}

/** The saved layout, or the default one when none was saved or it is not
 *  one of ours. */
export function parseLayout(text: string | undefined | null): Layout {
  if (!text) return defaultLayout();
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (v.version !== 1 || !Array.isArray(v.tabs) || v.tabs.length === 0) return defaultLayout();
    const tabs = v.tabs.filter(
      (t): t is TabLayout => typeof t === "object" && t !== null && typeof t.id === "string" && validNode(t.root),
    );
    if (tabs.length === 0) return defaultLayout();
    const active = typeof v.active === "number" && v.active >= 0 && v.active < tabs.length ? v.active : 0;
    return { version: 1, tabs, active };
  } catch {
    return defaultLayout();
  }
}

export function panesOf(n: LayoutNode): string[] {
  return "pane" in n ? [n.pane] : [...panesOf(n.children[0]), ...panesOf(n.children[1])];
}

/** Splits the leaf `pane` in two; the new pane's id is returned. */
export function split(root: LayoutNode, pane: string, dir: Direction): { root: LayoutNode; added: string } {
  const added = randomUuid();
  const walk = (n: LayoutNode): LayoutNode => {
    if ("pane" in n) {
      return n.pane === pane ? { split: dir, sizes: [50, 50], children: [n, { pane: added }] } : n;
    }
    return { ...n, children: [walk(n.children[0]), walk(n.children[1])] };
  };
  return { root: walk(root), added };
}

/** Removes the leaf `pane`; null when it was the only one. */
export function remove(root: LayoutNode, pane: string): LayoutNode | null {
  if ("pane" in root) return root.pane === pane ? null : root;
  const [a, b] = root.children;
  const ra = remove(a, pane);
  const rb = remove(b, pane);
  if (ra === null) return rb;
  if (rb === null) return ra;
  return { ...root, children: [ra, rb] };
}
